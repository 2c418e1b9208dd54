// The strain pipeline: read → resample → inject → whiten, streamed, with the
// edge rule of DESIGN.md ("Livetime") in one place. A whitened sample is
// returned only where the resampler and the whitening filter had their full
// support in real strain: nothing is zero-padded, nothing is read outside the
// analysable segment, so a segment end (where real strain below 10 Hz is
// orders of magnitude above the in-band noise) cannot become a fake event.
import { Decimator, decimationFactor, decimationTaps } from "./resample.js";
import type { DetectorStream, StrainSlice } from "./stream.js";
import { Whitener } from "./whiten.js";
import { welchPsd, type Psd } from "./psd.js";

/** Strain that should be good but is not (NaN or no file inside a segment), or a read the segment does not hold. */
export class BadSegmentError extends Error {
  override name = "BadSegmentError";
}

const GRID_EPS = 1e-9;

/**
 * Half-support (s) of the resampling filter from `fileRate` to `analysisRate`,
 * rounded up to whole analysis samples: 0 when the files are at the analysis
 * rate.
 */
export function resamplingHalfSupport(fileRate: number, analysisRate: number): number {
  const q = decimationFactor(fileRate, analysisRate);
  if (q === 1) return 0;
  const half = (decimationTaps(q).length - 1) / 2;
  return Math.ceil(half / q) / analysisRate;
}

/**
 * Seconds at each end of a stretch of strain whose whitened samples lack full
 * support: `fduration / 2 + r` (DESIGN.md's `edge`). The livetime loses it at
 * each segment's end (its start is inside the burn-in).
 */
export function segmentEdge(fileRate: number, analysisRate: number, fduration: number): number {
  return fduration / 2 + resamplingHalfSupport(fileRate, analysisRate);
}

export interface WhitenedStrainOptions {
  /** analysis rate (Hz) */
  sampleRate: number;
  /** s of strain from `psdStart` that estimate the PSD */
  psdLength: number;
  /** s, whitening filter length */
  fduration: number;
  /** s per Welch segment of the PSD (default fduration) */
  fftlength?: number;
  highpass?: number;
  /** the analysable segment [s, e): nothing outside it is read */
  segment: readonly [number, number];
  /** GPS where the PSD's psdLength seconds start (inside the segment) */
  psdStart: number;
  /** GPS range whose whitened samples are wanted; it and its edges must lie inside the segment */
  range: readonly [number, number];
  /**
   * Adds signal (injections) to resampled strain before whitening: called
   * once with the PSD's strain and once with a zeroed buffer over the
   * analysis strain (the signal added step by step).
   */
  inject?: (start: number, sampleRate: number, data: Float64Array, part: "psd" | "analysis") => void;
  /** s of file strain read per step (default 16) */
  stepSeconds?: number;
  /** names the reader in errors, e.g. "job bg-…" */
  context?: string;
}

/** A detector's whitened strain over a range, produced step by step. */
export interface WhitenedStrain {
  readonly ifo: string;
  /** GPS of the first whitened sample (the range's start) */
  readonly start: number;
  /** whitened samples the reader yields in all */
  readonly length: number;
  readonly psd: Psd;
  /** the next whitened samples, in order; null once all `length` are out */
  step(): Promise<Float64Array | null>;
  /** releases the open data file (the last step does; needed when reading stops early) */
  close(): void;
}

/** Keeps the samples of absolute index [lo, hi) from consecutive chunks. */
class Window {
  #at = 0;
  constructor(readonly lo: number, readonly hi: number) {}
  take(x: Float64Array): Float64Array {
    const a = this.#at;
    this.#at += x.length;
    const i0 = Math.max(0, this.lo - a);
    const i1 = Math.min(x.length, this.hi - a);
    return i1 > i0 ? x.subarray(i0, i1) : x.subarray(0, 0);
  }
}

/**
 * Opens the strain pipeline for one detector: reads the PSD span, then, step
 * by step, `range` widened by the edge on each side, resampled, with signal
 * added, whitened, and returns only the fully supported samples of `range`.
 */
export async function openWhitenedStrain(stream: DetectorStream, o: WhitenedStrainOptions): Promise<WhitenedStrain> {
  const fs = o.sampleRate;
  const q = decimationFactor(stream.sampleRate, fs);
  const [s, e] = o.segment;
  const at = o.context ? `${o.context}: ${stream.ifo}` : stream.ifo;
  const r = resamplingHalfSupport(stream.sampleRate, fs);
  const edge = o.fduration / 2 + r;
  const A = o.range[0] - edge;
  const B = o.range[1] + edge;
  const psdEnd = o.psdStart + o.psdLength;
  if (A < s - GRID_EPS || B > e + GRID_EPS || o.psdStart < s - GRID_EPS || psdEnd > e + GRID_EPS)
    throw new BadSegmentError(
      `${at}: whitened strain over [${o.range[0]}, ${o.range[1]}) needs [${A}, ${B}) and the PSD [${o.psdStart}, ${psdEnd}) inside the segment [${s}, ${e})`,
    );
  const read = async (a: number, b: number, what: string): Promise<StrainSlice> => {
    const slice = await stream.read(a, b);
    if (slice.gaps.length) {
      const g = slice.gaps.segments[0];
      const files = stream.files.filter((f) => f.xstart < g.end && f.xstart + f.duration > g.start).map((f) => f.path);
      throw new BadSegmentError(
        `${at} has no valid data (NaN or no file) at [${g.start}, ${g.end}) inside the good segment [${s}, ${e}) (${what})` +
          (files.length ? ` (${files.join(", ")})` : "") +
          (stream.unreadable.length ? `; unreadable: ${stream.unreadable.map((u) => u.message).join("; ")}` : ""),
      );
    }
    return slice;
  };

  // Resampled samples k with full support: k·q − half ≥ 0 and k·q + half < n.
  const half = q > 1 ? (decimationTaps(q).length - 1) / 2 : 0;
  const resampled = (n: number) => new Window(Math.ceil(half / q), Math.floor((n - 1 - half) / q) + 1);

  let psd: Psd;
  {
    let slice: StrainSlice;
    try {
      slice = await read(o.psdStart, psdEnd, "PSD burn-in");
    } catch (err) {
      stream.close();
      throw err;
    }
    let x = slice.data;
    let t = slice.start;
    if (q > 1) {
      const d = new Decimator(q);
      const win = resampled(x.length);
      const parts = [win.take(d.push(x)), win.take(d.flush())];
      x = new Float64Array(parts[0].length + parts[1].length);
      x.set(parts[0]);
      x.set(parts[1], parts[0].length);
      t += win.lo / fs;
    }
    o.inject?.(t, fs, x, "psd");
    psd = welchPsd(x, fs, { fftlength: o.fftlength ?? o.fduration });
  }

  const nRaw = Math.round((B - A) * stream.sampleRate);
  const decimator = q > 1 ? new Decimator(q) : undefined;
  const kept = resampled(nRaw); // resampled stream starts at A + r
  const nResampled = kept.hi - kept.lo;
  const whitener = Whitener.fromPsd(psd, { sampleRate: fs, fduration: o.fduration, highpass: o.highpass });
  const w = whitener.edge; // samples of filter half-length
  const length = Math.round((o.range[1] - o.range[0]) * fs);
  if (nResampled < length + 2 * w) throw new Error(`${at}: internal: ${nResampled} resampled samples for ${length} whitened`);
  const whitened = new Window(w, w + length);

  let signal: Float64Array | undefined;
  if (o.inject) {
    const x = new Float64Array(nResampled);
    o.inject(A + r, fs, x, "analysis");
    if (x.some((v) => v !== 0)) signal = x;
  }
  let fed = 0; // resampled samples fed to the whitener
  const feed = (x: Float64Array, out: Float64Array[]) => {
    if (signal) for (let j = 0; j < x.length; j++) x[j] += signal[fed + j];
    fed += x.length;
    out.push(whitened.take(whitener.push(x)));
  };
  const stepS = o.stepSeconds ?? 16;
  let t = A;
  let produced = 0;
  let done = false;
  return {
    ifo: stream.ifo,
    start: o.range[0],
    length,
    psd,
    close: () => stream.close(),
    async step() {
      if (done) return null;
      const next = Math.min(B, t + stepS);
      const slice = await read(t, next, "analysis");
      t = next;
      const last = t >= B - GRID_EPS;
      const out: Float64Array[] = [];
      const x = decimator ? kept.take(decimator.push(slice.data)) : slice.data;
      feed(x, out);
      if (last) {
        stream.close();
        if (decimator) feed(kept.take(decimator.flush()), out);
        // The flush's zero-padded outputs fall past the window: none is kept.
        out.push(whitened.take(whitener.flush()));
        done = true;
      }
      const y = concatParts(out);
      produced += y.length;
      if (last && (produced !== length || fed !== nResampled))
        throw new Error(`${at}: internal: ${produced} whitened samples for ${length} (resampled ${fed} of ${nResampled})`);
      return y;
    },
  };
}

function concatParts(parts: Float64Array[]): Float64Array {
  if (parts.length === 1) return parts[0];
  const n = parts.reduce((a, p) => a + p.length, 0);
  const y = new Float64Array(n);
  let at = 0;
  for (const p of parts) {
    y.set(p, at);
    at += p.length;
  }
  return y;
}
