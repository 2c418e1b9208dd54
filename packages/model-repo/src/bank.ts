// The demo search: a physical template bank, factorized (DESIGN.md,
// "Factorized models"). Templates are synth's own waveform family
// (@timeslide/strain chirpStrain: the Newtonian-order inspiral, tapered at
// the ISCO) over the chirp masses synth injects, whitened with synth's
// realistic design PSD (observingRunPsd: the aLIGO fit plus the
// low-frequency wall) and high-passed like the worker's whitening, at the
// analysis rate. Workers whiten the data with its own PSD, so a template
// and the data agree up to the lines and the drift the smooth PSD lacks.
//
//   encoder  whitened [batch, 1, kernel] → embedding [batch, 2·T]
//            per template t: the reweighted SNR² ρ̂² (peak over the window
//            of the quadrature SNR², reweighted by a χ² signal-consistency
//            test at the peak, PyCBC's "new SNR") and the peak's position
//            in the window (samples, as a float), of the best of templates
//            t − 1, t, t + 1 (so template coincidence allows neighbours)
//   head     embedding [batch, n_ifo, 2·T] → detection_statistic [batch, 1]
//            coincidence in template (entry t in every detector) and time
//            (peaks within `coincidence` samples); the statistic is the
//            network reweighted SNR √Σ_i ρ̂²_i of the best coincident
//            template, 0 when no template is coincident. A handful of
//            elementwise ops on 2·T floats per detector: the head runs once
//            per shift and window, the encoder once per window
//   whole    the same ops in one graph: encoder per detector, then head
import {
  chirpDuration,
  chirpStrain,
  observingRunPsd,
  RealFFT,
  SYNTH_CHIRP_MASS_RANGE,
  SYNTH_F_LOW,
} from "@timeslide/strain";
import { GraphBuilder } from "./onnx.js";

export interface BankOptions {
  /** analysis sample rate (Hz) */
  sampleRate: number;
  /** template length in samples: each template starts where its chirp fits (at SYNTH_F_LOW or later) */
  templateLength: number;
  /** templates, evenly spaced in τ0 ∝ M_c^(-5/3) over the chirp-mass range (default 16) */
  nTemplates?: number;
  /** chirp-mass range (default synth's, SYNTH_CHIRP_MASS_RANGE) */
  chirpMass?: readonly [number, number];
  /** χ² frequency bins (equal expected SNR² each; default 4) */
  chunks?: number;
  /** Hz, the whitening high-pass (default 20, the demo's inference.highpass) */
  highpass?: number;
  /** one-sided PSD the templates are whitened with (default synth's observingRunPsd) */
  psd?: (f: number) => number;
}

export interface BankTemplate {
  chirpMass: number;
  /** Hz, where the template starts */
  fStart: number;
  /** whitened, unit-norm cosine and sine quadratures, templateLength samples, coalescence near the end */
  cos: Float32Array;
  sin: Float32Array;
  /** χ² bins: sample boundaries [0, b1, …, templateLength], about equal power in each (the sample grid decides; the χ² weighs each bin by its share) */
  edges: number[];
}

/** samples kept after the coalescence in a template (the whitened ringdown of the taper) */
const TAIL = 8;

/** Chirp masses of the bank: evenly spaced in τ0 ∝ M_c^(-5/3) (mid-points of n equal cells). */
export function bankChirpMasses(n: number, range: readonly [number, number] = SYNTH_CHIRP_MASS_RANGE): number[] {
  const a = range[0] ** (-5 / 3);
  const b = range[1] ** (-5 / 3);
  return Array.from({ length: n }, (_, i) => (a + ((b - a) * (i + 0.5)) / n) ** (-3 / 5));
}

/** The physical bank (see the top of this file). Deterministic: no random parameters. */
export function physicalBank(o: BankOptions): BankTemplate[] {
  const fs = o.sampleRate;
  const L = o.templateLength;
  const p = o.chunks ?? 4;
  const hp = o.highpass ?? 20;
  const psd = o.psd ?? observingRunPsd;
  if (!(L >= 4 * p)) throw new RangeError(`bank: template length ${L} samples is too short for ${p} χ² bins`);
  let N = 4;
  while (N < 2 * L + 2 * fs) N *= 2; // room for the whitening filter's spread on both sides
  const fft = new RealFFT(N);
  const tcIndex = N - N / 4; // coalescence sample on the long grid
  const out: BankTemplate[] = [];
  for (const mc of bankChirpMasses(o.nTemplates ?? 16, o.chirpMass)) {
    // start where the chirp fits in the template (less TAIL and the start taper)
    let fStart = SYNTH_F_LOW;
    while (chirpDuration(mc, fStart) > (L - TAIL) / fs - 0.04) fStart += 0.5;
    const quad = [0, -Math.PI / 2].map((coaPhase) => {
      const h = chirpStrain({ chirpMass: mc, distance: 1, inclination: 0, coaPhase, fLow: fStart }, { fplus: 1, fcross: 0 }, tcIndex / fs, 0, fs, N);
      const s = fft.forward(h);
      for (let k = 0; k <= N / 2; k++) {
        const f = (k * fs) / N;
        const w = f < hp || k === N / 2 || k === 0 ? 0 : 1 / Math.sqrt(psd(f));
        s[2 * k] *= w;
        s[2 * k + 1] *= w;
      }
      const x = fft.inverse(s).subarray(tcIndex + TAIL - L, tcIndex + TAIL);
      let norm = 0;
      for (const v of x) norm += v * v;
      const scale = 1 / Math.sqrt(norm);
      return Float32Array.from(x, (v) => v * scale);
    });
    // orthonormal quadratures (the whitened, truncated pair is not exactly
    // orthogonal): ρ² = z_cos² + z_sin² is then the phase-maximised SNR²
    const [cos, raw] = quad;
    let dot = 0;
    for (let i = 0; i < L; i++) dot += cos[i] * raw[i];
    const ortho = Float64Array.from(raw, (v, i) => v - dot * cos[i]);
    let n2 = 0;
    for (const v of ortho) n2 += v * v;
    const sin = Float32Array.from(ortho, (v) => v / Math.sqrt(n2));
    const edges = [0];
    let acc = 0;
    for (let i = 0; i < L && edges.length < p; i++) {
      acc += cos[i] * cos[i];
      if (acc >= edges.length / p) edges.push(i + 1);
    }
    while (edges.length < p) edges.push(edges[edges.length - 1] + 1);
    edges.push(L);
    out.push({ chirpMass: mc, fStart, cos, sin, edges });
  }
  return out;
}

export interface BankDetectorOptions extends BankOptions {
  /** window length in samples (≥ templateLength) */
  kernel: number;
  /** time coincidence between detectors in samples (default: 15 ms, 10 ms H1–L1 light travel + 5 ms) */
  coincidence?: number;
  /** κ in the reduced χ² = χ² / (2p − 2 + κ·ρ²) (default DEFAULT_CHI2_MISMATCH) */
  chi2Mismatch?: number;
}

export const DEFAULT_CHI2_MISMATCH = 0.03;

interface Weights {
  T: number;
  L: number;
  p: number;
  conv: string;
  chunkW: string;
  /** [T, p, 1]: each χ² bin's share of its template's power */
  binPower: string;
  /** κ of the reduced χ² */
  mismatch: number;
}

function bankWeights(g: GraphBuilder, bank: BankTemplate[], p: number, mismatch: number): Weights {
  const T = bank.length;
  const L = bank[0].cos.length;
  const conv = new Float32Array(2 * T * L);
  // χ² projection per template: [T, L, 2p], column 2j / 2j+1 = cos / sin restricted to bin j
  const chunk = new Float32Array(T * L * 2 * p);
  const power = new Float32Array(T * p);
  bank.forEach((t, n) => {
    for (let j = 0; j < p; j++) {
      let e = 0;
      for (let i = t.edges[j]; i < t.edges[j + 1]; i++) e += (t.cos[i] * t.cos[i] + t.sin[i] * t.sin[i]) / 2;
      power[n * p + j] = e;
    }
    conv.set(t.cos, (2 * n) * L);
    conv.set(t.sin, (2 * n + 1) * L);
    for (let j = 0; j < p; j++)
      for (let i = t.edges[j]; i < t.edges[j + 1]; i++) {
        chunk[(n * L + i) * 2 * p + 2 * j] = t.cos[i];
        chunk[(n * L + i) * 2 * p + 2 * j + 1] = t.sin[i];
      }
  });
  return {
    T,
    L,
    p,
    conv: g.constant(conv, [2 * T, 1, L], "float32", "template_bank"),
    chunkW: g.constant(chunk, [T, L, 2 * p], "float32", "chi2_bins"),
    binPower: g.constant(power, [T, p, 1], "float32", "chi2_bin_power"),
    mismatch,
  };
}

/** Encoder ops on x [B, 1, K] → embedding [B, 2T] (the top of this file). */
function encoderOps(g: GraphBuilder, x: string, w: Weights): string {
  const { T, L, p } = w;
  const z = g.node("Conv", [x, w.conv], { kernel_shape: [L], strides: [1], pads: [0, 0] }); // [B, 2T, P]
  const z2 = g.node("Reshape", [g.node("Mul", [z, z]), g.int64s([0, T, 2, -1])]); // [B, T, 2, P]
  const rho2 = g.node("ReduceSum", [z2, g.int64s([2])], { keepdims: 0 }); // [B, T, P]
  const peak = g.node("ReduceMax", [rho2], { axes: [2], keepdims: 0 }); // [B, T]
  const pos = g.node("ArgMax", [rho2], { axis: 2, keepdims: 1 }); // [B, T, 1] int64
  // χ² at each template's peak: the window's samples under the template, projected on its bins
  const idx = g.node("Add", [pos, g.constant(BigInt64Array.from({ length: L }, (_, i) => BigInt(i)), [L], "int64")]); // [B, T, L]
  const xe = g.node("Expand", [x, g.int64s([1, T, 1])]); // [B, T, K]
  const seg = g.node("GatherElements", [xe, idx], { axis: 2 }); // [B, T, L]
  const zj = g.node("MatMul", [g.node("Transpose", [seg], { perm: [1, 0, 2] }), w.chunkW]); // [T, B, 2p]
  const bins = g.node("Reshape", [g.node("Transpose", [zj], { perm: [1, 0, 2] }), g.int64s([0, T, p, 2])]); // [B, T, p, 2]
  // χ² = Σ_j |z_j − w_j·z|² / w_j, w_j the bin's share of the template's power (1/p
  // when the bins are equal, PyCBC's p·Σ|z_j − z/p|²): 2p − 2 degrees of freedom in noise
  const mean = g.node("Mul", [g.node("ReduceSum", [bins, g.int64s([2])], { keepdims: 1 }), w.binPower]); // [B, T, p, 2]
  const dev = g.node("Sub", [bins, mean]);
  const chi2 = g.node("ReduceSum", [g.node("Div", [g.node("Mul", [dev, dev]), w.binPower]), g.int64s([2, 3])], { keepdims: 0 }); // [B, T]
  // reduced χ²_r = χ² / (2p − 2 + κ·ρ²): a signal that matches its best template
  // only to 1 − ε leaves ~2ερ² in the χ² (Allen 2005), so κ keeps loud
  // signals from being penalised for the bank's spacing while a glitch, whose
  // power sits in one or two bins (χ² ~ ρ²…3ρ²), still is;
  // new SNR² = ρ²·((1 + χ_r³)/2)^(-1/3) where χ_r > 1 (PyCBC's newsnr)
  const dof = g.node("Add", [g.node("Mul", [peak, g.constant(new Float32Array([w.mismatch]), [], "float32")]), g.constant(new Float32Array([2 * p - 2]), [], "float32")]);
  const chiR = g.node("Max", [g.node("Div", [chi2, dof]), g.constant(new Float32Array([1]), [], "float32")]);
  const cube = g.node("Mul", [g.node("Mul", [chiR, chiR]), chiR]);
  const half = g.node("Mul", [g.node("Add", [cube, g.constant(new Float32Array([1]), [], "float32")]), g.constant(new Float32Array([0.5]), [], "float32")]);
  const factor = g.node("Pow", [half, g.constant(new Float32Array([-1 / 3]), [], "float32")]);
  const reweighted = g.node("Mul", [peak, factor]); // [B, T]
  const time = g.node("Cast", [g.node("Squeeze", [pos, g.int64s([2])])], { to: 1 }); // [B, T] float
  // coincidence in template allows the bank's neighbours: entry t is the best of
  // templates t − 1, t, t + 1 in this detector (ρ̂² and its peak's position), so
  // the head compares entry t across detectors and the pairing costs nothing per shift
  const neighbours = (v: string, fill: number) => {
    const padded = g.node("Pad", [v, g.int64s([0, 1, 0, 1]), g.constant(new Float32Array([fill]), [], "float32")]); // [B, T + 2]
    const views = [0, 1, 2].map((k) => g.node("Unsqueeze", [g.node("Slice", [padded, g.int64s([k]), g.int64s([k + T]), g.int64s([1])]), g.int64s([2])]));
    return g.node("Concat", views, { axis: 2 }); // [B, T, 3]
  };
  const r3 = neighbours(reweighted, -1);
  const best = g.node("ArgMax", [r3], { axis: 2, keepdims: 1 }); // [B, T, 1]
  const r = g.node("Squeeze", [g.node("GatherElements", [r3, best], { axis: 2 }), g.int64s([2])]);
  const t = g.node("Squeeze", [g.node("GatherElements", [neighbours(time, 0), best], { axis: 2 }), g.int64s([2])]);
  return g.node("Concat", [r, t], { axis: 1 }); // [B, 2T]
}

/** Head ops on e [B, n_ifo, 2T] → statistic [B, 1] (the top of this file). */
function headOps(g: GraphBuilder, e: string, T: number, coincidence: number): string {
  const r = g.node("Slice", [e, g.int64s([0]), g.int64s([T]), g.int64s([2])]); // [B, N, T]
  const t = g.node("Slice", [e, g.int64s([T]), g.int64s([2 * T]), g.int64s([2])]);
  // coincident: the detectors' peaks for template t lie within `coincidence` samples
  const spread = g.node("Sub", [g.node("ReduceMax", [t], { axes: [1], keepdims: 0 }), g.node("ReduceMin", [t], { axes: [1], keepdims: 0 })]); // [B, T]
  const coinc = g.node("Cast", [g.node("LessOrEqual", [spread, g.constant(new Float32Array([coincidence]), [], "float32")])], { to: 1 });
  const network = g.node("Mul", [g.node("ReduceSum", [r, g.int64s([1])], { keepdims: 0 }), coinc]); // [B, T]
  return g.node("Sqrt", [g.node("ReduceMax", [network], { axes: [1], keepdims: 1 })]); // [B, 1]
}

const defaultCoincidence = (fs: number) => Math.round(0.015 * fs);

function describe(o: BankDetectorOptions, bank: BankTemplate[]): string {
  const fs = o.sampleRate;
  return (
    `physical chirp bank: ${bank.length} templates, M_c ${bank[0].chirpMass.toFixed(2)}–${bank[bank.length - 1].chirpMass.toFixed(2)}, ` +
    `${o.templateLength} samples at ${fs} Hz, χ² ${o.chunks ?? 4} bins, kernel ${o.kernel}, coincidence ±${o.coincidence ?? defaultCoincidence(fs)} samples`
  );
}

/**
 * The demo search's bank at an analysis rate: 16 templates of 0.625 s (each
 * starting at 30 Hz or later, where it fits), 4 χ² bins, high-passed like
 * the demo's whitening. `timeslide demo` and `model-repo demo --bank physical`.
 */
export function demoBankOptions(sampleRate: number, highpass = 20): BankOptions {
  return { sampleRate, templateLength: Math.round(0.625 * sampleRate), nTemplates: 16, chunks: 4, highpass };
}

/** The bank's encoder: whitened [batch, 1, kernel] → embedding [batch, 2T]. */
export function buildBankEncoder(o: BankDetectorOptions): Uint8Array {
  const bank = physicalBank(o);
  if (o.kernel < o.templateLength) throw new RangeError(`bank: kernel ${o.kernel} is shorter than the templates (${o.templateLength} samples)`);
  const g = new GraphBuilder("bank-encoder");
  const x = g.input("whitened", "float32", ["batch", 1, o.kernel]);
  const w = bankWeights(g, bank, o.chunks ?? 4, o.chi2Mismatch ?? DEFAULT_CHI2_MISMATCH);
  g.output(encoderOps(g, x, w), "embedding", "float32", ["batch", 2 * bank.length]);
  return g.toBytes(`encoder of the ${describe(o, bank)}`);
}

/** The bank's head: embedding [batch, n_ifo, 2T] → detection_statistic [batch, 1]. */
export function buildBankHead(o: BankDetectorOptions & { nIfo: number }): Uint8Array {
  const T = o.nTemplates ?? 16;
  const g = new GraphBuilder("bank-head");
  const e = g.input("embedding", "float32", ["batch", o.nIfo, 2 * T]);
  g.output(headOps(g, e, T, o.coincidence ?? defaultCoincidence(o.sampleRate)), "detection_statistic", "float32", ["batch", 1]);
  return g.toBytes(`coincidence head (${o.nIfo} detectors) of the ${describe(o, physicalBank(o))}`);
}

/** The equivalent whole model: whitened [batch, n_ifo, kernel] → detection_statistic [batch, 1] = head(encoder(x_i) for each i). */
export function buildBankDetector(o: BankDetectorOptions & { nIfo: number }): Uint8Array {
  const bank = physicalBank(o);
  const g = new GraphBuilder("bank-detector");
  const x = g.input("whitened", "float32", ["batch", o.nIfo, o.kernel]);
  const w = bankWeights(g, bank, o.chunks ?? 4, o.chi2Mismatch ?? DEFAULT_CHI2_MISMATCH);
  const embs = Array.from({ length: o.nIfo }, (_, i) => {
    const xi = g.node("Slice", [x, g.int64s([i]), g.int64s([i + 1]), g.int64s([1])]); // [B, 1, K]
    return g.node("Unsqueeze", [encoderOps(g, xi, w), g.int64s([1])]); // [B, 1, 2T]
  });
  const e = o.nIfo === 1 ? embs[0] : g.node("Concat", embs, { axis: 1 });
  g.output(headOps(g, e, bank.length, o.coincidence ?? defaultCoincidence(o.sampleRate)), "detection_statistic", "float32", ["batch", 1]);
  return g.toBytes(`whole detector: ${o.nIfo} detectors, ${describe(o, bank)}`);
}
