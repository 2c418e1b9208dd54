// Writers for the GWOSC strain layout and the injection layout (DESIGN.md).
// Files are written under a temporary name and renamed, so a reader never
// sees a half-written file.
import { renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { h5, type H5File } from "./h5.js";

export const DQ_NAMES = ["DATA", "CBC_CAT1", "CBC_CAT2", "CBC_CAT3", "BURST_CAT1", "BURST_CAT2", "BURST_CAT3"] as const;

export async function withNewFile<T>(path: string, fill: (f: H5File) => T): Promise<T> {
  const lib = await h5();
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  const f = new lib.File(tmp, "w");
  let ok = false;
  try {
    const r = fill(f);
    ok = true;
    return r;
  } finally {
    f.close();
    if (ok) renameSync(tmp, path);
    else rmSync(tmp, { force: true });
  }
}

// h5wasm writes a bigint as an int64 scalar; its typings only list number.
const int64 = (x: number) => BigInt(x) as unknown as number;

function fixedStrings(names: readonly string[]): { data: string[]; dtype: string } {
  const len = Math.max(1, ...names.map((s) => Buffer.byteLength(s)));
  return { data: [...names], dtype: `A${len}` };
}

export interface StrainFileSpec {
  ifo: string;
  start: number; // integer GPS
  duration: number; // integer seconds
  sampleRate: number; // integer Hz
  dqMask: Int32Array; // `duration` values
  dqNames?: readonly string[];
  /** called for consecutive chunks; returns the samples [offset, offset + n) */
  samples: (offset: number, n: number) => Float64Array;
  chunk?: number;
}

/** A GWOSC-layout file (h5py-style fixed-length strings, int32 DQ mask, int64 meta). */
export async function writeStrainFile(path: string, s: StrainFileSpec): Promise<void> {
  const n = s.duration * s.sampleRate;
  const chunk = s.chunk ?? Math.min(n, 65536);
  await withNewFile(path, (f) => {
    const meta = f.create_group("meta");
    meta.create_dataset({ name: "Detector", data: s.ifo, dtype: `A${s.ifo.length}` });
    meta.create_dataset({ name: "Observatory", data: s.ifo[0], dtype: "A1" });
    meta.create_dataset({ name: "GPSstart", data: int64(s.start), dtype: "<q" });
    meta.create_dataset({ name: "Duration", data: int64(s.duration), dtype: "<q" });
    meta.create_dataset({ name: "Type", data: "StrainTimeSeries", dtype: "A16" });
    const q = f.create_group("quality").create_group("simple");
    q.create_dataset({ name: "DQmask", data: s.dqMask, dtype: "<i" });
    const names = fixedStrings(s.dqNames ?? DQ_NAMES);
    q.create_dataset({ name: "DQShortnames", data: names.data, dtype: names.dtype });
    const g = f.create_group("strain");
    const ds = g.create_dataset({
      name: "Strain",
      data: new Float64Array(0),
      shape: [0],
      maxshape: [n],
      chunks: [Math.max(1, chunk)],
      dtype: "<d",
    });
    ds.resize([n]);
    for (let o = 0; o < n; o += chunk) {
      const m = Math.min(chunk, n - o);
      ds.write_slice([[o, o + m]], s.samples(o, m));
    }
    ds.create_attribute("Xstart", s.start, null, "<d");
    ds.create_attribute("Xspacing", 1 / s.sampleRate, null, "<d");
    ds.create_attribute("Npoints", int64(n), null, "<q");
    ds.create_attribute("Xunits", "second", null, "A6");
    ds.create_attribute("Yunits", "strain", null, "A6");
  });
}

export interface InjectionFileSpec {
  times: Float64Array;
  sampleRate: number;
  tOffset: number;
  /** per detector, M waveforms of L samples, row-major */
  waveforms: Record<string, Float32Array>;
  length: number;
  parameters: Record<string, Float64Array>;
}

export async function writeInjectionFile(path: string, s: InjectionFileSpec): Promise<void> {
  const m = s.times.length;
  await withNewFile(path, (f) => {
    const g = f.create_group("injections");
    g.create_dataset({ name: "time", data: s.times, dtype: "<d" });
    for (const [ifo, w] of Object.entries(s.waveforms)) {
      g.create_dataset({ name: ifo, data: w, shape: [m, s.length], dtype: "<f" });
    }
    g.create_attribute("sample_rate", s.sampleRate, null, "<d");
    g.create_attribute("t_offset", s.tOffset, null, "<d");
    const p = f.create_group("parameters");
    for (const [name, v] of Object.entries(s.parameters)) p.create_dataset({ name, data: v, dtype: "<d" });
  });
}
