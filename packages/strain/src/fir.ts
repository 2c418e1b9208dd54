// FIR filtering by overlap-save FFT convolution. The filter is zero-phase:
// taps h[0..M) with centre `delay`, output y[n] = sum_k h[k] x[n + delay - k],
// x = 0 outside the input. Blocks sit at fixed absolute positions, so
// feeding the input in any chunking gives bit-identical output.
import { RealFFT, nextPow2 } from "./fft.js";

export class FftFir {
  readonly taps: Float64Array;
  readonly delay: number;
  readonly blockSize: number;
  readonly #fft: RealFFT;
  readonly #H: Float64Array;
  readonly #buf: Float64Array; // last M-1 inputs followed by the current block
  readonly #spec: Float64Array;
  readonly #outBlock: Float64Array;
  #fill = 0; // new samples in the current block
  #consumed = 0; // inputs pushed
  #produced = 0; // causal outputs computed (z[m] = sum h[k] x[m-k])
  #dropped = 0; // causal outputs discarded to compensate the delay

  constructor(taps: Float64Array, delay: number, fftSize?: number) {
    const m = taps.length;
    if (m < 1) throw new RangeError("FIR needs at least one tap");
    if (!(delay >= 0 && delay < m && Number.isInteger(delay))) throw new RangeError(`bad FIR delay ${delay}`);
    this.taps = taps;
    this.delay = delay;
    const n = fftSize ?? Math.max(1024, nextPow2(8 * m));
    if (n < 2 * m) throw new RangeError(`FFT size ${n} too small for ${m} taps`);
    this.blockSize = n - (m - 1);
    this.#fft = new RealFFT(n);
    const padded = new Float64Array(n);
    padded.set(taps);
    this.#H = this.#fft.forward(padded);
    this.#buf = new Float64Array(n);
    this.#spec = new Float64Array(n + 2);
    this.#outBlock = new Float64Array(n);
  }

  /** Samples pushed so far, and outputs returned so far. */
  get consumed(): number {
    return this.#consumed;
  }

  #runBlock(): Float64Array {
    const m = this.taps.length;
    const n = this.#fft.n;
    const spec = this.#fft.forward(this.#buf, this.#spec);
    const H = this.#H;
    for (let k = 0; k < n + 2; k += 2) {
      const a = spec[k], b = spec[k + 1], c = H[k], d = H[k + 1];
      spec[k] = a * c - b * d;
      spec[k + 1] = a * d + b * c;
    }
    const y = this.#fft.inverse(spec, this.#outBlock);
    // valid causal outputs of this block are the last blockSize samples
    const res = y.slice(m - 1, m - 1 + this.#fill);
    // slide: keep the last M-1 inputs
    this.#buf.copyWithin(0, this.blockSize, this.blockSize + m - 1);
    this.#buf.fill(0, m - 1);
    this.#produced += this.#fill;
    this.#fill = 0;
    return res;
  }

  #emit(z: Float64Array, out: Float64Array[]): void {
    let start = 0;
    if (this.#dropped < this.delay) {
      start = Math.min(z.length, this.delay - this.#dropped);
      this.#dropped += start;
    }
    if (start < z.length) out.push(start === 0 ? z : z.subarray(start));
  }

  /** Feeds samples; returns the outputs that are now complete (aligned with the inputs). */
  push(x: ArrayLike<number>): Float64Array {
    const m = this.taps.length;
    const out: Float64Array[] = [];
    let i = 0;
    while (i < x.length) {
      const take = Math.min(this.blockSize - this.#fill, x.length - i);
      const base = m - 1 + this.#fill;
      for (let j = 0; j < take; j++) this.#buf[base + j] = x[i + j];
      this.#fill += take;
      i += take;
      this.#consumed += take;
      if (this.#fill === this.blockSize) this.#emit(this.#runBlock(), out);
    }
    return concat(out);
  }

  /** Ends the input (zeros beyond it) and returns the remaining outputs. */
  flush(): Float64Array {
    const out: Float64Array[] = [];
    // the last `delay` outputs need `delay` zeros after the end of the input
    let zeros = this.delay;
    while (zeros > 0 || this.#fill > 0) {
      const room = this.blockSize - this.#fill;
      const z = Math.min(room, zeros);
      this.#fill += z; // buffer is already zero past the filled part
      zeros -= z;
      this.#emit(this.#runBlock(), out);
    }
    return concat(out);
  }
}

export function concat(parts: Float64Array[]): Float64Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const r = new Float64Array(n);
  let o = 0;
  for (const p of parts) {
    r.set(p, o);
    o += p.length;
  }
  return r;
}

/** Zero-order modified Bessel function of the first kind (Kaiser window). */
function besselI0(x: number): number {
  let sum = 1, term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 200; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < 1e-17 * sum) break;
  }
  return sum;
}

/** Kaiser window of length m (symmetric). */
export function kaiser(m: number, beta: number): Float64Array {
  const w = new Float64Array(m);
  const i0b = besselI0(beta);
  for (let i = 0; i < m; i++) {
    const r = m === 1 ? 0 : (2 * i) / (m - 1) - 1;
    w[i] = besselI0(beta * Math.sqrt(Math.max(0, 1 - r * r))) / i0b;
  }
  return w;
}

/** Hann window, symmetric (`periodic` false) or periodic. */
export function hann(m: number, periodic = false): Float64Array {
  const w = new Float64Array(m);
  const d = periodic ? m : m - 1;
  for (let i = 0; i < m; i++) w[i] = 0.5 - 0.5 * Math.cos((2 * Math.PI * i) / d);
  return w;
}

/**
 * Windowed-sinc low-pass, odd length 2·half+1, cutoff in cycles per sample
 * (0 < cutoff < 0.5), unit gain at DC.
 */
export function lowpassTaps(half: number, cutoff: number, beta: number): Float64Array {
  const m = 2 * half + 1;
  const w = kaiser(m, beta);
  const h = new Float64Array(m);
  let sum = 0;
  for (let i = 0; i < m; i++) {
    const t = i - half;
    const s = t === 0 ? 2 * cutoff : Math.sin(2 * Math.PI * cutoff * t) / (Math.PI * t);
    h[i] = s * w[i];
    sum += h[i];
  }
  for (let i = 0; i < m; i++) h[i] /= sum;
  return h;
}
