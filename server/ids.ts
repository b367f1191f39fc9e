// Resource ids and names. Ids are a prefix and 24 base32 characters (RFC 4648 alphabet, lower
// case): 120 random bits. Anything a client sends as an id or a name is checked against these
// patterns before it reaches the database; nothing a client sends ever becomes a file name.
const ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

export const MODEL_ID_RE = /^m_[a-z2-7]{24}$/;
export const JOB_ID_RE = /^j_[a-z2-7]{24}$/;
/** Model names: 1–64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function newId(prefix: "m" | "j"): string {
  // 15 bytes = 120 bits = 24 base32 digits of 5 bits.
  const bytes = crypto.getRandomValues(new Uint8Array(15));
  let bits = 0, acc = 0, out = "";
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out += ALPHABET[(acc >> bits) & 31];
    }
    acc &= (1 << bits) - 1;
  }
  return `${prefix}_${out}`;
}

export const isModelId = (s: string) => MODEL_ID_RE.test(s);
export const isJobId = (s: string) => JOB_ID_RE.test(s);
/** A valid name that cannot be mistaken for an id (`m_…` and `j_…` are reserved). */
export const isModelName = (s: string) => NAME_RE.test(s) && !/^[mj]_/.test(s);
