import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/**
 * The shared fixtures written by h5py: `TIMESLIDE_FIXTURES` if set, else
 * `shared/fixtures` beside the repository (as CI lays it out), else the
 * development machines' /work/shared/fixtures.
 */
export const FIXTURES: string = (() => {
  if (process.env.TIMESLIDE_FIXTURES) return resolve(process.env.TIMESLIDE_FIXTURES);
  const beside = resolve(import.meta.dirname, "../../shared/fixtures");
  if (existsSync(beside)) return beside;
  return "/work/shared/fixtures";
})();

export const fixture = (...parts: string[]) => join(FIXTURES, ...parts);
