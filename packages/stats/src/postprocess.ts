// Post-processing of a detection-statistic time series into events: the
// worker calls these per shift, after dropping the burn-in.

export type Series = Float32Array | Float64Array;

/** Number of samples in a window of `seconds` at `rate` Hz (at least 1). */
export function windowSamples(seconds: number, rate: number): number {
  if (!(seconds >= 0) || !(rate > 0)) throw new Error(`window: need seconds >= 0 and rate > 0, got ${seconds} s at ${rate} Hz`);
  return Math.max(1, Math.round(seconds * rate));
}

/**
 * Causal boxcar: y[i] is the mean of x over the last `width` samples ending at
 * i. The first width−1 outputs average the samples available so far, so the
 * start of a segment is not pulled towards zero by padding. Prefix sums in
 * float64 keep it O(n) and free of running-sum drift.
 */
export function integrate(x: Series, width: number): Float64Array {
  if (!Number.isInteger(width) || width < 1) throw new Error(`integrate: width must be a positive integer, got ${width}`);
  const n = x.length;
  const y = new Float64Array(n);
  const prefix = new Float64Array(n + 1);
  for (let i = 0; i < n; i++) prefix[i + 1] = prefix[i] + x[i];
  for (let i = 0; i < n; i++) {
    const lo = i + 1 - width > 0 ? i + 1 - width : 0;
    y[i] = (prefix[i + 1] - prefix[lo]) / (i + 1 - lo);
  }
  return y;
}

export interface Clusters {
  /** sample index of each event, increasing */
  index: Int32Array;
  /** the statistic at that sample */
  detection_statistic: Float64Array;
}

/**
 * Clustering: sample i is an event when it is the maximum of the window
 * [i − half, i + half] (half = floor(width / 2)); among equal values the
 * earliest wins, so a plateau gives one event. NaN never wins. O(n) with a
 * monotone deque of candidate indices.
 */
export function cluster(x: Series, width: number): Clusters {
  if (!Number.isInteger(width) || width < 1) throw new Error(`cluster: width must be a positive integer, got ${width}`);
  const n = x.length;
  const half = Math.floor(width / 2);
  const v = (i: number) => (Number.isNaN(x[i]) ? -Infinity : x[i]);
  const dq = new Int32Array(n);
  let head = 0;
  let tail = 0;
  const out: number[] = [];
  let next = 0; // next sample to push into the window
  for (let i = 0; i < n; i++) {
    const hi = Math.min(n - 1, i + half);
    while (next <= hi) {
      const val = v(next);
      // keep earlier indices on ties: pop only strictly smaller values
      while (tail > head && v(dq[tail - 1]) < val) tail--;
      dq[tail++] = next++;
    }
    while (dq[head] < i - half) head++;
    if (dq[head] === i && !Number.isNaN(x[i])) out.push(i);
  }
  const index = Int32Array.from(out);
  const detection_statistic = new Float64Array(index.length);
  for (let k = 0; k < index.length; k++) detection_statistic[k] = x[index[k]];
  return { index, detection_statistic };
}
