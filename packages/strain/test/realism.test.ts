// Realistic synthetic data, checked on the files `synthesize` writes (read
// back through DetectorStream): the low-frequency wall and the lines in the
// Welch spectrum (absent in clean mode), the PSD level drifting over the
// file, glitches at the configured rate and present in the strain at the
// listed times, and injections whose H1–L1 arrival-time difference and
// amplitudes follow from their sky position, computed here independently
// from the detectors' vertex positions and arm directions.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DETECTOR_ARMS, DETECTOR_VERTICES, lightTravelTime } from "@timeslide/segments";
import { DetectorStream, observingRunPsd, readGlitchList, readInjections, synthesize, welchPsd, whiten, type SynthResult } from "../src/index.js";
import { RealFFT, nextPow2 } from "../src/fft.js";
import { tempDir } from "./helpers.js";

const t = tempDir();
afterAll(t.cleanup);

async function strain(r: SynthResult, ifo: string): Promise<Float64Array> {
  const s = await DetectorStream.open(r.files[ifo], { ifo });
  try {
    return (await s.read(r.start, r.end)).data;
  } finally {
    s.close();
  }
}

/** ASD at the Welch bin nearest f. */
const asdAt = (p: { values: Float64Array; df: number }, f: number) => Math.sqrt(p.values[Math.round(f / p.df)]);
/** Median ASD of the bins 2–6 Hz away from f on both sides (the line's neighbourhood). */
function neighbours(p: { values: Float64Array; df: number }, f: number): number {
  const v: number[] = [];
  for (let d = 2; d <= 6; d += p.df) v.push(asdAt(p, f - d), asdAt(p, f + d));
  v.sort((a, b) => a - b);
  return v[v.length >> 1];
}

describe("realistic synthetic data: spectrum", async () => {
  const common = { ifos: ["H1", "L1"], duration: 256, sampleRate: 2048, fileDuration: 128, seed: 21, glitchRate: 0 };
  const real = await synthesize({ ...common, out: join(t.dir, "spec-real") });
  const clean = await synthesize({ ...common, out: join(t.dir, "spec-clean"), clean: true });
  const noLines = await synthesize({ ...common, out: join(t.dir, "spec-nolines"), lines: false });
  const psd = async (r: SynthResult, ifo: string) => welchPsd(await strain(r, ifo), common.sampleRate, { fftlength: 8 });

  it("has the low-frequency wall: ASD(5 Hz) ≥ 10³ × ASD(50 Hz); clean data is flat below 10 Hz", async () => {
    for (const ifo of common.ifos) {
      const p = await psd(real, ifo);
      const wall = asdAt(p, 5) / asdAt(p, 50);
      expect(wall).toBeGreaterThan(1e3);
      // and the rise is steep and monotone from 30 Hz down to 5 Hz
      expect(asdAt(p, 10) / asdAt(p, 30)).toBeGreaterThan(10);
      expect(asdAt(p, 5) / asdAt(p, 10)).toBeGreaterThan(100);
      // the written strain follows the model's shape from 2 Hz up (the colouring FIR
      // realises the wall): relative to 50 Hz, since the drift moves the overall level
      // (PSD and model averaged over the 9 Welch bins within ±0.5 Hz: one bin scatters by ~8 % in ASD)
      const band = (fn: (g: number) => number, f: number) => {
        let a = 0;
        for (let j = -4; j <= 4; j++) a += fn(f + j * p.df);
        return Math.sqrt(a / 9);
      };
      const measured = (g: number) => p.values[Math.round(g / p.df)];
      for (const f of [2, 3, 4, 5, 6, 8, 10, 12, 20, 30, 40, 100, 200, 300]) {
        const rel = band(measured, f) / band(measured, 50) / (band(observingRunPsd, f) / band(observingRunPsd, 50));
        expect(rel, `${ifo} ${f} Hz`).toBeGreaterThan(0.85);
        expect(rel, `${ifo} ${f} Hz`).toBeLessThan(1.18);
      }
      const c = await psd(clean, ifo);
      expect(asdAt(c, 5) / asdAt(c, 50)).toBeLessThan(50);
      expect(asdAt(c, 5) / asdAt(c, 8)).toBeCloseTo(1, 0);
    }
  });

  it("has mains, violin-mode and calibration lines well above their neighbourhood; none in clean mode or with lines off", async () => {
    for (const ifo of common.ifos) {
      const p = await psd(real, ifo);
      const c = await psd(clean, ifo);
      const n = await psd(noLines, ifo);
      const lines = ifo === "H1" ? [60, 120, 180, 500.2, 504.8, 410.3] : [60, 120, 180, 500.875, 499, 434.875];
      for (const f of lines) {
        expect(asdAt(p, f) / neighbours(p, f), `${ifo} ${f} Hz`).toBeGreaterThan(5);
        expect(asdAt(c, f) / neighbours(c, f), `${ifo} ${f} Hz clean`).toBeLessThan(2.5);
        expect(asdAt(n, f) / neighbours(n, f), `${ifo} ${f} Hz no lines`).toBeLessThan(2.5);
      }
      // lines only below Nyquist: at 2048 Hz, nothing near the 1083 Hz calibration line is possible
      expect(p.values.length * p.df).toBeLessThan(1083);
    }
  });
});

describe("realistic synthetic data: drift and glitches", async () => {
  const fs = 256;
  const rate = 1; // per minute per detector
  const r = await synthesize({ ifos: ["H1", "L1"], duration: 7200, sampleRate: fs, fileDuration: 1800, seed: 8, gaps: 2, glitchRate: rate, lines: false, out: join(t.dir, "glitch") });
  const listed = readGlitchList(readFileSync(r.glitchFile!, "utf8"));

  it("the glitch list file holds what was added, one line per glitch", () => {
    expect(listed.length).toBe(r.glitches.H1.length + r.glitches.L1.length);
    expect(listed.filter((g) => g.ifo === "H1").map((g) => g.time)).toEqual(r.glitches.H1.map((g) => Number(g.time.toFixed(6))));
    for (const g of listed) {
      expect(["blip", "sine_gaussian"]).toContain(g.kind);
      expect(g.snr).toBeGreaterThanOrEqual(6);
      expect(g.frequency).toBeLessThan(fs / 2);
    }
  });

  it("glitch counts per detector are within Poisson bounds of the configured rate; detectors are independent", () => {
    for (const ifo of ["H1", "L1"]) {
      const gapTime = r.gaps[ifo].reduce((a, [s, e]) => a + (e - s + 2), 0);
      const expected = (rate * (7200 - gapTime)) / 60;
      const n = r.glitches[ifo].length;
      expect(Math.abs(n - expected)).toBeLessThan(4 * Math.sqrt(expected));
    }
    const h = new Set(r.glitches.H1.map((g) => Math.round(g.time)));
    const shared = r.glitches.L1.filter((g) => h.has(Math.round(g.time))).length;
    expect(shared).toBeLessThan(10); // ~1.6 by chance at 2 per minute; a copied list would share all
  });

  it("SNRs are heavy-tailed (Pareto from 6, index 2): median ≈ 8.5, a tail well beyond 30", () => {
    const snr = listed.map((g) => g.snr).sort((a, b) => a - b);
    const median = snr[snr.length >> 1];
    expect(median).toBeGreaterThan(7.2);
    expect(median).toBeLessThan(10);
    const frac20 = snr.filter((s) => s > 20).length / snr.length; // expected (6/20)² = 9 %
    expect(frac20).toBeGreaterThan(0.04);
    expect(frac20).toBeLessThan(0.16);
  });

  // Whitened with a fixed filter (PSD of the first 64 s of good data),
  // excess power in a window around each listed glitch.
  const whitenedGood = async (ifo: string) => {
    const x = await strain(r, ifo);
    const good: Array<[number, number]> = [];
    let a = 0;
    for (const [s, e] of r.gaps[ifo]) {
      good.push([a, (s - r.start) * fs]);
      a = (e - r.start) * fs;
    }
    good.push([a, x.length]);
    return good.map(([i0, i1]) => ({ i0, w: whiten(x.subarray(i0, i1), { sampleRate: fs, psdLength: 64, fduration: 2, highpass: 24 }) }));
  };

  it("glitches are in the strain at the listed times: whitened excess power (z > 3 from SNR 12, > 20 above SNR 30); random times are quiet", async () => {
    for (const ifo of ["H1", "L1"]) {
      const pieces = await whitenedGood(ifo);
      // energy of the whitened strain in [k − half, k + half], in units of the
      // local whitened noise level (median of 0.25 s blocks within ±30 s, the
      // ±1.5 s around k left out), so the drift of the PSD cancels
      const energy = (tc: number, half: number) => {
        const k = Math.round((tc - r.start) * fs);
        const p = pieces.find((q) => k - 31 * fs >= q.i0 + q.w.valid[0] && k + 31 * fs < q.i0 + q.w.valid[1]);
        if (!p) return undefined;
        const w = p.w.data;
        const blocks: number[] = [];
        for (let b = k - 30 * fs; b < k + 30 * fs; b += 64) {
          if (Math.abs(b + 32 - k) < 1.5 * fs) continue;
          let e = 0;
          for (let i = b; i < b + 64; i++) e += w[i - p.i0] ** 2;
          blocks.push(e / 64);
        }
        blocks.sort((a, b) => a - b);
        const level = blocks[blocks.length >> 1];
        let e = 0;
        for (let i = k - half; i <= k + half; i++) e += w[i - p.i0] ** 2;
        return e / level;
      };
      let checked = 0;
      for (const g of r.glitches[ifo]) {
        if (g.snr < 12) continue;
        const half = Math.max(32, Math.ceil(3 * g.tau * fs));
        const e = energy(g.time, half);
        if (e === undefined) continue;
        const n = 2 * half + 1;
        const z = (e - n) / Math.sqrt(2 * n);
        // the whitened excess energy is ρ² less what lies below the whitening's
        // highpass (low blips lose up to ~70 %): z ≳ 4 at ρ = 12 even then
        expect(z, `${ifo} ${g.kind} at ${g.time}, ${g.frequency.toFixed(1)} Hz, snr ${g.snr.toFixed(1)}`).toBeGreaterThan(3);
        expect((e - n) / g.snr ** 2).toBeGreaterThan(0.2);
        if (g.snr > 30) expect(z).toBeGreaterThan(20);
        checked++;
      }
      expect(checked).toBeGreaterThan(3);
      // control: windows at random times away from glitches are quiet
      let loud = 0, tried = 0;
      for (let j = 0; j < 200; j++) {
        const tc = r.start + 50 + j * 35.7;
        if (r.glitches[ifo].some((g) => Math.abs(g.time - tc) < 2)) continue;
        const e = energy(tc, 32);
        if (e === undefined) continue;
        tried++;
        if ((e - 65) / Math.sqrt(130) > 3) loud++;
      }
      expect(loud).toBeLessThanOrEqual(Math.ceil(0.02 * tried));
    }
  });

  it("the PSD level drifts by tens of percent over the two hours, smoothly", async () => {
    // in-band (60–100 Hz) power of the raw strain in 5-minute stretches of good data
    const x = await strain(r, "H1");
    const levels: number[] = [];
    for (let s = 0; s + 300 <= 7200; s += 300) {
      const seg = x.subarray(s * fs, (s + 300) * fs);
      if (seg.some((v) => Number.isNaN(v))) continue;
      const p = welchPsd(seg, fs, { fftlength: 2 });
      let band = 0;
      for (let f = 60; f <= 100; f += p.df) band += p.values[Math.round(f / p.df)];
      levels.push(band);
    }
    expect(levels.length).toBeGreaterThan(18);
    const max = Math.max(...levels), min = Math.min(...levels);
    expect(max / min).toBeGreaterThan(1.25);
    expect(max / min).toBeLessThan(4);
    // smooth: neighbouring 5-minute stretches differ far less than the whole range
    for (let i = 1; i < levels.length; i++) expect(Math.abs(Math.log(levels[i] / levels[i - 1]))).toBeLessThan(0.3);
  });
});

// ---- sky-consistent injections, checked with an independent computation

const C = 299_792_458;
type V = readonly [number, number, number];
const dot = (a: V, b: V) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

/** GMST from the Earth rotation angle (IAU 2000) plus the leading precession term; GPS − UTC = 18 s (since 2017). */
function gmstIndependent(gps: number): number {
  const du = (gps - 18 + 315_964_800) / 86_400 + 2_440_587.5 - 2_451_545.0;
  const era = 2 * Math.PI * (0.779057273264 + 0.00273781191135448 * du + (du % 1));
  const T = du / 36_525;
  const arcsec = 0.014506 + 4612.156534 * T + 1.3915817 * T * T;
  const g = era + (arcsec / 3600) * (Math.PI / 180);
  return ((g % (2 * Math.PI)) + 2 * Math.PI) % (2 * Math.PI);
}

/** Time shift of b relative to a (s) from the slope of the cross-spectrum's phase: a(t) ≈ c·b(t − Δ) up to a constant phase. */
function relativeDelay(a: Float32Array, b: Float32Array, fs: number): number {
  const n = nextPow2(a.length * 2);
  const fft = new RealFFT(n);
  const pad = (x: Float32Array) => {
    const y = new Float64Array(n);
    y.set(x);
    return fft.forward(y);
  };
  const A = pad(a), B = pad(b);
  // weighted least squares of the unwrapped phase of A·conj(B) against f
  let prev = 0, offset = 0;
  let sw = 0, sf = 0, sp = 0, sff = 0, sfp = 0;
  let wmax = 0;
  const rows: Array<[number, number, number]> = [];
  for (let k = 1; k < n / 2; k++) {
    const re = A[2 * k] * B[2 * k] + A[2 * k + 1] * B[2 * k + 1];
    const im = A[2 * k + 1] * B[2 * k] - A[2 * k] * B[2 * k + 1];
    const w = Math.hypot(re, im);
    let ph = Math.atan2(im, re) + offset;
    while (ph - prev > Math.PI) { ph -= 2 * Math.PI; offset -= 2 * Math.PI; }
    while (ph - prev < -Math.PI) { ph += 2 * Math.PI; offset += 2 * Math.PI; }
    prev = ph;
    rows.push([(k * fs) / n, ph, w]);
    wmax = Math.max(wmax, w);
  }
  for (const [f, ph, w] of rows) {
    if (w < 1e-3 * wmax) continue; // only where the chirp has power
    sw += w; sf += w * f; sp += w * ph; sff += w * f * f; sfp += w * f * ph;
  }
  const slope = (sw * sfp - sf * sp) / (sw * sff - sf * sf);
  // A·conj(B) ∝ exp(−2πi f (ta − tb))
  return -slope / (2 * Math.PI);
}

describe("realistic synthetic data: injections from one sky position", async () => {
  const fs = 2048;
  const r = await synthesize({ ifos: ["H1", "L1"], duration: 120, sampleRate: fs, fileDuration: 120, seed: 13, injections: 12, snr: [10, 20], glitchRate: 0, out: join(t.dir, "sky") });
  const inj = await readInjections(r.injectionFile!);

  it("stores ra, dec, psi, inclination and the geocentre time per injection", () => {
    for (const c of ["ra", "dec", "psi", "inclination", "geocent_time", "coa_phase", "snr_H1", "snr_L1"]) expect(inj.parameters[c], c).toHaveLength(12);
    for (let i = 0; i < 12; i++) {
      expect(Math.abs(inj.parameters.dec[i])).toBeLessThanOrEqual(Math.PI / 2);
      expect(Math.abs(inj.times[i] - inj.parameters.geocent_time[i])).toBeLessThan(0.03);
    }
  });

  it("H1–L1 arrival-time difference in the waveforms: within the light travel time, equal to the sky position's to 1e-4 s", () => {
    const L = inj.length;
    const ltt = lightTravelTime("H1", "L1");
    const rH = DETECTOR_VERTICES.H1, rL = DETECTOR_VERTICES.L1;
    let spread = 0;
    for (let i = 0; i < 12; i++) {
      const h = inj.waveforms.H1.subarray(i * L, (i + 1) * L);
      const l = inj.waveforms.L1.subarray(i * L, (i + 1) * L);
      const measured = relativeDelay(h, l, inj.sampleRate); // t_H1 − t_L1
      const ra = inj.parameters.ra[i], dec = inj.parameters.dec[i];
      const gha = gmstIndependent(inj.parameters.geocent_time[i]) - ra;
      const n: V = [Math.cos(dec) * Math.cos(gha), -Math.cos(dec) * Math.sin(gha), Math.sin(dec)];
      const expected = -(dot(rH, n) - dot(rL, n)) / C;
      expect(Math.abs(measured)).toBeLessThanOrEqual(ltt + 1e-4);
      expect(Math.abs(measured - expected), `injection ${i}: ${measured} vs ${expected}`).toBeLessThan(1e-4);
      // the reference time is H1's arrival
      const tH = inj.parameters.geocent_time[i] - dot(rH, n) / C;
      expect(Math.abs(inj.times[i] - tH)).toBeLessThan(1e-6);
      spread = Math.max(spread, Math.abs(expected));
    }
    expect(spread).toBeGreaterThan(0.003); // the sky positions do move the delay around
  });

  it("per-detector SNRs follow the antenna patterns of the two detectors for the injection's sky position, polarisation and inclination", () => {
    const amp = (ifo: string, i: number) => {
      const { x, y } = DETECTOR_ARMS[ifo];
      const ra = inj.parameters.ra[i], dec = inj.parameters.dec[i], psi = inj.parameters.psi[i];
      const gha = gmstIndependent(inj.parameters.geocent_time[i]) - ra;
      // wave-frame axes: the sky's local east and north at the source (Earth-fixed), rotated by psi
      const east: V = [Math.sin(gha), Math.cos(gha), 0];
      const north: V = [-Math.sin(dec) * Math.cos(gha), Math.sin(dec) * Math.sin(gha), Math.cos(dec)];
      const X = [0, 1, 2].map((j) => -Math.cos(psi) * east[j] + Math.sin(psi) * north[j]) as unknown as V;
      const Y = [0, 1, 2].map((j) => Math.sin(psi) * east[j] + Math.cos(psi) * north[j]) as unknown as V;
      const D = (a: V, b: V) => 0.5 * (dot(a, x) * dot(b, x) - dot(a, y) * dot(b, y));
      const fp = D(X, X) - D(Y, Y), fc = 2 * D(X, Y);
      const ci = Math.cos(inj.parameters.inclination[i]);
      return Math.hypot(0.5 * (1 + ci * ci) * fp, ci * fc);
    };
    for (let i = 0; i < 12; i++) {
      const ratio = inj.parameters.snr_H1[i] / inj.parameters.snr_L1[i];
      expect(ratio / (amp("H1", i) / amp("L1", i)), `injection ${i}`).toBeCloseTo(1, 2);
    }
  });
});
