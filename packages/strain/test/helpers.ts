// Small GWOSC-like files with chosen defects, written with raw h5wasm so a
// test can break any part of the layout.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import h5wasm from "h5wasm/node";

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "timeslide-strain-"));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface FakeFile {
  ifo?: string;
  start?: number;
  duration?: number;
  rate?: number;
  strain?: Float64Array | Int32Array;
  xstart?: number;
  xspacing?: number;
  npoints?: number;
  omit?: string[];
  names?: string[];
}

const int64 = (x: number) => BigInt(x) as unknown as number;

export async function writeFake(path: string, o: FakeFile = {}): Promise<string> {
  const lib = h5wasm;
  const m = await lib.ready;
  m.activate_throwing_error_handler();
  const start = o.start ?? 1000000000;
  const duration = o.duration ?? 8;
  const rate = o.rate ?? 64;
  const n = duration * rate;
  const strain = o.strain ?? Float64Array.from({ length: n }, (_, i) => Math.sin(i / 7) + i * 1e-3);
  const omit = new Set(o.omit ?? []);
  const f = new lib.File(path, "w");
  const meta = f.create_group("meta");
  if (!omit.has("meta/Detector")) meta.create_dataset({ name: "Detector", data: o.ifo ?? "H1", dtype: "A2" });
  if (!omit.has("meta/GPSstart")) meta.create_dataset({ name: "GPSstart", data: int64(start), dtype: "<q" });
  if (!omit.has("meta/Duration")) meta.create_dataset({ name: "Duration", data: int64(duration), dtype: "<q" });
  const q = f.create_group("quality").create_group("simple");
  if (!omit.has("quality/simple/DQmask")) q.create_dataset({ name: "DQmask", data: new Int32Array(duration).fill(3) });
  q.create_dataset({ name: "DQShortnames", data: o.names ?? ["DATA", "CBC_CAT1"], dtype: "A8" });
  const g = f.create_group("strain");
  if (!omit.has("strain/Strain")) {
    const ds = g.create_dataset({ name: "Strain", data: strain, dtype: strain instanceof Int32Array ? "<i" : "<d" });
    if (!omit.has("Xstart")) ds.create_attribute("Xstart", o.xstart ?? start, null, "<d");
    if (!omit.has("Xspacing")) ds.create_attribute("Xspacing", o.xspacing ?? 1 / rate, null, "<d");
    if (!omit.has("Npoints")) ds.create_attribute("Npoints", int64(o.npoints ?? strain.length), null, "<q");
  }
  f.close();
  return path;
}
