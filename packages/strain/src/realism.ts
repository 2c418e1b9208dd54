// What makes synthetic strain look like an observing run besides its
// spectrum (aligo.ts: the low-frequency wall): narrow spectral lines, a PSD
// level that drifts over hours, and glitches. Everything is a deterministic
// function of (seed, detector, absolute time), so files of any length are
// continuous and a seed always gives the same data.
import { writeFileSync, renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { Rng } from "./rng.js";
import { optimalSnr } from "./waveform.js";

// ---------------------------------------------------------------- lines

export type LineKind = "mains" | "violin" | "calibration";

export interface SpectralLine {
  kind: LineKind;
  /** Hz */
  frequency: number;
  /**
   * Sine amplitude in units of the noise ASD at the line (strain per
   * strain/√Hz, i.e. √Hz): a Welch PSD with resolution df (Hann) shows the
   * line about k² / (3·df) above the floor.
   */
  k: number;
}

// Frequencies as at the LIGO sites: the US mains at 60 Hz and its harmonics;
// fibre violin modes of the test-mass suspensions near 500 Hz (and their
// first harmonic near 1 kHz), a handful of modes a few Hz apart; calibration
// lines near the O3 photon-calibrator and actuator lines (a cluster at
// 15–18 Hz, one near 410–435 Hz and one near 1083 Hz; Sun et al. 2020,
// arXiv:2005.02531). Exact values differ per detector, as at the sites.
const LINES: Record<string, Array<[LineKind, number, number]>> = {
  H1: [
    ["mains", 60, 20], ["mains", 120, 8], ["mains", 180, 6],
    ["violin", 500.2, 40], ["violin", 502.7, 30], ["violin", 504.8, 40], ["violin", 508.2, 25],
    ["violin", 1000.4, 12], ["violin", 1005.6, 10], ["violin", 1009.6, 10],
    ["calibration", 15.6, 12], ["calibration", 16.4, 12], ["calibration", 17.1, 15], ["calibration", 17.6, 12],
    ["calibration", 410.3, 20], ["calibration", 1083.7, 20],
  ],
  L1: [
    ["mains", 60, 18], ["mains", 120, 7], ["mains", 180, 5],
    ["violin", 499.0, 35], ["violin", 500.8, 40], ["violin", 503.1, 30], ["violin", 505.7, 25],
    ["violin", 998.0, 10], ["violin", 1001.6, 12], ["violin", 1006.2, 10],
    ["calibration", 15.1, 12], ["calibration", 15.7, 12], ["calibration", 16.9, 12], ["calibration", 17.3, 15],
    ["calibration", 434.9, 20], ["calibration", 1083.1, 20],
  ],
};

/** The lines of a detector that lie below 0.9 × the Nyquist frequency of `sampleRate`. */
export function spectralLines(ifo: string, sampleRate: number): SpectralLine[] {
  // V1 and K1 get H1's table (50 Hz mains would be more faithful for Virgo and
  // KAGRA's western-Japan grid is 60 Hz; a synthetic table either way)
  const table = LINES[ifo] ?? LINES.H1;
  const out: SpectralLine[] = [];
  for (const [kind, frequency, k] of table) {
    const f = ifo === "V1" && kind === "mains" ? (frequency * 5) / 6 : frequency;
    if (f < 0.45 * sampleRate) out.push({ kind, frequency: f, k });
  }
  return out;
}

/**
 * Sum of sinusoids, each with a random phase and a slow ±10 % amplitude
 * modulation (periods 10–40 min), evaluated at samples counted from the
 * data set's start (continuous across files).
 */
export class LineTrack {
  readonly #lines: Array<{ amp: number; omega: number; phase: number; modOmega: number; modPhase: number }>;

  constructor(lines: readonly SpectralLine[], psd: (f: number) => number, sampleRate: number, seed: number, ifo: string) {
    const rng = new Rng(seed, `lines:${ifo}`);
    this.#lines = lines.map((l) => ({
      amp: l.k * Math.sqrt(psd(l.frequency)),
      omega: (2 * Math.PI * l.frequency) / sampleRate,
      phase: rng.between(0, 2 * Math.PI),
      modOmega: (2 * Math.PI) / (rng.between(600, 2400) * sampleRate),
      modPhase: rng.between(0, 2 * Math.PI),
    }));
  }

  /**
   * Adds the lines to x, whose sample 0 is sample `i0` of the data set. The
   * phase is exact at every multiple of LINE_BLOCK samples (absolute) and
   * rotated sample by sample in between, so a sample's value depends only on
   * its index: files of any length give identical strain.
   */
  addTo(x: Float64Array, i0: number): void {
    const B = LINE_BLOCK;
    for (const l of this.#lines) {
      const cw = Math.cos(l.omega), sw = Math.sin(l.omega);
      for (let b = Math.floor(i0 / B) * B; b < i0 + x.length; b += B) {
        const ph0 = ((l.omega * b) % (2 * Math.PI)) + l.phase;
        let c = Math.cos(ph0), s = Math.sin(ph0);
        const m0 = 1 + 0.1 * Math.sin(l.modOmega * b + l.modPhase);
        const dm = (1 + 0.1 * Math.sin(l.modOmega * (b + B) + l.modPhase) - m0) / B;
        const end = Math.min(b + B, i0 + x.length);
        for (let k = b; k < end; k++) {
          if (k >= i0) x[k - i0] += l.amp * (m0 + dm * (k - b)) * c;
          const c2 = c * cw - s * sw;
          s = s * cw + c * sw;
          c = c2;
        }
      }
    }
  }
}

const LINE_BLOCK = 4096;

// ---------------------------------------------------------------- drift

/**
 * Slow non-stationarity: the noise amplitude is multiplied by √g(t), with
 * log g(t) a sum of three sinusoids of periods 20 min – 3 h and random
 * phases, so the PSD level wanders by tens of percent over hours
 * (g between about 0.6 and 1.6), smoothly and continuously across files.
 */
export class Drift {
  readonly #terms: Array<{ a: number; w: number; p: number }>;
  readonly #fs: number;

  constructor(seed: number, ifo: string, sampleRate: number) {
    const rng = new Rng(seed, `drift:${ifo}`);
    this.#fs = sampleRate;
    this.#terms = [
      { a: 0.18, w: (2 * Math.PI) / rng.between(7200, 10800), p: rng.between(0, 2 * Math.PI) },
      { a: 0.12, w: (2 * Math.PI) / rng.between(2400, 4800), p: rng.between(0, 2 * Math.PI) },
      { a: 0.08, w: (2 * Math.PI) / rng.between(1200, 1800), p: rng.between(0, 2 * Math.PI) },
    ];
  }

  /** The PSD level factor g at t seconds from the data set's start. */
  level(t: number): number {
    let s = 0;
    for (const k of this.#terms) s += k.a * Math.sin(k.w * t + k.p);
    return Math.exp(s);
  }

  /** Multiplies x (sample 0 = sample i0 of the data set) by √g, interpolated linearly between whole seconds. */
  apply(x: Float64Array, i0: number): void {
    const fs = this.#fs;
    let sec = Number.NaN, a = 0, b = 0;
    for (let i = 0; i < x.length; i++) {
      const k = i0 + i;
      const s = Math.floor(k / fs);
      if (s !== sec) {
        sec = s;
        a = Math.sqrt(this.level(s));
        b = Math.sqrt(this.level(s + 1));
      }
      x[i] *= a + (b - a) * ((k - s * fs) / fs);
    }
  }
}

// ---------------------------------------------------------------- glitches

export type GlitchKind = "sine_gaussian" | "blip";

export interface Glitch {
  ifo: string;
  /** GPS of the envelope's peak */
  time: number;
  kind: GlitchKind;
  /** central frequency (Hz) */
  frequency: number;
  /** quality factor Q = √2·π·f·τ */
  q: number;
  /** optimal SNR against the local noise PSD */
  snr: number;
  /** s, Gaussian envelope width τ (exp(−(t−t0)²/τ²)) */
  tau: number;
  /** peak strain amplitude */
  amplitude: number;
  phase: number;
}

/** Default glitch rate per detector (per minute). */
export const DEFAULT_GLITCH_RATE = 0.5;
/** Pareto SNR distribution: N(> ρ) ∝ ρ^-α from ρ_min. */
export const GLITCH_SNR_MIN = 6;
export const GLITCH_SNR_ALPHA = 2;
const GLITCH_SNR_MAX = 1e4;

/**
 * Glitches of one detector over [0, duration) s from the data set's start:
 * a Poisson process of `ratePerMinute`, independent per detector. About
 * 60 % are blips (Q 1.5–3, 40–250 Hz: a cycle or two, ~10 ms), the rest
 * sine-Gaussians (Q 4–40, 30–500 Hz). SNRs are Pareto from 6 with index 2
 * (heavy-tailed: 1 % above 60). `inGap(t)` drops glitches in DQ gaps. The
 * amplitude is set from the optimal SNR against psd × the drift level at the
 * glitch time.
 */
export function drawGlitches(o: {
  ifo: string;
  seed: number;
  start: number;
  duration: number;
  sampleRate: number;
  ratePerMinute: number;
  psd: (f: number) => number;
  level: (t: number) => number;
  inGap: (t: number) => boolean;
}): Glitch[] {
  const out: Glitch[] = [];
  if (!(o.ratePerMinute > 0)) return out;
  const rng = new Rng(o.seed, `glitches:${o.ifo}`);
  const mean = 60 / o.ratePerMinute;
  const nyq = o.sampleRate / 2;
  const logUniform = (lo: number, hi: number) => Math.exp(rng.between(Math.log(lo), Math.log(hi)));
  for (let t = -mean * Math.log(1 - rng.uniform()); t < o.duration; t += -mean * Math.log(1 - rng.uniform())) {
    const blip = rng.uniform() < 0.6;
    const fHi = Math.min(blip ? 250 : 500, 0.4 * nyq);
    const fLo = Math.min(blip ? 40 : 30, 0.5 * fHi);
    const frequency = logUniform(fLo, fHi);
    const q = blip ? rng.between(1.5, 3) : logUniform(4, 40);
    const snr = Math.min(GLITCH_SNR_MAX, GLITCH_SNR_MIN * (1 - rng.uniform()) ** (-1 / GLITCH_SNR_ALPHA));
    const phase = rng.between(0, 2 * Math.PI);
    const time = Math.round((o.start + t) * o.sampleRate) / o.sampleRate + rng.uniform() / o.sampleRate;
    if (o.inGap(time - o.start)) continue;
    const tau = q / (Math.SQRT2 * Math.PI * frequency);
    const unit = sineGaussian(tau, frequency, phase, o.sampleRate);
    const rho1 = optimalSnr(unit, o.sampleRate, (f) => o.psd(f) * o.level(time - o.start), 10);
    out.push({ ifo: o.ifo, time, kind: blip ? "blip" : "sine_gaussian", frequency, q, snr, tau, amplitude: snr / rho1, phase });
  }
  return out;
}

/** A unit sine-Gaussian exp(−u²/τ²)·cos(2πf·u + φ) on the sample grid u = k/fs, |u| ≤ 5τ. */
function sineGaussian(tau: number, f: number, phase: number, fs: number): Float64Array {
  const half = Math.ceil(5 * tau * fs) + 1;
  const h = new Float64Array(2 * half + 1);
  for (let k = 0; k < h.length; k++) {
    const u = (k - half) / fs;
    h[k] = Math.exp(-(u * u) / (tau * tau)) * Math.cos(2 * Math.PI * f * u + phase);
  }
  return h;
}

/** Adds glitches to strain chunks; glitches must be sorted by time. */
export class GlitchTrack {
  readonly #g: readonly Glitch[];
  readonly #start: number;
  readonly #fs: number;

  constructor(glitches: readonly Glitch[], start: number, sampleRate: number) {
    this.#g = glitches;
    this.#start = start;
    this.#fs = sampleRate;
  }

  /** Adds to x, whose sample 0 is sample i0 of the data set. */
  addTo(x: Float64Array, i0: number): void {
    const fs = this.#fs;
    const t0 = this.#start + i0 / fs, t1 = this.#start + (i0 + x.length) / fs;
    for (const g of this.#g) {
      const reach = 5 * g.tau + 2 / fs;
      if (g.time + reach < t0 || g.time - reach > t1) continue;
      const k0 = Math.max(0, Math.floor((g.time - reach - t0) * fs));
      const k1 = Math.min(x.length, Math.ceil((g.time + reach - t0) * fs) + 1);
      const w = 2 * Math.PI * g.frequency, it2 = 1 / (g.tau * g.tau);
      for (let k = k0; k < k1; k++) {
        const u = (i0 + k) / fs + this.#start - g.time;
        x[k] += g.amplitude * Math.exp(-u * u * it2) * Math.cos(w * u + g.phase);
      }
    }
  }
}

export const GLITCH_FILE = "glitches.txt";

/**
 * The glitch list: a text table, one glitch a line, sorted by detector then
 * time; `#` lines are comments; columns separated by spaces:
 * `ifo gps kind frequency_hz q snr tau_s amplitude phase_rad`.
 */
export function writeGlitchList(path: string, glitches: readonly Glitch[], note: string): void {
  const lines = [
    `# timeslide synth glitch list: ${note}`,
    "# sine-Gaussian h(t) = amplitude * exp(-(t - gps)^2 / tau_s^2) * cos(2 pi frequency_hz (t - gps) + phase_rad); q = sqrt(2) pi frequency_hz tau_s",
    "# snr: optimal SNR against the detector's noise PSD at that time (from 10 Hz)",
    "# ifo gps kind frequency_hz q snr tau_s amplitude phase_rad",
    ...glitches.map(
      (g) =>
        `${g.ifo} ${g.time.toFixed(6)} ${g.kind} ${g.frequency.toFixed(3)} ${g.q.toFixed(3)} ${g.snr.toFixed(3)} ` +
        `${g.tau.toExponential(6)} ${g.amplitude.toExponential(6)} ${g.phase.toFixed(6)}`,
    ),
  ];
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  writeFileSync(tmp, lines.join("\n") + "\n");
  renameSync(tmp, path);
}

/** Reads a glitch list written by writeGlitchList. */
export function readGlitchList(text: string): Glitch[] {
  const out: Glitch[] = [];
  for (const line of text.split("\n")) {
    const s = line.trim();
    if (!s || s.startsWith("#")) continue;
    const [ifo, time, kind, frequency, q, snr, tau, amplitude, phase] = s.split(/\s+/);
    out.push({ ifo, time: +time, kind: kind as GlitchKind, frequency: +frequency, q: +q, snr: +snr, tau: +tau, amplitude: +amplitude, phase: +phase });
  }
  return out;
}
