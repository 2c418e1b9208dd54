import { describe, expect, it } from "vitest";
import { SegmentList } from "@timeslide/segments";
import { injectInto, readInjections, type InjectionSet } from "../src/index.js";
import { fixture } from "../../../test/fixtures.js";

const FIX = fixture("injections.h5");

function sineGaussian(t: number): number {
  return Math.exp(-((t / 0.02) ** 2)) * Math.sin(2 * Math.PI * 100 * t);
}

function analyticSet(rate: number): InjectionSet {
  const L = Math.round(0.2 * rate);
  const tOffset = -0.1;
  const times = Float64Array.of(1000000010.3, 1000000020.7001);
  const w = new Float32Array(times.length * L);
  for (let i = 0; i < times.length; i++) for (let k = 0; k < L; k++) w[i * L + k] = sineGaussian(tOffset + k / rate);
  return { path: "analytic", times, sampleRate: rate, tOffset, length: L, waveforms: { H1: w, L1: w }, parameters: {} };
}

function target(rate: number, start = 1000000000, seconds = 32) {
  return { ifo: "L1", start, sampleRate: rate, data: new Float64Array(seconds * rate) };
}

describe("injection file", () => {
  it("reads the h5py fixture", async () => {
    const inj = await readInjections(FIX);
    expect(Array.from(inj.times)).toEqual([1187008070.25, 1187008200.5]);
    expect(inj.sampleRate).toBe(512);
    expect(inj.tOffset).toBe(-0.45);
    expect(inj.length).toBe(256);
    expect(Object.keys(inj.waveforms).sort()).toEqual(["H1", "L1"]);
    expect(Object.keys(inj.parameters).sort()).toEqual(["distance", "snr", "weight"]);
  });

  it("refuses a file without the layout", async () => {
    await expect(readInjections(fixture("background.h5"))).rejects.toThrow(/background\.h5: injections: missing group/);
  });
});

describe("adding injections", () => {
  it("at the same rate and on the grid: an exact copy at time + t_offset", () => {
    const set = { ...analyticSet(2048), tOffset: -0.125, times: Float64Array.of(1000000010.5) };
    const tg = target(2048);
    expect(injectInto(tg, set)).toEqual({ injected: [0], outside: [] });
    const i0 = (10.5 - 0.125) * 2048;
    for (let k = 0; k < set.length; k++) expect(tg.data[i0 + k]).toBe(set.waveforms.L1[k]);
    expect(tg.data[i0 - 1]).toBe(0);
    expect(tg.data[i0 + set.length]).toBe(0);
  });

  it("the h5py fixture's waveforms land at their times", async () => {
    const inj = await readInjections(FIX);
    const tg = { ifo: "H1", start: 1187008000, sampleRate: 512, data: new Float64Array(256 * 512) };
    expect(injectInto(tg, inj)).toEqual({ injected: [0, 1], outside: [] });
    // all the energy is within the waveform spans
    let inside = 0, total = 0;
    for (let j = 0; j < tg.data.length; j++) {
      const t = tg.start + j / 512;
      const e = tg.data[j] ** 2;
      total += e;
      if (inj.times.some((tc) => t >= tc - 0.45 - 0.01 && t < tc - 0.45 + 0.5 + 0.01)) inside += e;
    }
    expect(total).toBeGreaterThan(0);
    expect(inside / total).toBeGreaterThan(0.999999);
  });

  for (const [from, to] of [
    [512, 2048],
    [4096, 2048],
    [2048, 2048],
  ]) {
    it(`resamples ${from} Hz waveforms onto ${to} Hz data (off-grid times too)`, () => {
      const set = analyticSet(from);
      const tg = target(to);
      injectInto(tg, set);
      let err = 0;
      for (const tc of set.times) {
        const j0 = Math.ceil((tc - 0.08 - tg.start) * to);
        for (let j = j0; j < j0 + 0.16 * to; j++) err = Math.max(err, Math.abs(tg.data[j] - sineGaussian(tg.start + j / to - tc)));
      }
      expect(err).toBeLessThan(2e-3);
    });
  }

  it("applies the detector's shift and reports injections outside the analysed time", () => {
    const set = analyticSet(2048);
    const tg = target(2048);
    const analysed = new SegmentList([[1000000000, 1000000015]]);
    const rep = injectInto(tg, set, { shift: 2.5, analysed });
    expect(rep).toEqual({ injected: [0], outside: [1] });
    // the copy sits at time + shift in this detector's own GPS
    const j = Math.round((10.3 + 2.5 + 0.005) * 2048);
    expect(tg.data[j]).toBeCloseTo(sineGaussian(j / 2048 - 12.8), 3);
    expect(Math.abs(tg.data[j])).toBeGreaterThan(0.05);
    // nothing near the unshifted time
    expect(tg.data[Math.round((10.3 + 0.005) * 2048)]).toBe(0);
    // an injection beyond the data is outside too
    const short = target(2048, 1000000000, 12);
    expect(injectInto(short, set)).toEqual({ injected: [0], outside: [1] });
  });
});
