import { readFileSync, readdirSync } from "node:fs";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import h5wasm from "h5wasm/node";
import { SegmentList } from "@timeslide/segments";
import { DetectorStream, readInjections, readStrainFileInfo, synthesize, observingRunPsd, optimalSnr, type SynthResult } from "../src/index.js";
import { tempDir } from "./helpers.js";

const t = tempDir();
afterAll(t.cleanup);

const base = { ifos: ["H1", "L1"], duration: 96, sampleRate: 512, gaps: 2, injections: 3, snr: [8, 30] as [number, number] };

async function allStrain(r: SynthResult, ifo: string): Promise<Float64Array> {
  const s = await DetectorStream.open(r.files[ifo], { ifo });
  return (await s.read(r.start, r.end)).data;
}

function sameSamples(a: Float64Array, b: Float64Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!(a[i] === b[i] || (Number.isNaN(a[i]) && Number.isNaN(b[i])))) return false;
  return true;
}

describe("synthetic data sets", async () => {
  const a = await synthesize({ ...base, out: join(t.dir, "a"), fileDuration: 32, seed: 5 });
  const b = await synthesize({ ...base, out: join(t.dir, "b"), fileDuration: 32, seed: 5 });
  const c = await synthesize({ ...base, out: join(t.dir, "c"), fileDuration: 48, seed: 5 });
  const d = await synthesize({ ...base, out: join(t.dir, "d"), fileDuration: 32, seed: 6 });

  it("writes GWOSC-layout files for every detector and an injection file", () => {
    expect(readdirSync(join(t.dir, "a")).sort()).toEqual([
      "H-H1_SYNTH_512HZ_R1-1187008000-32.hdf5",
      "H-H1_SYNTH_512HZ_R1-1187008032-32.hdf5",
      "H-H1_SYNTH_512HZ_R1-1187008064-32.hdf5",
      "L-L1_SYNTH_512HZ_R1-1187008000-32.hdf5",
      "L-L1_SYNTH_512HZ_R1-1187008032-32.hdf5",
      "L-L1_SYNTH_512HZ_R1-1187008064-32.hdf5",
      "glitches.txt",
      "injections.h5",
    ]);
    expect(a.glitchFile).toBe(join(t.dir, "a", "glitches.txt"));
    expect(a.injectionFile).toBe(join(t.dir, "a", "injections.h5"));
  });

  it("is deterministic for a seed, and another seed gives other data", async () => {
    for (const ifo of base.ifos) {
      expect(sameSamples(await allStrain(a, ifo), await allStrain(b, ifo))).toBe(true);
      expect(sameSamples(await allStrain(a, ifo), await allStrain(d, ifo))).toBe(false);
    }
    const ia = await readInjections(a.injectionFile!);
    const ib = await readInjections(b.injectionFile!);
    expect(ia.times).toEqual(ib.times);
    expect(ia.parameters).toEqual(ib.parameters);
    expect(ia.waveforms.L1).toEqual(ib.waveforms.L1);
    expect(a.gaps).toEqual(b.gaps);
    expect(a.glitches).toEqual(b.glitches);
    expect(readFileSync(a.glitchFile!, "utf8")).toBe(readFileSync(b.glitchFile!, "utf8"));
  });

  it("noise is continuous across file boundaries (independent of the file length)", async () => {
    for (const ifo of base.ifos) expect(sameSamples(await allStrain(a, ifo), await allStrain(c, ifo))).toBe(true);
  });

  it("DQ gaps have NaN strain and unset DQ bits; strings are fixed-length like h5py's", async () => {
    for (const ifo of base.ifos) {
      const s = await DetectorStream.open(a.files[ifo], { ifo });
      const slice = await s.read(a.start, a.end);
      expect(a.gaps[ifo].length).toBeGreaterThan(0);
      expect(slice.gaps.toJSON()).toEqual(new SegmentList(a.gaps[ifo]).coalesce().toJSON());
      const good = s.dataSegments(["DATA", "CBC_CAT1", "CBC_CAT2"]);
      expect(good.toJSON()).toEqual(new SegmentList([[a.start, a.end]]).subtract(new SegmentList(a.gaps[ifo])).toJSON());
    }
    const info = await readStrainFileInfo(a.files.H1[0]);
    expect(info.dq.names).toEqual(["DATA", "CBC_CAT1", "CBC_CAT2", "CBC_CAT3", "BURST_CAT1", "BURST_CAT2", "BURST_CAT3"]);
    await h5wasm.ready;
    const f = new h5wasm.File(a.files.H1[0], "r");
    try {
      const names = f.get("quality/simple/DQShortnames") as InstanceType<typeof h5wasm.Dataset>;
      expect((names.metadata as { vlen: boolean }).vlen).toBe(false);
      expect((f.get("quality/simple/DQmask") as InstanceType<typeof h5wasm.Dataset>).dtype).toBe("<i");
    } finally {
      f.close();
    }
  });

  it("injections: snr, distance, weight columns; waveforms carry the drawn optimal SNR; distinct per detector", async () => {
    const inj = await readInjections(a.injectionFile!);
    expect(inj.times.length).toBe(3);
    expect(inj.sampleRate).toBe(512);
    for (const col of ["snr", "distance", "weight"]) expect(inj.parameters[col]).toHaveLength(3);
    for (let i = 0; i < 3; i++) {
      const rho = inj.parameters.snr[i];
      expect(rho).toBeGreaterThanOrEqual(8);
      expect(rho).toBeLessThanOrEqual(30);
      expect(inj.parameters.distance[i]).toBeGreaterThan(0);
      expect(inj.times[i]).toBeGreaterThan(a.start);
      expect(inj.times[i]).toBeLessThan(a.end);
      const L = inj.length;
      const h = inj.waveforms.H1.subarray(i * L, (i + 1) * L);
      const l = inj.waveforms.L1.subarray(i * L, (i + 1) * L);
      // realistic mode: SNR against the realistic PSD (design fit + wall), from 20 Hz
      const rh = optimalSnr(h, inj.sampleRate, observingRunPsd, 20);
      const rl = optimalSnr(l, inj.sampleRate, observingRunPsd, 20);
      expect(Math.hypot(rh, rl) / rho).toBeCloseTo(1, 4);
      expect(Math.abs(rh - rl)).toBeGreaterThan(1e-3);
      // arrival times differ, within the H1–L1 light travel time (~10 ms) plus a sample
      const peak = (w: Float32Array) => w.reduce((m, v, k) => (Math.abs(v) > Math.abs(w[m]) ? k : m), 0);
      expect(Math.abs(peak(h) - peak(l)) / inj.sampleRate).toBeLessThan(0.0105 + 2 / inj.sampleRate);
    }
  });
});

describe("clean mode", () => {
  it("writes exactly what the previous release wrote (strain, gaps, injections) for the same seed", async () => {
    // Golden digest computed with the code before realistic mode (main at
    // 769b390), for these options; the same code path runs with clean: true.
    const r = await synthesize({ ifos: ["H1", "L1"], duration: 64, sampleRate: 256, fileDuration: 32, gaps: 1, injections: 2, snr: [8, 30], seed: 5, clean: true, out: join(t.dir, "clean") });
    expect(r.mode).toBe("clean");
    expect(r.glitchFile).toBeUndefined();
    expect(readdirSync(join(t.dir, "clean")).some((f) => f.startsWith("glitches"))).toBe(false);
    const h = createHash("sha256");
    for (const ifo of ["H1", "L1"]) h.update(Buffer.from((await allStrain(r, ifo)).buffer));
    const inj = await readInjections(r.injectionFile!);
    h.update(Buffer.from(inj.times.buffer));
    for (const ifo of ["H1", "L1"]) h.update(Buffer.from(inj.waveforms[ifo].buffer));
    for (const k of Object.keys(inj.parameters).sort()) {
      h.update(k);
      h.update(Buffer.from(inj.parameters[k].buffer));
    }
    expect(h.digest("hex")).toBe("b3f54cc65e1558dba10455a669d9ad8f3310a0d431e387a7c51363f7f843328b");
    expect(r.gaps).toEqual({ H1: [[1187008022, 1187008046]], L1: [[1187008043, 1187008049]] });
  });
});
