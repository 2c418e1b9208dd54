// Synthetic GWOSC-layout data sets. Realistic mode (the default) looks like
// an observing run: coloured Gaussian noise from the aLIGO design fit plus
// the low-frequency wall (aligo.ts), narrow lines, a PSD level drifting over
// hours, glitches written to a glitch list (realism.ts), DQ gaps (NaN
// strain), and injections projected from one sky position per signal with
// the detectors' real antenna patterns and arrival times (sky.ts). Clean mode
// writes exactly what earlier releases wrote: design-PSD noise held flat
// below 10 Hz, gaps, and per-detector independent injection projections.
// Everything is continuous across files and deterministic for a seed.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { lightTravelTime } from "@timeslide/segments";
import { aLigoDesignPsd, observingRunPsd } from "./aligo.js";
import { DEFAULT_GLITCH_RATE, Drift, GLITCH_FILE, GlitchTrack, LineTrack, drawGlitches, spectralLines, writeGlitchList, type Glitch } from "./realism.js";
import { antennaResponse, greenwichMeanSiderealTime, timeDelayFromGeocenter } from "./sky.js";
import { FftFir, concat, hann } from "./fir.js";
import { RealFFT, nextPow2 } from "./fft.js";
import { Rng } from "./rng.js";
import { antennaPattern, chirpDuration, chirpStrain, optimalSnr } from "./waveform.js";
import { DQ_NAMES, writeInjectionFile, writeStrainFile } from "./write.js";

export interface SynthOptions {
  out: string;
  ifos: readonly string[];
  /** seconds */
  duration: number;
  /** Hz (integer) */
  sampleRate: number;
  /** seconds per file; default 4096 as in the open-data archive */
  fileDuration?: number;
  /** DQ gaps per detector */
  gaps?: number;
  /** number of injections (0: no injection file) */
  injections?: number;
  /** optimal network SNR range of the injections */
  snr?: readonly [number, number];
  seed?: number;
  /** GPS start (integer); default 1187008000 */
  start?: number;
  /**
   * Clean mode: design-PSD Gaussian noise flat below 10 Hz, no lines, drift or
   * glitches, per-detector independent injection projections: byte for byte
   * what earlier releases wrote. Default false (realistic).
   */
  clean?: boolean;
  /** realistic mode: narrow spectral lines (default true) */
  lines?: boolean;
  /** realistic mode: glitches per minute per detector (default 0.5; 0: none) */
  glitchRate?: number;
  onFile?: (path: string) => void;
}

export interface SynthResult {
  start: number;
  end: number;
  files: Record<string, string[]>;
  /** per detector, the DQ gaps written (NaN strain there) */
  gaps: Record<string, Array<[number, number]>>;
  injectionFile?: string;
  /** "realistic" or "clean" */
  mode: "realistic" | "clean";
  /** realistic mode: the glitches added, per detector, and the glitch list file */
  glitches: Record<string, Glitch[]>;
  glitchFile?: string;
}

export const SYNTH_DEFAULT_START = 1187008000;
/** lower frequency of the synthetic chirps and of their SNR integral */
export const SYNTH_F_LOW = 30;
export const SYNTH_SNR_F_LOW = 20;
/** chirp masses (solar masses, detector frame) of the synthetic injections */
export const SYNTH_CHIRP_MASS_RANGE: readonly [number, number] = [10, 30];
const CHIRP_MASS_RANGE = SYNTH_CHIRP_MASS_RANGE;
/** colouring FIR length (s): 2 s is enough for the smooth design PSD */
const CLEAN_FIR_SECONDS = 2;
/**
 * The wall spans ~5 decades of ASD between 4 and 30 Hz: a Hann-truncated FIR
 * smears its response by ~2/T Hz with sidelobes falling as (ΔfT)^-3, so the
 * plateau below 4 Hz would leak into 20–30 Hz with a 2 s filter; 8 s
 * realises the wall from 2 Hz up (realism.test.ts checks the Welch spectrum
 * of the written files against the model's shape, within 15 %).
 */
const REALISTIC_FIR_SECONDS = 8;

/** A FIR whose response is sqrt(S(f)·fs/2): unit-variance white noise in, PSD S out. */
export function colouringFilter(psd: (f: number) => number, sampleRate: number, seconds = CLEAN_FIR_SECONDS): Float64Array {
  const n = nextPow2(Math.round(seconds * sampleRate));
  const half = new Float64Array(n + 2);
  for (let k = 1; k <= n / 2; k++) half[2 * k] = Math.sqrt((psd((k * sampleRate) / n) * sampleRate) / 2);
  const imp = new RealFFT(n).inverse(half);
  const w = hann(n, true);
  const taps = new Float64Array(n);
  for (let i = 0; i < n; i++) taps[i] = imp[(i + n / 2) % n] * w[i];
  return taps;
}

/** Continuous coloured Gaussian noise, deterministic for (seed, stream). */
export class ColouredNoise {
  readonly #rng: Rng;
  readonly #fir: FftFir;
  #buf: Float64Array = new Float64Array(0);
  #pos = 0;

  constructor(psd: (f: number) => number, sampleRate: number, seed: number, stream: string, firSeconds = CLEAN_FIR_SECONDS) {
    this.#rng = new Rng(seed, stream);
    const taps = colouringFilter(psd, sampleRate, firSeconds);
    this.#fir = new FftFir(taps, taps.length / 2);
    // warm up so the first sample already has the full filter history:
    // outputs are aligned with inputs, drop the first taps.length of them
    const outs: Float64Array[] = [this.#fir.push(this.#rng.fillNormal(new Float64Array(taps.length)))];
    let got = outs[0].length;
    while (got <= taps.length) {
      const y = this.#fir.push(this.#rng.fillNormal(new Float64Array(this.#fir.blockSize)));
      outs.push(y);
      got += y.length;
    }
    this.#buf = concat(outs).slice(taps.length);
  }

  take(n: number): Float64Array {
    const parts: Float64Array[] = [];
    let have = 0;
    while (have < n) {
      if (this.#pos >= this.#buf.length) {
        this.#buf = this.#fir.push(this.#rng.fillNormal(new Float64Array(this.#fir.blockSize)));
        this.#pos = 0;
        continue;
      }
      const m = Math.min(n - have, this.#buf.length - this.#pos);
      parts.push(this.#buf.subarray(this.#pos, this.#pos + m));
      this.#pos += m;
      have += m;
    }
    return concat(parts.length ? parts : [new Float64Array(0)]).slice();
  }
}

function rateTag(rate: number): string {
  return rate >= 1024 && rate % 1024 === 0 ? `${rate / 1024}KHZ` : `${rate}HZ`;
}

export function synthFileName(ifo: string, rate: number, start: number, duration: number): string {
  return `${ifo[0]}-${ifo}_SYNTH_${rateTag(rate)}_R1-${start}-${duration}.hdf5`;
}

function drawGaps(rng: Rng, duration: number, n: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let i = 0; i < n; i++) {
    const len = Math.min(duration, 4 + Math.floor(rng.uniform() * 29)); // 4..32 s
    const s = Math.floor(rng.uniform() * Math.max(1, duration - len + 1));
    out.push([s, s + len]);
  }
  out.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const g of out) {
    const last = merged[merged.length - 1];
    if (last && g[0] <= last[1]) last[1] = Math.max(last[1], g[1]);
    else merged.push([g[0], g[1]]);
  }
  return merged;
}

export async function synthesize(o: SynthOptions): Promise<SynthResult> {
  const seed = o.seed ?? 0;
  const fs = o.sampleRate;
  const start = o.start ?? SYNTH_DEFAULT_START;
  const duration = Math.round(o.duration);
  const fileDuration = Math.round(o.fileDuration ?? 4096);
  if (!Number.isInteger(fs) || fs < 64) throw new RangeError(`sample rate must be an integer >= 64 Hz, got ${fs}`);
  if (!(duration > 0)) throw new RangeError(`duration must be > 0 s, got ${o.duration}`);
  if (!(fileDuration > 0)) throw new RangeError(`file duration must be > 0 s, got ${o.fileDuration}`);
  if (o.ifos.length === 0) throw new RangeError("at least one detector is needed");
  mkdirSync(o.out, { recursive: true });
  const clean = o.clean ?? false;
  const glitchRate = clean ? 0 : (o.glitchRate ?? DEFAULT_GLITCH_RATE);
  if (!(glitchRate >= 0 && Number.isFinite(glitchRate))) throw new RangeError(`glitch rate must be >= 0 per minute, got ${o.glitchRate}`);
  const psd = clean ? aLigoDesignPsd : observingRunPsd;
  const result: SynthResult = { start, end: start + duration, files: {}, gaps: {}, mode: clean ? "clean" : "realistic", glitches: {} };

  for (const ifo of o.ifos) {
    const gapRng = new Rng(seed, `gaps:${ifo}`);
    const gaps = drawGaps(gapRng, duration, o.gaps ?? 0);
    result.gaps[ifo] = gaps.map(([a, b]) => [start + a, start + b]);
    const noise = new ColouredNoise(psd, fs, seed, `noise:${ifo}`, clean ? CLEAN_FIR_SECONDS : REALISTIC_FIR_SECONDS);
    // realistic mode: drift × noise + lines + glitches, by absolute sample
    let shape: ((x: Float64Array, i0: number) => void) | undefined;
    if (!clean) {
      const drift = new Drift(seed, ifo, fs);
      const lines = o.lines === false ? undefined : new LineTrack(spectralLines(ifo, fs), psd, fs, seed, ifo);
      const glitches = drawGlitches({
        ifo,
        seed,
        start,
        duration,
        sampleRate: fs,
        ratePerMinute: glitchRate,
        psd,
        level: (t) => drift.level(t),
        inGap: (t) => gaps.some(([a, b]) => t >= a - 1 && t < b + 1),
      });
      result.glitches[ifo] = glitches;
      const track = new GlitchTrack(glitches, start, fs);
      shape = (x, i0) => {
        drift.apply(x, i0);
        lines?.addTo(x, i0);
        track.addTo(x, i0);
      };
    }
    result.files[ifo] = [];
    for (let fo = 0; fo < duration; fo += fileDuration) {
      const fd = Math.min(fileDuration, duration - fo);
      const mask = new Int32Array(fd).fill((1 << DQ_NAMES.length) - 1);
      for (const [a, b] of gaps) for (let s = Math.max(a, fo); s < Math.min(b, fo + fd); s++) mask[s - fo] = 0;
      const path = join(o.out, synthFileName(ifo, fs, start + fo, fd));
      await writeStrainFile(path, {
        ifo,
        start: start + fo,
        duration: fd,
        sampleRate: fs,
        dqMask: mask,
        samples: (off, n) => {
          const x = noise.take(n);
          shape?.(x, fo * fs + off);
          // NaN where the DQ mask says there is no data
          for (let i = 0; i < n; i++) if (mask[Math.floor((off + i) / fs)] === 0) x[i] = Number.NaN;
          return x;
        },
      });
      result.files[ifo].push(path);
      o.onFile?.(path);
    }
  }

  if (!clean) {
    const all = o.ifos.flatMap((ifo) => result.glitches[ifo]);
    const path = join(o.out, GLITCH_FILE);
    writeGlitchList(path, all, `${o.ifos.join(",")} GPS [${start}, ${start + duration}), ${glitchRate} per minute per detector, seed ${seed}`);
    result.glitchFile = path;
    o.onFile?.(path);
  }

  const m = o.injections ?? 0;
  if (m > 0) {
    const path = join(o.out, "injections.h5");
    await writeInjectionFile(path, clean ? makeInjections(o, start, duration, m, seed) : makeSkyInjections(o, start, duration, m, seed));
    result.injectionFile = path;
    o.onFile?.(path);
  }
  return result;
}

/** Injection i's per-detector waveforms scaled (to its target network SNR) into the set's arrays; returns the scale. */
function storeScaled(
  i: number,
  scale: number,
  ifos: readonly string[],
  per: Float64Array[],
  perSnr: number[],
  waveforms: Record<string, Float32Array>,
  cols: Record<string, Float64Array>,
  length: number,
): number {
  ifos.forEach((ifo, k) => {
    const h = per[k];
    const w = waveforms[ifo];
    for (let j = 0; j < length; j++) w[i * length + j] = h[j] * scale;
    cols[`snr_${ifo}`][i] = perSnr[k] * scale;
  });
  return scale;
}

/** What both kinds of injection set share: waveform span and length, even spacing, empty arrays. */
function injectionLayout(o: SynthOptions, duration: number, m: number) {
  const fs = o.sampleRate;
  const [snrLo, snrHi] = o.snr ?? [8, 30];
  const tauMax = chirpDuration(CHIRP_MASS_RANGE[0], SYNTH_F_LOW);
  const tOffset = -Math.ceil((tauMax + 0.25) * 4) / 4;
  const length = Math.round((-tOffset + 0.25) * fs);
  const span = -tOffset + 0.25;
  if (duration < m * (span + 1)) throw new RangeError(`${m} injections of ${span} s do not fit in ${duration} s`);
  const waveforms: Record<string, Float32Array> = {};
  for (const ifo of o.ifos) waveforms[ifo] = new Float32Array(m * length);
  return { fs, snrLo, snrHi, tOffset, length, span, spacing: duration / m, ref: o.ifos[0], times: new Float64Array(m), waveforms };
}

function makeInjections(o: SynthOptions, start: number, duration: number, m: number, seed: number) {
  const rng = new Rng(seed, "injections");
  const { fs, snrLo, snrHi, tOffset, length, span, spacing, ref, times, waveforms } = injectionLayout(o, duration, m);
  const cols = {
    snr: new Float64Array(m),
    distance: new Float64Array(m),
    weight: new Float64Array(m),
    chirp_mass: new Float64Array(m),
    inclination: new Float64Array(m),
    coa_phase: new Float64Array(m),
  } as Record<string, Float64Array>;
  for (const ifo of o.ifos) cols[`snr_${ifo}`] = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    // spread over the span, away from its edges, on a 1/1024 s grid
    const lo = start + i * spacing + span, hi = start + (i + 1) * spacing - 1;
    const t = Math.round(rng.between(lo, Math.max(lo, hi)) * 1024) / 1024;
    times[i] = t;
    const p = {
      chirpMass: rng.between(CHIRP_MASS_RANGE[0], CHIRP_MASS_RANGE[1]),
      distance: 1,
      inclination: Math.acos(rng.between(-1, 1)),
      coaPhase: rng.between(0, 2 * Math.PI),
      fLow: SYNTH_F_LOW,
    };
    const target = rng.between(snrLo, snrHi);
    const per: Float64Array[] = [];
    let net2 = 0;
    const perSnr: number[] = [];
    for (const ifo of o.ifos) {
      // independent isotropic direction in each detector's frame, and an
      // arrival-time offset within the light travel time from the reference
      const ant = antennaPattern(Math.acos(rng.between(-1, 1)), rng.between(0, 2 * Math.PI), rng.between(0, Math.PI));
      const dt = ifo === ref ? 0 : rng.between(-1, 1) * lightTravelTime(ref, ifo);
      const h = chirpStrain(p, ant, t + dt, t + tOffset, fs, length);
      const r = optimalSnr(h, fs, aLigoDesignPsd, SYNTH_SNR_F_LOW);
      per.push(h);
      perSnr.push(r);
      net2 += r * r;
    }
    const scale = storeScaled(i, target / Math.sqrt(net2), o.ifos, per, perSnr, waveforms, cols, length);
    cols.snr[i] = target;
    cols.distance[i] = 1 / scale; // amplitude ∝ 1/distance, waveforms made at 1 Mpc
    cols.chirp_mass[i] = p.chirpMass;
    cols.inclination[i] = p.inclination;
    cols.coa_phase[i] = p.coaPhase;
  }
  // SNR is drawn uniformly, so at fixed intrinsic parameters p(d) ∝ 1/d²;
  // weight ∝ d⁴ reweights to a population uniform in volume (mean 1).
  let mean = 0;
  for (let i = 0; i < m; i++) mean += cols.distance[i] ** 4;
  mean /= m;
  for (let i = 0; i < m; i++) cols.weight[i] = cols.distance[i] ** 4 / mean;
  return { times, sampleRate: fs, tOffset, waveforms, length, parameters: cols };
}

/**
 * Realistic-mode injections: one source per injection, isotropic on the sky
 * (ra, dec), with polarisation psi, inclination and coalescence phase, seen
 * by every detector with its own antenna pattern and arrival time (sky.ts).
 * `injections/time` is the coalescence time at the reference (first)
 * detector; `geocent_time` the one at the geocentre.
 */
function makeSkyInjections(o: SynthOptions, start: number, duration: number, m: number, seed: number) {
  const rng = new Rng(seed, "injections:sky");
  const { fs, snrLo, snrHi, tOffset, length, span, spacing, ref, times, waveforms } = injectionLayout(o, duration, m);
  const names = ["snr", "distance", "weight", "chirp_mass", "inclination", "coa_phase", "ra", "dec", "psi", "geocent_time"];
  const cols: Record<string, Float64Array> = Object.fromEntries(names.map((n) => [n, new Float64Array(m)]));
  for (const ifo of o.ifos) cols[`snr_${ifo}`] = new Float64Array(m);
  for (let i = 0; i < m; i++) {
    // spread over the span, away from its edges; geocentre time on a 1/1024 s grid
    const lo = start + i * spacing + span, hi = start + (i + 1) * spacing - 1;
    const tGeo = Math.round(rng.between(lo, Math.max(lo, hi)) * 1024) / 1024;
    const ra = rng.between(0, 2 * Math.PI);
    const dec = Math.asin(rng.between(-1, 1));
    const psi = rng.between(0, Math.PI);
    const p = {
      chirpMass: rng.between(CHIRP_MASS_RANGE[0], CHIRP_MASS_RANGE[1]),
      distance: 1,
      inclination: Math.acos(rng.between(-1, 1)),
      coaPhase: rng.between(0, 2 * Math.PI),
      fLow: SYNTH_F_LOW,
    };
    const gmst = greenwichMeanSiderealTime(tGeo);
    const t = tGeo + timeDelayFromGeocenter(ref, ra, dec, gmst);
    times[i] = t;
    const target = rng.between(snrLo, snrHi);
    const per: Float64Array[] = [];
    const perSnr: number[] = [];
    let net2 = 0;
    for (const ifo of o.ifos) {
      const ant = antennaResponse(ifo, ra, dec, psi, gmst);
      const tc = tGeo + timeDelayFromGeocenter(ifo, ra, dec, gmst);
      const h = chirpStrain(p, ant, tc, t + tOffset, fs, length);
      const r = optimalSnr(h, fs, observingRunPsd, SYNTH_SNR_F_LOW);
      per.push(h);
      perSnr.push(r);
      net2 += r * r;
    }
    const scale = storeScaled(i, target / Math.sqrt(net2), o.ifos, per, perSnr, waveforms, cols, length);
    cols.snr[i] = target;
    cols.distance[i] = 1 / scale;
    cols.chirp_mass[i] = p.chirpMass;
    cols.inclination[i] = p.inclination;
    cols.coa_phase[i] = p.coaPhase;
    cols.ra[i] = ra;
    cols.dec[i] = dec;
    cols.psi[i] = psi;
    cols.geocent_time[i] = tGeo;
  }
  let mean = 0;
  for (let i = 0; i < m; i++) mean += cols.distance[i] ** 4;
  mean /= m;
  for (let i = 0; i < m; i++) cols.weight[i] = cols.distance[i] ** 4 / mean;
  return { times, sampleRate: fs, tOffset, waveforms, length, parameters: cols };
}
