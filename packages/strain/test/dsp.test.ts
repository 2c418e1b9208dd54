import { describe, expect, it } from "vitest";
import { Decimator, decimate, Whitener, whiten, welchPsd, aLigoDesignPsd, optimalSnr } from "../src/index.js";
import { FftFir, concat } from "../src/fir.js";
import { Rng } from "../src/rng.js";
import { ColouredNoise } from "../src/synth.js";
import { chirpStrain } from "../src/waveform.js";

/** Index of the first differing sample, -1 when identical (vitest's deep equality is slow on big arrays). */
function firstDifference(a: Float64Array, b: Float64Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function chunked(x: Float64Array, rng: Rng, push: (c: Float64Array) => Float64Array, flush: () => Float64Array): Float64Array {
  const out: Float64Array[] = [];
  let i = 0;
  while (i < x.length) {
    const n = Math.min(x.length - i, 1 + Math.floor(rng.uniform() * 3000));
    out.push(push(x.subarray(i, i + n)));
    i += n;
  }
  out.push(flush());
  return concat(out);
}

describe("FFT FIR", () => {
  it("equals direct convolution, zero-phase about its delay", () => {
    const rng = new Rng(1);
    const x = rng.fillNormal(new Float64Array(3000));
    const h = rng.fillNormal(new Float64Array(101));
    const y = concat([new FftFir(h, 50, 1024).push(x)]);
    const f = new FftFir(h, 50, 1024);
    const all = concat([f.push(x), f.flush()]);
    expect(all.length).toBe(x.length);
    expect(y.length).toBeLessThan(x.length);
    for (let n = 0; n < x.length; n += 37) {
      let s = 0;
      for (let k = 0; k < h.length; k++) {
        const i = n + 50 - k;
        if (i >= 0 && i < x.length) s += h[k] * x[i];
      }
      expect(all[n]).toBeCloseTo(s, 10);
    }
  });
});

describe("resampling by integer factors", () => {
  for (const [from, to] of [
    [4096, 2048],
    [16384, 2048],
    [4096, 256],
  ]) {
    it(`${from} → ${to} Hz: passband kept in phase, aliases removed`, () => {
      const q = from / to;
      const n = from * 4;
      const fPass = 0.25 * to; // well inside the new band
      const fAlias = 0.75 * to; // above the new Nyquist: would alias to 0.25·to
      const x = Float64Array.from({ length: n }, (_, i) => Math.sin((2 * Math.PI * fPass * i) / from + 0.3));
      const y = decimate(x, q);
      expect(y.length).toBe(n / q);
      const xa = Float64Array.from({ length: n }, (_, i) => Math.cos((2 * Math.PI * fAlias * i) / from));
      const ya = decimate(xa, q);
      const mid = [Math.floor(y.length / 4), Math.floor((3 * y.length) / 4)];
      for (let k = mid[0]; k < mid[1]; k++) {
        expect(Math.abs(y[k] - Math.sin((2 * Math.PI * fPass * k) / to + 0.3))).toBeLessThan(2e-3);
        expect(Math.abs(ya[k])).toBeLessThan(2e-3);
      }
    });
  }

  it("streaming equals whole-array, sample for sample", () => {
    const rng = new Rng(2);
    const x = rng.fillNormal(new Float64Array(50_000));
    for (const q of [2, 8, 16]) {
      const d = new Decimator(q);
      const s = chunked(x, rng, (c) => d.push(c), () => d.flush());
      expect(firstDifference(s, decimate(x, q))).toBe(-1);
    }
  });
});

describe("whitening", () => {
  const fs = 2048;
  const o = { sampleRate: fs, psdLength: 128, fduration: 1, highpass: 32 };
  const noise = new ColouredNoise(aLigoDesignPsd, fs, 7, "whiten-test").take(fs * 384);

  it("whitened coloured noise is white: flat PSD above the highpass and unit variance", () => {
    const w = whiten(noise, o);
    const [a, b] = w.valid;
    expect(a).toBe(fs / 2);
    expect(b).toBe(noise.length - fs / 2);
    const out = w.data.subarray(fs * o.psdLength, b); // after the burn-in
    let v = 0;
    for (const s of out) v += s * s;
    v /= out.length;
    // the band below the highpass is removed: variance 1 − 2·highpass/fs
    expect(Math.abs(v - (1 - (2 * o.highpass) / fs))).toBeLessThan(0.03);
    expect(Math.abs(v - 1)).toBeLessThan(0.06);
    const p = welchPsd(out, fs, { fftlength: 1 });
    // 64 Hz band averages from 48 Hz to 0.95 Nyquist, against 2/fs: the
    // scatter left is that of the 128 s PSD estimate (a few percent)
    const dev: number[] = [];
    for (let f0 = 48; f0 + 64 <= 0.95 * (fs / 2); f0 += 64) {
      let m = 0;
      for (let f = f0; f < f0 + 64; f++) m += p.values[f];
      dev.push(m / 64 / (2 / fs) - 1);
    }
    for (const [i, d] of dev.entries()) expect(Math.abs(d), `band from ${48 + 64 * i} Hz`).toBeLessThan(0.08);
    const rms = Math.sqrt(dev.reduce((a, d) => a + d * d, 0) / dev.length);
    expect(rms).toBeLessThan(0.04);
    // and well below the highpass there is (almost) nothing
    expect(p.values[10] / (2 / fs)).toBeLessThan(0.02);
  });

  it("streaming whitening equals whole-array after the burn-in", () => {
    const w = whiten(noise, o);
    const s = new Whitener(w.filter);
    const rng = new Rng(3);
    const y = chunked(noise, rng, (c) => s.push(c), () => s.flush());
    expect(y.length).toBe(noise.length);
    expect(firstDifference(y.subarray(w.valid[0], w.valid[1]), w.data.subarray(w.valid[0], w.valid[1]))).toBe(-1);
  });

  it("refuses NaN (missing data)", () => {
    const x = noise.slice(0, fs * 140);
    x[fs * 130] = Number.NaN;
    expect(() => whiten(x, o)).toThrow(/sample 266240 is not finite/);
  });

  it("an injection of optimal SNR ρ is recovered with matched-filter SNR ≈ ρ", () => {
    const rho = 12;
    const ant = { fplus: 0.7, fcross: 0.3 };
    const p = { chirpMass: 15, distance: 1, inclination: 0.4, coaPhase: 1, fLow: 30 };
    const tc = 250; // seconds into the data, after the burn-in
    const h = chirpStrain(p, ant, tc, 0, fs, noise.length);
    const r0 = optimalSnr(h.subarray((tc - 4) * fs, (tc + 1) * fs), fs, aLigoDesignPsd, o.highpass);
    for (let i = 0; i < h.length; i++) h[i] *= rho / r0;
    const d = Float64Array.from(noise, (x, i) => x + h[i]);
    const wd = whiten(d, o);
    // the template is the signal whitened by the same filter
    const wt = new Whitener(wd.filter);
    const th = concat([wt.push(h), wt.flush()]);
    let hh = 0, hd = 0;
    for (let i = fs * o.psdLength; i < wd.valid[1]; i++) {
      hh += th[i] * th[i];
      hd += th[i] * wd.data[i];
    }
    const expected = Math.sqrt(hh);
    expect(Math.abs(expected / rho - 1)).toBeLessThan(0.08);
    const snr = hd / Math.sqrt(hh);
    // noise moves the matched-filter SNR by ~1 (unit variance)
    expect(Math.abs(snr - rho)).toBeLessThan(3);
  });
});
