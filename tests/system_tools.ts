// Debian tools some tests need (wabt's wasm-interp, …): found on PATH, or installed with
// apt-get when the tests run as root on Debian (CI and these machines); undefined, with a
// message saying why, where neither is possible.
async function which(bin: string): Promise<string | undefined> {
  try {
    const out = await new Deno.Command("sh", { args: ["-c", `command -v ${bin}`], stdout: "piped" })
      .output();
    const p = new TextDecoder().decode(out.stdout).trim();
    return out.success && p ? p : undefined;
  } catch {
    return undefined;
  }
}

async function run(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, {
      args,
      stdout: "null",
      stderr: "null",
      env: { DEBIAN_FRONTEND: "noninteractive" },
    }).output();
    return out.success;
  } catch {
    return false;
  }
}

export async function ensureDebianTool(bin: string, pkg: string): Promise<string | undefined> {
  const have = await which(bin);
  if (have) return have;
  const root = Deno.uid?.() === 0;
  if (!root || !(await which("apt-get"))) {
    console.warn(`skipping: '${bin}' is not installed and apt-get (as root) is not available`);
    return undefined;
  }
  // The package lists may be stale or absent on a fresh machine: update once if needed.
  // Parallel test files may install at once: wait for dpkg's lock instead of failing on it.
  const install = ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", pkg];
  if (!(await run("apt-get", install))) {
    await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-q"]);
    await run("apt-get", install);
  }
  const now = await which(bin);
  if (!now) console.warn(`skipping: apt-get could not install ${pkg} (for '${bin}')`);
  return now;
}

/** Installs a Debian package that provides `file` (a driver, say) where it is missing. */
export async function ensureDebianFile(file: string, pkg: string): Promise<boolean> {
  const exists = async () => {
    try {
      await Deno.stat(file);
      return true;
    } catch {
      return false;
    }
  };
  if (await exists()) return true;
  if (Deno.uid?.() !== 0 || !(await which("apt-get"))) {
    console.warn(`skipping: ${file} (${pkg}) is missing and apt-get (as root) is not available`);
    return false;
  }
  const install = ["-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", pkg];
  if (!(await run("apt-get", install))) {
    await run("apt-get", ["-o", "DPkg::Lock::Timeout=600", "update", "-q"]);
    await run("apt-get", install);
  }
  if (await exists()) return true;
  console.warn(`skipping: apt-get could not install ${pkg} (for ${file})`);
  return false;
}
