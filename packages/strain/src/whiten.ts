// Whitening: an inverse-ASD FIR of length fduration built from a Welch
// median PSD, high-passed, applied by FFT convolution. Output is scaled so
// white Gaussian noise over the full band would have unit variance (the
// in-band one-sided PSD is 2 / sample_rate).
import { FftFir, concat, hann } from "./fir.js";
import { RealFFT } from "./fft.js";
import { psdAt, welchPsd, type Psd } from "./psd.js";

export interface WhitenOptions {
  sampleRate: number;
  /** seconds at the start of the data that estimate the PSD (aframe's psd_length) */
  psdLength: number;
  /** seconds, length of the whitening filter */
  fduration: number;
  /** Hz; the filter is zero below it */
  highpass?: number;
  /** seconds per Welch segment; defaults to fduration */
  fftlength?: number;
}

export interface Whitened {
  /** whitened samples aligned with the input; zero outside `valid` */
  data: Float64Array;
  /** [first, end) sample indices where the filter had full support */
  valid: [number, number];
  psd: Psd;
  /** the FIR taps (length fduration·rate, centred) */
  filter: Float64Array;
}

/**
 * The inverse-ASD FIR: fduration·rate taps centred at the middle,
 * Hann-truncated. A PSD finer than the filter (Welch segments longer than
 * fduration: less leakage of the low-frequency wall) is first averaged, in
 * power, over what the truncated filter resolves: a Hann kernel as wide as
 * the truncation window's main lobe (±2/fduration). Truncating the impulse
 * response averages the *inverse* ASD over that lobe, which fills the notch
 * of a narrow line with the band beside it: a 60 Hz line came through the
 * whitening ~300× above the white level (violin modes ~800×) when the fine
 * inverse ASD was truncated as it was; averaged power first, its notch is as
 * wide as the filter can hold and the line is whitened as a PSD at the
 * filter's own resolution whitens it (~6×), without that PSD's leakage of
 * the wall (20–35 Hz at 0.5 of white). A PSD coarser than the filter is
 * interpolated linearly onto the filter's frequencies.
 */
export function inverseAsdFilter(psd: Psd, sampleRate: number, fduration: number, highpass = 0): Float64Array {
  const n = Math.round(fduration * sampleRate);
  if (n < 4 || (n & (n - 1)) !== 0) {
    throw new RangeError(`fduration × sample_rate must be a power of two, got ${n} samples`);
  }
  const fine = Math.round(sampleRate / psd.df); // the PSD's FFT length
  const m = fine > n && (fine & (fine - 1)) === 0 && psd.values.length === fine / 2 + 1 ? fine : n;
  const power = m === n ? undefined : smoothedPower(psd.values, (2 * m) / n);
  const half = new Float64Array(m + 2);
  const df = sampleRate / m;
  for (let k = 1; k < m / 2; k++) {
    const f = k * df;
    if (f < highpass) continue;
    const p = power ? power[k] : psdAt(psd, f);
    half[2 * k] = p > 0 ? 1 / Math.sqrt(p) : 0;
  }
  // zero-phase impulse response (lag 0 at index 0), its central n taps windowed
  const imp = new RealFFT(m).inverse(half);
  const w = hann(n, true);
  const taps = new Float64Array(n);
  const norm = Math.sqrt(2 / sampleRate);
  for (let i = 0; i < n; i++) taps[i] = imp[(i - n / 2 + m) % m] * w[i] * norm;
  return taps;
}

/**
 * PSD values averaged with a Hann kernel reaching `lobe` bins either side
 * (weights 0.5 + 0.5·cos(πj/(lobe + 1)), normalised), mirrored at DC and
 * clamped at Nyquist.
 */
function smoothedPower(v: Float64Array, lobe: number): Float64Array {
  const L = Math.round(lobe);
  const w = Float64Array.from({ length: 2 * L + 1 }, (_, i) => 0.5 + 0.5 * Math.cos((Math.PI * (i - L)) / (L + 1)));
  const wsum = w.reduce((a, x) => a + x, 0);
  const out = new Float64Array(v.length);
  for (let k = 0; k < v.length; k++) {
    let acc = 0;
    for (let j = -L; j <= L; j++) acc += w[j + L] * v[Math.min(v.length - 1, Math.abs(k + j))];
    out[k] = acc / wsum;
  }
  return out;
}

/** Streaming whitener with a fixed filter; output sample i is aligned with input sample i. */
export class Whitener {
  readonly filter: Float64Array;
  readonly #fir: FftFir;

  constructor(filter: Float64Array) {
    this.filter = filter;
    this.#fir = new FftFir(filter, filter.length / 2);
  }

  static fromPsd(psd: Psd, o: Omit<WhitenOptions, "psdLength" | "fftlength">): Whitener {
    return new Whitener(inverseAsdFilter(psd, o.sampleRate, o.fduration, o.highpass ?? 0));
  }

  /** Samples of filter edge on each side (fduration/2). */
  get edge(): number {
    return this.filter.length / 2;
  }

  push(x: ArrayLike<number>): Float64Array {
    return this.#fir.push(x);
  }

  /** Whole-array application of a filter (zeros outside x), same length as x. */
  static apply(x: ArrayLike<number>, filter: Float64Array): Float64Array {
    const w = new Whitener(filter);
    return concat([w.push(x), w.flush()]);
  }

  flush(): Float64Array {
    return this.#fir.flush();
  }
}

/** PSD from the first psdLength seconds, as whitening uses it. */
export function burnInPsd(x: ArrayLike<number>, o: WhitenOptions): Psd {
  const n = Math.round(o.psdLength * o.sampleRate);
  if (x.length < n) throw new RangeError(`whitening needs psd_length ${o.psdLength} s (${n} samples), got ${x.length}`);
  const head = ArrayBuffer.isView(x) ? (x as unknown as Float64Array).subarray(0, n) : Array.from(x).slice(0, n);
  return welchPsd(head, o.sampleRate, { fftlength: o.fftlength ?? o.fduration });
}

/**
 * Whitens a whole segment span (no NaN allowed): PSD from its first
 * psdLength seconds, then the inverse-ASD filter over all of it.
 */
export function whiten(x: ArrayLike<number>, o: WhitenOptions): Whitened {
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`cannot whiten: sample ${i} is not finite (NaN marks missing data)`);
  }
  const psd = burnInPsd(x, o);
  const w = Whitener.fromPsd(psd, o);
  const data = concat([w.push(x), w.flush()]);
  const e = w.edge;
  const valid: [number, number] = [Math.min(e, x.length), Math.max(Math.min(e, x.length), x.length - e)];
  data.fill(0, 0, valid[0]);
  data.fill(0, valid[1]);
  return { data, valid, psd, filter: w.filter };
}
