import { copyFileSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import h5wasm from "h5wasm/node";
import { DetectorStream, readStrainFileInfo, StrainFileError } from "../src/index.js";
import { tempDir, writeFake } from "./helpers.js";
import { fixture } from "../../../test/fixtures.js";

const FIX = fixture("gwosc");
const H1 = [`${FIX}/H-H1_GWOSC_512HZ_R1-1187008000-128.hdf5`, `${FIX}/H-H1_GWOSC_512HZ_R1-1187008128-128.hdf5`];
const L1 = [`${FIX}/L-L1_GWOSC_512HZ_R1-1187008000-128.hdf5`, `${FIX}/L-L1_GWOSC_512HZ_R1-1187008128-128.hdf5`];

async function rawStrain(path: string): Promise<Float64Array> {
  await h5wasm.ready;
  const f = new h5wasm.File(path, "r");
  try {
    return (f.get("strain/Strain") as InstanceType<typeof h5wasm.Dataset>).value as Float64Array;
  } finally {
    f.close();
  }
}

describe("files written by h5py (GWOSC layout)", () => {
  it("reads metadata, fixed-length strings and the int DQ mask", async () => {
    const info = await readStrainFileInfo(H1[1]);
    expect(info.ifo).toBe("H1");
    expect(info.start).toBe(1187008128);
    expect(info.duration).toBe(128);
    expect(info.xstart).toBe(1187008128);
    expect(info.sampleRate).toBe(512);
    expect(info.npoints).toBe(65536);
    expect(info.dq.names.slice(0, 3)).toEqual(["DATA", "CBC_CAT1", "CBC_CAT2"]);
    expect(info.dq.mask).toBeInstanceOf(Int32Array);
    expect(info.dq.mask.length).toBe(128);
    expect(info.dq.start).toBe(1187008128);
  });

  it("a slice across the file boundary equals the concatenation", async () => {
    const s = await DetectorStream.open(H1, { ifo: "H1" });
    const a = await rawStrain(H1[0]);
    const b = await rawStrain(H1[1]);
    const slice = await s.read(1187008100, 1187008160);
    expect(slice.start).toBe(1187008100);
    expect(slice.sampleRate).toBe(512);
    const expected = new Float64Array(60 * 512);
    expected.set(a.subarray(100 * 512));
    expected.set(b.subarray(0, 32 * 512), 28 * 512);
    expect(slice.data).toEqual(expected);
    expect(slice.gaps.length).toBe(0);
  });

  it("reports NaN gaps as segments, and DQ segments match them", async () => {
    const h = await DetectorStream.open(H1);
    const hs = await h.read(1187008000, 1187008256);
    expect(hs.gaps.toJSON()).toEqual([[1187008040, 1187008052]]);
    expect(h.dataSegments(["DATA", "CBC_CAT1"]).toJSON()).toEqual([
      [1187008000, 1187008040],
      [1187008052, 1187008256],
    ]);
    const l = await DetectorStream.open([...L1].reverse(), { ifo: "L1" });
    const ls = await l.read(1187008140, 1187008200);
    expect(ls.gaps.toJSON()).toEqual([[1187008150, 1187008170]]);
    expect(l.dataSegments(["DATA"]).toJSON()).toEqual([
      [1187008000, 1187008150],
      [1187008170, 1187008256],
    ]);
  });

  it("time without files is NaN and reported as a gap", async () => {
    const h = await DetectorStream.open([H1[1]]);
    const s = await h.read(1187008120, 1187008130);
    expect(s.gaps.toJSON()).toEqual([[1187008120, 1187008128]]);
    expect(Number.isNaN(s.data[0])).toBe(true);
    expect(Number.isFinite(s.data[8 * 512])).toBe(true);
  });

  it("refuses a detector that is not the campaign's", async () => {
    await expect(DetectorStream.open(H1, { ifo: "L1" })).rejects.toThrow(/H-H1_GWOSC_512HZ_R1-1187008000-128\.hdf5: meta\/Detector: is H1, expected L1/);
    await expect(DetectorStream.open([H1[0], L1[1]])).rejects.toThrow(/meta\/Detector: is L1, expected H1/);
  });
});

describe("clear errors for files that can't be used", () => {
  const t = tempDir();
  afterAll(t.cleanup);

  const cases: Array<[string, Parameters<typeof writeFake>[1], RegExp]> = [
    ["missing strain", { omit: ["strain/Strain"] }, /strain\/Strain: missing dataset/],
    ["missing detector", { omit: ["meta/Detector"] }, /meta\/Detector: missing dataset/],
    ["missing DQ mask", { omit: ["quality/simple/DQmask"] }, /quality\/simple\/DQmask: missing dataset/],
    ["missing Xspacing", { omit: ["Xspacing"] }, /strain\/Strain attribute Xspacing: missing attribute/],
    ["integer strain", { strain: new Int32Array(8 * 64) }, /strain\/Strain: wrong dtype .*expected float/],
    ["Npoints disagrees", { npoints: 1000 }, /holds 512 samples but attribute Npoints says 1000/],
    ["Xstart off the file span", { xstart: 5 }, /Xstart.*5 does not match meta\/GPSstart/],
    ["too few samples for Duration", { strain: new Float64Array(100) }, /100 samples at 64 Hz span .* but meta\/Duration is 8 s/],
  ];
  for (const [name, spec, re] of cases) {
    it(name, async () => {
      const p = await writeFake(join(t.dir, `${name.replace(/ /g, "_")}.h5`), spec);
      const err = await readStrainFileInfo(p).catch((e) => e);
      expect(err).toBeInstanceOf(StrainFileError);
      expect(err.message).toContain(p);
      expect(err.message).toMatch(re);
    });
  }

  it("a missing file and a non-HDF5 file", async () => {
    await expect(readStrainFileInfo(join(t.dir, "nope.h5"))).rejects.toThrow(/nope\.h5: file: does not exist/);
    const txt = join(t.dir, "text.h5");
    writeFileSync(txt, "not hdf5 at all");
    await expect(readStrainFileInfo(txt)).rejects.toThrow(/text\.h5: file: not a readable HDF5 file \(file signature not found\)/);
  });

  it("a truncated file", async () => {
    const p = join(t.dir, "truncated.hdf5");
    copyFileSync(H1[0], p);
    writeFileSync(p, readFileSync(p).subarray(0, 200_000));
    const err = await readStrainFileInfo(p).catch((e) => e);
    expect(err).toBeInstanceOf(StrainFileError);
    expect(err.message).toMatch(/truncated\.hdf5: .*trunc/i);
  });

  it("inconsistent sample rates across files", async () => {
    const a = await writeFake(join(t.dir, "rate-a.h5"), { start: 1000000000, rate: 64 });
    const b = await writeFake(join(t.dir, "rate-b.h5"), { start: 1000000008, rate: 128 });
    await expect(DetectorStream.open([a, b])).rejects.toThrow(/rate-b\.h5: strain\/Strain attribute Xspacing: .*128 Hz.* differs from .*64 Hz.*rate-a\.h5/);
  });

  it("a file off the sample grid", async () => {
    const a = await writeFake(join(t.dir, "grid-a.h5"), { start: 1000000000 });
    const b = await writeFake(join(t.dir, "grid-b.h5"), { start: 1000000008, xstart: 1000000008 + 0.4 / 64 });
    await expect(DetectorStream.open([a, b])).rejects.toThrow(/grid-b\.h5: .*Xstart.*not on the sample grid/);
  });

  it("overlapping files: equal samples are fine, disagreeing ones are refused", async () => {
    const base = Float64Array.from({ length: 16 * 64 }, (_, i) => Math.cos(i / 5));
    const a = await writeFake(join(t.dir, "ov-a.h5"), { start: 1000000000, strain: base.slice(0, 8 * 64) });
    const b = await writeFake(join(t.dir, "ov-b.h5"), { start: 1000000004, strain: base.slice(4 * 64, 12 * 64) });
    const s = await DetectorStream.open([a, b]);
    expect((await s.read(1000000000, 1000000012)).data).toEqual(base.slice(0, 12 * 64));
    const bad = base.slice(4 * 64, 12 * 64);
    bad[10] += 1e-6;
    const c = await writeFake(join(t.dir, "ov-c.h5"), { start: 1000000004, strain: bad });
    await expect(DetectorStream.open([a, c])).rejects.toThrow(/ov-c\.h5: strain\/Strain: overlaps .*ov-a\.h5 and disagrees with it at GPS 1000000004\.15625/);
  });
});
