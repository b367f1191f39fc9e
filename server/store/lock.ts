// One server per data directory: an exclusive advisory lock (flock) on <data>/lock, held for
// the life of the process. Two servers on one directory would both recover and run the same
// jobs. The OS releases the lock when the process dies, kill -9 included, so a crash never
// leaves a stale lock behind.
import { ArgumentError } from "../../src/mod.ts";

/** Takes the lock, or throws when another process holds it (waits `waitMs` at most). */
export async function lockDataDir(dataDir: string, waitMs = 1000): Promise<Deno.FsFile> {
  const file = await Deno.open(`${dataDir}/lock`, { read: true, write: true, create: true });
  // FsFile.lock() blocks until the lock is free: race it against a timer.
  let timer: ReturnType<typeof setTimeout> | undefined;
  const locked = await Promise.race([
    file.lock(true).then(() => true),
    new Promise<boolean>((r) => timer = setTimeout(() => r(false), waitMs)),
  ]);
  clearTimeout(timer);
  if (!locked) {
    file.close();
    throw new ArgumentError(
      `the data directory '${dataDir}' is in use by another sqz server (its lock file is held)`,
    );
  }
  return file;
}
