// The bulk of a background: counts of detection statistics in bins that
// follow the statistic's own scale, whatever the model. A bin is the set of
// float64 values that share sign, exponent and the top MANTISSA_BITS bits of
// the mantissa, so its width is 2^-14 (6·10^-5) of the values in it: a
// statistic spanning 0.138–0.171 gets ~3600 bins, logits in −20…+20 are
// resolved finely on both sides of 0, probabilities up to 1 − 6·10^-5 are
// told apart. Bins are a function of the value alone, so counts add: merging
// and folding jobs in any order give identical histograms (an incremental
// aggregation equals a from-scratch one exactly), and memory grows with the
// occupied bins, never with the number of jobs. Each bin also keeps the
// smallest value it has seen, which makes n(x) exact at every bin's minimum
// and an upper bound (never an under-count) elsewhere.

/** Mantissa bits that name a bin: relative bin width 2^-MANTISSA_BITS. */
export const MANTISSA_BITS = 14;
const SCALE = 2 ** MANTISSA_BITS;
const SHIFT = 20 - MANTISSA_BITS; // the high word holds the top 20 mantissa bits
/** |x| below this shares the bin of 0 (no statistic lives there; keeps subnormals out) */
const TINY = 2 ** -1000;
const MAX_MAG = 2048 * SCALE; // above every magnitude key, Infinity included
const ZERO = MAX_MAG + 1;

const f64 = new Float64Array(1);
const hiWord = new Uint32Array(f64.buffer, 4, 1); // little-endian: the sign, exponent and top mantissa bits

/** Monotone key of |x| (x ≥ TINY, or Infinity): biased exponent, then the top mantissa bits. */
function magnitudeKey(a: number): number {
  f64[0] = a;
  const hi = hiWord[0];
  return ((hi >>> 20) & 0x7ff) * SCALE + ((hi & 0xfffff) >>> SHIFT);
}

/** The bin of x: non-decreasing in x (NaN has none). */
export function binKey(x: number): number {
  if (x >= TINY) return ZERO + 1 + magnitudeKey(x);
  if (x <= -TINY) return ZERO - 1 - magnitudeKey(-x);
  return ZERO;
}

export interface BinColumns {
  key: Float64Array;
  count: Float64Array;
  min: Float64Array;
}

interface Block {
  count: Float64Array;
  min: Float64Array;
}

/**
 * Bins are kept in blocks of 2^MANTISSA_BITS (one sign and exponent each,
 * 256 KiB, made when first touched): adding a value is a few array
 * operations, not a hash lookup per event.
 */
export class StatisticHistogram {
  readonly #blocks = new Map<number, Block>();
  #lastId = NaN;
  #last: Block | undefined;
  // cache for queries: occupied keys loudest first, and the counts at or above each
  #keys: Float64Array | null = null;
  #above: Float64Array | null = null;
  #mins: Float64Array | null = null;

  #block(id: number): Block {
    if (id === this.#lastId) return this.#last!;
    let b = this.#blocks.get(id);
    if (!b) {
      b = { count: new Float64Array(SCALE), min: new Float64Array(SCALE).fill(Infinity) };
      this.#blocks.set(id, b);
    }
    this.#lastId = id;
    this.#last = b;
    return b;
  }

  /** Occupied bins. */
  get bins(): number {
    return this.#index().keys.length;
  }

  add(x: number, count = 1, min = x): void {
    const k = binKey(x);
    const b = this.#block(Math.floor(k / SCALE));
    const i = k % SCALE;
    b.count[i] += count;
    if (min < b.min[i]) b.min[i] = min;
    this.#keys = null;
  }

  addAll(other: StatisticHistogram): void {
    for (const [id, ob] of other.#blocks) {
      const b = this.#block(id);
      for (let i = 0; i < SCALE; i++) {
        if (ob.count[i] === 0) continue;
        b.count[i] += ob.count[i];
        if (ob.min[i] < b.min[i]) b.min[i] = ob.min[i];
      }
    }
    this.#keys = null;
  }

  #index(): { keys: Float64Array; above: Float64Array; mins: Float64Array } {
    if (!this.#keys || !this.#above || !this.#mins) {
      const ids = [...this.#blocks.keys()].sort((a, b) => b - a);
      const keys: number[] = [];
      const above: number[] = [];
      const mins: number[] = [];
      let n = 0;
      for (const id of ids) {
        const b = this.#blocks.get(id)!;
        for (let i = SCALE - 1; i >= 0; i--) {
          if (b.count[i] === 0) continue;
          keys.push(id * SCALE + i);
          above.push((n += b.count[i]));
          mins.push(b.min[i]);
        }
      }
      this.#keys = Float64Array.from(keys);
      this.#above = Float64Array.from(above);
      this.#mins = Float64Array.from(mins);
    }
    return { keys: this.#keys, above: this.#above!, mins: this.#mins! };
  }

  /** Values ≥ x: exact when x is at or below its bin's smallest value, else an upper bound. */
  countAtLeast(x: number): { n: number; exact: boolean } {
    const { keys, above, mins } = this.#index();
    const k = binKey(x);
    // first index (loudest first) whose key is below k
    let lo = 0;
    let hi = keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (keys[mid] >= k) lo = mid + 1;
      else hi = mid;
    }
    const n = lo > 0 ? above[lo - 1] : 0;
    const inBin = lo > 0 && keys[lo - 1] === k;
    return { n, exact: !inBin || x <= mins[lo - 1] };
  }

  /** (smallest value of the bin, values at or above it), loudest bin first: exact points of n(x). */
  points(): Array<{ x: number; n: number }> {
    const { above, mins } = this.#index();
    return Array.from(mins, (x, i) => ({ x, n: above[i] }));
  }

  toColumns(): BinColumns {
    const { keys, above, mins } = this.#index();
    const m = keys.length;
    const c: BinColumns = { key: new Float64Array(m), count: new Float64Array(m), min: new Float64Array(m) };
    // ascending keys
    for (let j = 0; j < m; j++) {
      const i = m - 1 - j;
      c.key[j] = keys[i];
      c.count[j] = above[i] - (i > 0 ? above[i - 1] : 0);
      c.min[j] = mins[i];
    }
    return c;
  }

  /** Rebuild from toColumns' output; `where` names the source in errors. */
  static fromColumns(c: { key: ArrayLike<number>; count: ArrayLike<number>; min: ArrayLike<number> }, where: string): StatisticHistogram {
    const h = new StatisticHistogram();
    if (c.key.length !== c.count.length || c.key.length !== c.min.length) throw new Error(`${where}: key, count and min must have one value per bin`);
    for (let i = 0; i < c.key.length; i++) {
      const m = c.min[i];
      if (!(c.count[i] >= 0) || Number.isNaN(m) || binKey(m) !== c.key[i])
        throw new Error(`${where}: bin ${i}: key ${c.key[i]} does not hold its minimum ${m} (written with other bins?), or its count ${c.count[i]} is negative`);
      h.add(m, c.count[i], m);
    }
    return h;
  }
}
