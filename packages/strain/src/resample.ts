// Integer-factor decimation with a zero-phase anti-aliasing FIR. Each
// output sample is the same dot product whatever the chunking, so the
// streaming form equals the whole-array one exactly.
import { lowpassTaps } from "./fir.js";

/** Kaiser design: passband to 0.8 of the new Nyquist, about 80 dB from the new Nyquist up. */
export function decimationTaps(factor: number): Float64Array {
  if (!Number.isInteger(factor) || factor < 1) throw new RangeError(`decimation factor must be a positive integer, got ${factor}`);
  if (factor === 1) return Float64Array.of(1);
  // transition 0.8..1.0 of the new Nyquist: width 0.1/q cycles/sample;
  // Kaiser: M ≈ (A − 8) / (2.285 · 2π · width) with A = 80 dB
  const half = Math.ceil((72 / (2.285 * 2 * Math.PI * (0.1 / factor))) / 2);
  return lowpassTaps(half, 0.9 * (0.5 / factor), 0.1102 * (80 - 8.7));
}

/**
 * Streaming decimator: output k is the filtered input at sample k·factor
 * (so output sample 0 sits at the time of input sample 0).
 */
export class Decimator {
  readonly factor: number;
  readonly taps: Float64Array;
  readonly #half: number;
  #hist: Float64Array; // inputs from absolute index #base on
  #base: number;
  #len = 0;
  #consumed = 0;
  #next = 0; // next output index

  constructor(factor: number) {
    this.factor = factor;
    this.taps = decimationTaps(factor);
    this.#half = (this.taps.length - 1) / 2;
    // zeros before the first sample
    this.#hist = new Float64Array(Math.max(4096, 4 * this.taps.length));
    this.#base = -this.#half;
    this.#len = this.#half;
  }

  #append(x: ArrayLike<number>): void {
    if (this.#len + x.length > this.#hist.length) {
      // drop what no future output needs
      const keepFrom = this.#next * this.factor - this.#half;
      const drop = Math.max(0, keepFrom - this.#base);
      const keep = this.#len - drop;
      const cap = Math.max(this.#hist.length, 2 * (keep + x.length));
      const h = new Float64Array(cap);
      h.set(this.#hist.subarray(drop, this.#len));
      this.#hist = h;
      this.#base += drop;
      this.#len = keep;
    }
    if (ArrayBuffer.isView(x)) this.#hist.set(x as unknown as ArrayLike<number>, this.#len);
    else for (let i = 0; i < x.length; i++) this.#hist[this.#len + i] = x[i];
    this.#len += x.length;
    this.#consumed += x.length;
  }

  #produce(limitInputEnd: number): Float64Array {
    const q = this.factor, half = this.#half, h = this.taps;
    // output k needs inputs up to k·q + half
    const avail = this.#base + this.#len; // exclusive absolute index
    let last = Math.floor((avail - 1 - half) / q); // last output computable
    const maxOut = Math.ceil(limitInputEnd / q) - 1;
    if (last > maxOut) last = maxOut;
    const count = Math.max(0, last - this.#next + 1);
    const out = new Float64Array(count);
    const hist = this.#hist;
    // Symmetric taps: fold the window around its centre (half the
    // multiplies); four partial sums let the multiplies overlap (twice as
    // fast as one running sum: decimation is most of a worker's reading).
    for (let j = 0; j < count; j++) {
      const c = (this.#next + j) * q - this.#base; // centre sample in hist
      let s0 = h[half] * hist[c], s1 = 0, s2 = 0, s3 = 0;
      let i = 0, a = c - half, b = c + half;
      for (; i + 3 < half; i += 4, a += 4, b -= 4) {
        s0 += h[i] * (hist[a] + hist[b]);
        s1 += h[i + 1] * (hist[a + 1] + hist[b - 1]);
        s2 += h[i + 2] * (hist[a + 2] + hist[b - 2]);
        s3 += h[i + 3] * (hist[a + 3] + hist[b - 3]);
      }
      for (; i < half; i++, a++, b--) s0 += h[i] * (hist[a] + hist[b]);
      out[j] = s0 + s1 + (s2 + s3);
    }
    this.#next += count;
    return out;
  }

  push(x: ArrayLike<number>): Float64Array {
    this.#append(x);
    return this.#produce(Number.POSITIVE_INFINITY);
  }

  /** Ends the input (zeros beyond it); returns the last outputs, ceil(n/factor) in all. */
  flush(): Float64Array {
    const end = this.#consumed;
    this.#append(new Float64Array(this.#half));
    this.#consumed = end;
    return this.#produce(end);
  }
}

/** Whole-array decimation by an integer factor: ceil(n / factor) samples. */
export function decimate(x: ArrayLike<number>, factor: number): Float64Array {
  if (factor === 1) return Float64Array.from(x);
  const d = new Decimator(factor);
  const a = d.push(x);
  const b = d.flush();
  const r = new Float64Array(a.length + b.length);
  r.set(a);
  r.set(b, a.length);
  return r;
}

/** The integer factor from one rate to another; a clear error otherwise. */
export function decimationFactor(from: number, to: number): number {
  const q = from / to;
  if (!(q >= 1) || Math.abs(q - Math.round(q)) > 1e-9) {
    throw new RangeError(`cannot resample ${from} Hz to ${to} Hz: only integer decimation factors are supported`);
  }
  return Math.round(q);
}
