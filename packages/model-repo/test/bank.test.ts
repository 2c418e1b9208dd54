// The demo search's physical bank (bank.ts): the whole model is exactly
// head(encoder per detector); a chirp of synth's family is found at about
// its SNR when it is coincident in time between the detectors and not when
// it is not; a loud single-detector glitch does not make a candidate, and a
// glitch in both is cut down by the χ² reweighting.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { buildBankDetector, buildBankEncoder, buildBankHead, checkRepository, listRepository, mulberry32, physicalBank, writeDemoRepository } from "../src/index.js";

const fs = 256;
const K = 448;
const o = { sampleRate: fs, templateLength: 160, kernel: K, nTemplates: 16, chunks: 4 };
const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
function gaussian(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r()));
}
/** adds amp·(cos φ·c + sin φ·s) at sample `at` of window b, detector i of x [B, 2, K] */
function addChirp(x: Float32Array, b: number, i: number, at: number, c: Float32Array, s: Float32Array, amp: number, phi: number) {
  for (let k = 0; k < c.length; k++) x[(b * 2 + i) * K + at + k] += amp * (Math.cos(phi) * c[k] + Math.sin(phi) * s[k]);
}
function addGlitch(x: Float32Array, b: number, i: number, at: number, f: number, tau: number, snr: number) {
  const g = Float64Array.from({ length: K }, (_, k) => Math.exp(-(((k - at) / fs) ** 2) / tau ** 2) * Math.cos((2 * Math.PI * f * (k - at)) / fs));
  const norm = Math.sqrt(g.reduce((a, v) => a + v * v, 0));
  for (let k = 0; k < K; k++) x[(b * 2 + i) * K + k] += (snr * g[k]) / norm;
}

describe("the physical bank", () => {
  const bank = physicalBank(o);

  it("is synth's family over synth's chirp masses: whitened, unit-norm, orthogonal quadratures, χ² bins of equal power", () => {
    expect(bank).toHaveLength(16);
    expect(bank[0].chirpMass).toBeGreaterThan(10);
    expect(bank[15].chirpMass).toBeLessThan(30);
    for (const t of bank) {
      const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);
      expect(dot(t.cos, t.cos)).toBeCloseTo(1, 5);
      expect(dot(t.sin, t.sin)).toBeCloseTo(1, 5);
      expect(Math.abs(dot(t.cos, t.sin))).toBeLessThan(1e-5);
      expect(t.edges).toHaveLength(5);
      for (let j = 0; j < 4; j++) {
        let p = 0;
        for (let k = t.edges[j]; k < t.edges[j + 1]; k++) p += t.cos[k] ** 2;
        expect(p).toBeGreaterThan(0.1);
        expect(p).toBeLessThan(0.4);
      }
    }
  });

  it("finds a coincident chirp at its SNR, not one 80 ms apart, nor a single-detector glitch; the whole model is head(encoder) exactly", async () => {
    const B = 64;
    const x = gaussian(B * 2 * K, 3);
    // window 0: template 5, SNR 9 and 7, 2 samples apart (8 ms): network SNR ≈ 11.4
    addChirp(x, 0, 0, 100, bank[5].cos, bank[5].sin, 9, 0.3);
    addChirp(x, 0, 1, 102, bank[5].cos, bank[5].sin, 7, 2.1);
    // window 1: the same, 20 samples (78 ms) apart: beyond light travel
    addChirp(x, 1, 0, 100, bank[5].cos, bank[5].sin, 9, 0.3);
    addChirp(x, 1, 1, 120, bank[5].cos, bank[5].sin, 7, 2.1);
    // window 2: a chirp between two templates of the bank (another bank's), SNR 8 + 8
    const other = physicalBank({ ...o, nTemplates: 7 })[3];
    addChirp(x, 2, 0, 50, other.cos, other.sin, 8, 1);
    addChirp(x, 2, 1, 53, other.cos, other.sin, 8, 4);
    // window 3: a loud sine-Gaussian glitch (SNR 60) in H1 only
    addGlitch(x, 3, 0, 250, 120, 0.01, 60);
    // window 4: loud glitches in both, coincident
    addGlitch(x, 4, 0, 250, 120, 0.01, 60);
    addGlitch(x, 4, 1, 251, 110, 0.01, 60);

    const whole = await session(buildBankDetector({ ...o, nIfo: 2 }));
    const y = (await whole.run({ whitened: new ort.Tensor("float32", x, [B, 2, K]) })).detection_statistic.data as Float32Array;
    const enc = await session(buildBankEncoder(o));
    const head = await session(buildBankHead({ ...o, nIfo: 2 }));
    const D = 32;
    const emb = new Float32Array(B * 2 * D);
    for (let i = 0; i < 2; i++) {
      const xi = new Float32Array(B * K);
      for (let b = 0; b < B; b++) xi.set(x.subarray((b * 2 + i) * K, (b * 2 + i + 1) * K), b * K);
      const e = (await enc.run({ whitened: new ort.Tensor("float32", xi, [B, 1, K]) })).embedding.data as Float32Array;
      for (let b = 0; b < B; b++) emb.set(e.subarray(b * D, (b + 1) * D), (b * 2 + i) * D);
    }
    const z = (await head.run({ embedding: new ort.Tensor("float32", emb, [B, 2, D]) })).detection_statistic.data as Float32Array;
    expect(Array.from(z)).toEqual(Array.from(y));

    const noise = Array.from(y.subarray(5)).sort((a, b) => b - a);
    expect(noise[0]).toBeLessThan(7.5);
    // at its SNR: a template's own chirp, plus the noise under it and the maximum over the window
    expect(y[0]).toBeGreaterThan(0.9 * Math.hypot(9, 7));
    expect(y[0]).toBeLessThan(1.25 * Math.hypot(9, 7));
    expect(y[1]).toBeLessThan(noise[0]);
    expect(y[2]).toBeGreaterThan(0.8 * Math.hypot(8, 8));
    expect(y[3]).toBeLessThan(noise[0]);
    expect(y[4]).toBeLessThan(0.2 * Math.hypot(60, 60));
    // the embedding carries the peak's position: template 5 in H1 peaks at sample 100 of window 0
    expect(emb[16 + 5]).toBe(100);
  });

  it("the demo repository holds it as the whole model detector-stream and the pair detector-slides, which check clean", () => {
    const dir = mkdtempSync(join(tmpdir(), "bank-repo-"));
    const r = writeDemoRepository(dir, { nIfo: 2, kernel: K, stride: 256, batch: 16, bank: { sampleRate: fs, templateLength: 160 }, factorized: { ifos: ["H1", "L1"] } });
    expect(r.slides).toBe("detector-slides");
    expect(checkRepository(dir).models.flatMap((m) => m.problems)).toEqual([]);
    const pair = listRepository(dir).models.find((m) => m.name === "detector-slides")!.pair;
    expect(pair).toEqual({ embedding_dim: 32, detectors: 2, encoders: { "*": "detector-encoder-stream" }, head: "detector-head", whole: "detector-stream" });
  });
});
