import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeStrainFile } from "@timeslide/strain";

export { FIXTURES } from "../../../test/fixtures.js";

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "timeslide-campaign-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export function writeCampaign(dir: string, yaml: string, name = "campaign.yaml"): string {
  const p = join(dir, name);
  writeFileSync(p, yaml);
  return p;
}

/**
 * A small GWOSC-layout file: zero strain at `rate` Hz, DQ bits DATA and
 * CBC_CAT1 set except in `bad` seconds (relative to start).
 */
export async function writeGwoscFile(
  path: string,
  o: { ifo: string; start: number; duration: number; rate: number; bad?: Array<[number, number]> },
): Promise<void> {
  const mask = new Int32Array(o.duration).fill(0b11);
  for (const [a, b] of o.bad ?? []) mask.fill(0, a, b);
  await writeStrainFile(path, { ifo: o.ifo, start: o.start, duration: o.duration, sampleRate: o.rate, dqMask: mask, samples: (_, n) => new Float64Array(n) });
}
