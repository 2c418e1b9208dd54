// One-sided power spectral density by Welch's method with median
// averaging (robust to glitches and signals in the PSD stretch), as in
// scipy.signal.welch(average="median") and aframe's background PSD.
import { RealFFT } from "./fft.js";
import { hann } from "./fir.js";

export interface Psd {
  /** one-sided PSD, strain²/Hz, at frequencies k·df, k = 0..nfft/2 */
  values: Float64Array;
  df: number;
}

/** Ratio of mean to median of a chi² with 2 dof over n estimates (scipy's median bias). */
export function medianBias(n: number): number {
  let s = 1;
  for (let i = 2; i <= n - 1; i += 2) s += 1 / (i + 1) - 1 / i;
  return s;
}

export function welchPsd(
  x: ArrayLike<number>,
  sampleRate: number,
  opts: { fftlength: number; overlap?: number },
): Psd {
  const nper = Math.round(opts.fftlength * sampleRate);
  if (nper < 2 || (nper & (nper - 1)) !== 0) {
    throw new RangeError(`PSD fftlength × sample_rate must be a power of two, got ${nper} samples`);
  }
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(x[i])) throw new RangeError(`PSD: sample ${i} is not finite (NaN marks missing data)`);
  }
  const step = nper - Math.round((opts.overlap ?? 0.5) * nper);
  const nseg = x.length < nper ? 0 : Math.floor((x.length - nper) / step) + 1;
  if (nseg < 1) throw new RangeError(`PSD needs at least ${nper} samples, got ${x.length}`);
  const w = hann(nper, true);
  let wss = 0;
  for (let i = 0; i < nper; i++) wss += w[i] * w[i];
  const scale = 1 / (sampleRate * wss);
  const nf = nper / 2 + 1;
  const fft = new RealFFT(nper);
  const seg = new Float64Array(nper);
  const spec = new Float64Array(nper + 2);
  const per = new Float64Array(nf * nseg); // [freq][segment] for the median
  for (let s = 0; s < nseg; s++) {
    const o = s * step;
    let mean = 0;
    for (let i = 0; i < nper; i++) mean += x[o + i];
    mean /= nper;
    for (let i = 0; i < nper; i++) seg[i] = (x[o + i] - mean) * w[i];
    fft.forward(seg, spec);
    for (let k = 0; k < nf; k++) {
      const p = (spec[2 * k] ** 2 + spec[2 * k + 1] ** 2) * scale;
      per[k * nseg + s] = k === 0 || k === nf - 1 ? p : 2 * p;
    }
  }
  const values = new Float64Array(nf);
  const bias = medianBias(nseg);
  const tmp = new Float64Array(nseg);
  for (let k = 0; k < nf; k++) {
    tmp.set(per.subarray(k * nseg, (k + 1) * nseg));
    tmp.sort();
    const med = nseg % 2 ? tmp[(nseg - 1) / 2] : 0.5 * (tmp[nseg / 2 - 1] + tmp[nseg / 2]);
    values[k] = med / bias;
  }
  return { values, df: sampleRate / nper };
}

/** Linear interpolation of a PSD at frequency f (clamped at the ends). */
export function psdAt(psd: Psd, f: number): number {
  const x = f / psd.df;
  const n = psd.values.length;
  if (x <= 0) return psd.values[0];
  if (x >= n - 1) return psd.values[n - 1];
  const i = Math.floor(x);
  const t = x - i;
  return psd.values[i] * (1 - t) + psd.values[i + 1] * t;
}
