// Real FFTs on top of fft.js (power-of-two sizes, radix-4, pure JS, no
// dependencies). Plans are cached per size because whitening and
// resampling reuse a handful of sizes many times.
import FFT from "fft.js";

const plans = new Map<number, FFT>();

function plan(n: number): FFT {
  let p = plans.get(n);
  if (!p) {
    p = new FFT(n);
    plans.set(n, p);
  }
  return p;
}

export function nextPow2(n: number): number {
  let p = 2;
  while (p < n) p *= 2;
  return p;
}

/**
 * Real-input FFT of size n (power of two). `forward` returns the half
 * spectrum (bins 0..n/2) interleaved re, im; `inverse` takes the same layout
 * and returns the real signal, scaled by 1/n (so inverse(forward(x)) = x).
 */
export class RealFFT {
  readonly n: number;
  readonly #p: FFT;
  readonly #full: Float64Array;
  readonly #tmp: Float64Array;

  constructor(n: number) {
    if (n < 2 || (n & (n - 1)) !== 0) throw new RangeError(`FFT size must be a power of two >= 2, got ${n}`);
    this.n = n;
    this.#p = plan(n);
    this.#full = new Float64Array(2 * n);
    this.#tmp = new Float64Array(2 * n);
  }

  /** Writes bins 0..n/2 of the spectrum into `out` (length >= n + 2). */
  forward(input: ArrayLike<number>, out: Float64Array = new Float64Array(this.n + 2)): Float64Array {
    const p = this.#p;
    p.realTransform(this.#full, input);
    out.set(this.#full.subarray(0, this.n + 2));
    return out;
  }

  /** Real inverse of a half spectrum (bins 0..n/2, interleaved). */
  inverse(half: ArrayLike<number>, out: Float64Array = new Float64Array(this.n)): Float64Array {
    const n = this.n;
    const full = this.#full;
    for (let i = 0; i < n + 2; i++) full[i] = half[i];
    // Hermitian symmetry fills the upper half; the imaginary parts of the
    // DC and Nyquist bins are dropped so the result is real.
    full[1] = 0;
    full[n + 1] = 0;
    for (let k = 1; k < n / 2; k++) {
      full[2 * (n - k)] = full[2 * k];
      full[2 * (n - k) + 1] = -full[2 * k + 1];
    }
    this.#p.inverseTransform(this.#tmp, full);
    const tmp = this.#tmp;
    for (let i = 0; i < n; i++) out[i] = tmp[2 * i];
    return out;
  }
}
