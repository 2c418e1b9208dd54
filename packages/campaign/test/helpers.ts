import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import h5wasm from "h5wasm/node";

export const FIXTURES = join(import.meta.dirname, "../../../../shared/fixtures");

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
  await h5wasm.ready;
  const f = new h5wasm.File(path, "w");
  try {
    const n = o.duration * o.rate;
    f.create_group("strain");
    const s = f.get("strain") as InstanceType<typeof h5wasm.Group>;
    const ds = s.create_dataset({ name: "Strain", data: new Float64Array(n) });
    ds.create_attribute("Xstart", o.start);
    ds.create_attribute("Xspacing", 1 / o.rate);
    ds.create_attribute("Npoints", n);
    f.create_group("meta");
    const m = f.get("meta") as InstanceType<typeof h5wasm.Group>;
    m.create_dataset({ name: "Detector", data: o.ifo });
    m.create_dataset({ name: "GPSstart", data: BigInt64Array.from([BigInt(o.start)]), shape: [] });
    m.create_dataset({ name: "Duration", data: BigInt64Array.from([BigInt(o.duration)]), shape: [] });
    f.create_group("quality");
    const q = f.get("quality") as InstanceType<typeof h5wasm.Group>;
    q.create_group("simple");
    const qs = f.get("quality/simple") as InstanceType<typeof h5wasm.Group>;
    const mask = new Int32Array(o.duration).fill(0b11);
    for (const [a, b] of o.bad ?? []) mask.fill(0, a, b);
    qs.create_dataset({ name: "DQmask", data: mask });
    qs.create_dataset({ name: "DQShortnames", data: ["DATA", "CBC_CAT1"] });
  } finally {
    f.close();
  }
}
