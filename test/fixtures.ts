import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * Interop fixtures written by another HDF5 writer: `scripts/write-fixtures.py`
 * (h5py) writes them at test time into `test/.fixtures/<hash of the script>`,
 * once, whichever test asks first (written aside, then renamed: parallel test
 * workers never see a half-written set). `TIMESLIDE_FIXTURES` points at a
 * set written elsewhere instead. Nothing outside the repository is read.
 */
const ROOT = resolve(import.meta.dirname, "..");
const SCRIPT = join(ROOT, "scripts", "write-fixtures.py");

function pythonWithH5py(): string {
  for (const py of ["python3", "/usr/bin/python3", "python"]) {
    const r = spawnSync(py, ["-c", "import h5py, numpy"], { stdio: "ignore" });
    if (r.status === 0) return py;
  }
  throw new Error(
    "the interop fixtures are written by h5py, and no python3 here imports h5py and numpy: " +
      "install Debian's python3-h5py (apt-get install -y python3-h5py; `npm test` does this when it runs as root) or `pip install h5py`",
  );
}

function writeFixtures(): string {
  const hash = createHash("sha256").update(readFileSync(SCRIPT)).digest("hex").slice(0, 12);
  const dir = join(ROOT, "test", ".fixtures", hash);
  if (existsSync(join(dir, "background.h5"))) return dir;
  const tmp = `${dir}.${process.pid}.${Date.now()}.tmp`;
  mkdirSync(tmp, { recursive: true });
  const r = spawnSync(pythonWithH5py(), [SCRIPT, tmp], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`scripts/write-fixtures.py failed (exit ${r.status}): ${r.stderr}`);
  writeFileSync(join(tmp, "WRITTEN_BY"), "scripts/write-fixtures.py (h5py)\n");
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true }); // another worker renamed its set first
  }
  return dir;
}

let cached: string | undefined;
/** The fixture directory, written on first use. */
export function fixturesDir(): string {
  cached ??= process.env.TIMESLIDE_FIXTURES ? resolve(process.env.TIMESLIDE_FIXTURES) : writeFixtures();
  return cached;
}

export const FIXTURES: string = fixturesDir();
export const fixture = (...parts: string[]) => join(FIXTURES, ...parts);
