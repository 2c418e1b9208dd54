// Bounded-memory, mergeable summary of a background event set:
//  - the loudest `capacity` events, kept exactly (time, statistic, shift, job);
//  - a fixed-width histogram of every event for the bulk;
//  - per job: livetime, event count and its own histogram, so that a job seen
//    twice (in one summary or across merged summaries) is counted once.
// n(x) is exact for every x above `exactAbove` (the loudest statistic ever
// dropped from the kept set); below it the histogram gives an upper bound.

import { countAtLeastSorted, farCurveSorted, significance, JULIAN_YEAR_S, type FarPoint, type Significance } from "./far.js";

export const DEFAULT_CAPACITY = 10_000;
export const DEFAULT_BIN_WIDTH = 0.05;

export interface SummaryOptions {
  /** number of ifos (columns of the shift vector) */
  nIfo: number;
  /** loudest events kept exactly; see `chooseCapacity` */
  capacity?: number;
  /** histogram bin width in detection-statistic units */
  binWidth?: number;
}

/** One job's background events (columns, shift row-major [n, nIfo]). */
export interface JobEvents {
  livetime: number;
  detection_statistic: ArrayLike<number>;
  time: ArrayLike<number>;
  shift: ArrayLike<number>;
}

interface JobEntry {
  livetime: number;
  events: number;
  histOffset: number;
  hist: Uint32Array | null; // null when loaded from a file without per-job histograms
}

/**
 * Capacity that keeps every candidate's n(x) exact wherever its p-value is
 * below 1 − e^−20: a candidate quieter than the K-th loudest has
 * T_fg·(n+1)/T_bg ≥ T_fg·K/T_bg ≥ 20. Never fewer than `min` events.
 */
export function chooseCapacity(backgroundLivetime: number, foregroundLivetime: number, min = DEFAULT_CAPACITY): number {
  if (!(foregroundLivetime > 0) || !(backgroundLivetime > 0)) return min;
  return Math.max(min, Math.ceil((20 * backgroundLivetime) / foregroundLivetime));
}

export class BackgroundSummary {
  readonly nIfo: number;
  readonly capacity: number;
  readonly binWidth: number;
  private jobs = new Map<string, JobEntry>();
  private jobNames: string[] = [];
  private jobIndex = new Map<string, number>();
  // kept events: a buffer of up to 2·capacity, compacted to `capacity`
  private n = 0;
  private stat: Float64Array;
  private time: Float64Array;
  private shift: Float64Array;
  private job: Int32Array;
  private sorted = true;
  private cutoff = -Infinity; // values <= cutoff are dropped on arrival
  private dropped = -Infinity; // loudest value ever dropped
  private histOffset = 0;
  private hist = new Float64Array(0);
  private totalEvents = 0;
  private totalLivetime = 0;

  constructor(opts: SummaryOptions) {
    if (!Number.isInteger(opts.nIfo) || opts.nIfo < 1) throw new Error(`BackgroundSummary: nIfo must be a positive integer, got ${opts.nIfo}`);
    this.nIfo = opts.nIfo;
    this.capacity = opts.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new Error(`BackgroundSummary: capacity must be a positive integer, got ${this.capacity}`);
    this.binWidth = opts.binWidth ?? DEFAULT_BIN_WIDTH;
    if (!(this.binWidth > 0)) throw new Error(`BackgroundSummary: binWidth must be > 0, got ${this.binWidth}`);
    const cap = 2 * this.capacity;
    this.stat = new Float64Array(cap);
    this.time = new Float64Array(cap);
    this.shift = new Float64Array(cap * this.nIfo);
    this.job = new Int32Array(cap);
  }

  /** Background livetime T_bg: the sum over distinct jobs (s). */
  get livetime(): number {
    return this.totalLivetime;
  }
  /** Number of background events over distinct jobs. */
  get events(): number {
    return this.totalEvents;
  }
  get jobCount(): number {
    return this.jobs.size;
  }
  hasJob(id: string): boolean {
    return this.jobs.has(id);
  }
  jobIds(): string[] {
    return [...this.jobs.keys()];
  }
  jobLivetime(id: string): number | undefined {
    return this.jobs.get(id)?.livetime;
  }
  /** n(x) is exact for x strictly above this value (−Infinity: exact everywhere). */
  get exactAbove(): number {
    return this.dropped;
  }

  /** Bin b holds [b·w, (b+1)·w) with the edges as computed in float64, so n at an edge is exact. */
  private bin(x: number): number {
    const w = this.binWidth;
    let b = Math.floor(x / w);
    if (x < b * w) b--;
    else if (x >= (b + 1) * w) b++;
    return b;
  }

  private nameIndex(id: string): number {
    let k = this.jobIndex.get(id);
    if (k === undefined) {
      k = this.jobNames.length;
      this.jobNames.push(id);
      this.jobIndex.set(id, k);
    }
    return k;
  }

  private addHist(offset: number, counts: ArrayLike<number>, sign: 1 | -1): void {
    if (counts.length === 0) return;
    if (this.hist.length === 0) {
      this.hist = new Float64Array(counts.length);
      this.histOffset = offset;
    }
    const lo = Math.min(offset, this.histOffset);
    const hi = Math.max(offset + counts.length, this.histOffset + this.hist.length);
    if (lo !== this.histOffset || hi - lo !== this.hist.length) {
      const grown = new Float64Array(hi - lo);
      grown.set(this.hist, this.histOffset - lo);
      this.hist = grown;
      this.histOffset = lo;
    }
    const base = offset - this.histOffset;
    for (let i = 0; i < counts.length; i++) this.hist[base + i] += sign * counts[i];
  }

  private push(stat: number, time: number, shift: ArrayLike<number>, shiftAt: number, job: number): void {
    if (stat <= this.cutoff || Number.isNaN(stat)) {
      if (stat > this.dropped) this.dropped = stat;
      return;
    }
    if (this.n === this.stat.length) this.compact();
    if (stat <= this.cutoff) {
      if (stat > this.dropped) this.dropped = stat;
      return;
    }
    const k = this.n++;
    this.stat[k] = stat;
    this.time[k] = time;
    for (let j = 0; j < this.nIfo; j++) this.shift[k * this.nIfo + j] = shift[shiftAt + j];
    this.job[k] = job;
    this.sorted = false;
  }

  /** Sort the kept events (loudest first, then earliest) and drop all but `capacity`. */
  private compact(): void {
    if (this.sorted && this.n <= this.capacity) return;
    const n = this.n;
    const order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
    const s = this.stat;
    const t = this.time;
    order.sort((a, b) => s[b] - s[a] || t[a] - t[b] || a - b);
    const keep = Math.min(n, this.capacity);
    for (let i = keep; i < n; i++) if (s[order[i]] > this.dropped) this.dropped = s[order[i]];
    const stat = new Float64Array(this.stat.length);
    const time = new Float64Array(this.time.length);
    const shift = new Float64Array(this.shift.length);
    const job = new Int32Array(this.job.length);
    for (let i = 0; i < keep; i++) {
      const o = order[i];
      stat[i] = s[o];
      time[i] = t[o];
      job[i] = this.job[o];
      for (let j = 0; j < this.nIfo; j++) shift[i * this.nIfo + j] = this.shift[o * this.nIfo + j];
    }
    this.stat = stat;
    this.time = time;
    this.shift = shift;
    this.job = job;
    this.n = keep;
    this.sorted = true;
    // once full, anything not louder than the quietest kept event can't get in
    if (keep === this.capacity) this.cutoff = Math.max(this.cutoff, stat[keep - 1], this.dropped);
  }

  /**
   * Add one job's events. Returns false (and changes nothing) when the job was
   * already counted: a result written twice counts once.
   */
  addJob(jobId: string, ev: JobEvents): boolean {
    if (this.jobs.has(jobId)) return false;
    const m = ev.detection_statistic.length;
    if (ev.time.length !== m || ev.shift.length !== m * this.nIfo) {
      throw new Error(`job ${jobId}: expected time [${m}] and shift [${m}, ${this.nIfo}], got time [${ev.time.length}] and shift of ${ev.shift.length} values`);
    }
    if (!(ev.livetime >= 0)) throw new Error(`job ${jobId}: livetime must be >= 0, got ${ev.livetime}`);
    // the job's own histogram (dense between its quietest and loudest bin)
    let lo = Infinity;
    let hi = -Infinity;
    const st = ev.detection_statistic;
    for (let i = 0; i < m; i++) {
      const x = st[i];
      if (Number.isNaN(x)) throw new Error(`job ${jobId}: detection_statistic[${i}] is NaN`);
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    let offset = 0;
    let hist = new Uint32Array(0);
    if (m > 0) {
      offset = this.bin(lo);
      hist = new Uint32Array(this.bin(hi) - offset + 1);
      for (let i = 0; i < m; i++) hist[this.bin(st[i]) - offset]++;
    }
    this.jobs.set(jobId, { livetime: ev.livetime, events: m, histOffset: offset, hist });
    this.addHist(offset, hist, 1);
    this.totalEvents += m;
    this.totalLivetime += ev.livetime;
    const k = this.nameIndex(jobId);
    for (let i = 0; i < m; i++) this.push(st[i], ev.time[i], ev.shift, i * this.nIfo, k);
    return true;
  }

  /**
   * Merge another summary into this one (associative and commutative in
   * every exact quantity). Jobs present in both are counted once: the other
   * summary's copy of such a job (kept events and histogram) is skipped.
   */
  merge(other: BackgroundSummary): this {
    if (other.nIfo !== this.nIfo || other.binWidth !== this.binWidth) {
      throw new Error(`merge: summaries differ (nIfo ${this.nIfo} vs ${other.nIfo}, binWidth ${this.binWidth} vs ${other.binWidth})`);
    }
    other.compact();
    const skip = new Set<number>();
    const remap = new Int32Array(other.jobNames.length);
    for (let k = 0; k < other.jobNames.length; k++) {
      const id = other.jobNames[k];
      const entry = other.jobs.get(id);
      if (!entry) continue;
      if (this.jobs.has(id)) {
        skip.add(k);
        continue;
      }
      if (!entry.hist) throw new Error(`merge: job ${id} has no histogram (summary read from a file), cannot merge`);
      this.jobs.set(id, { ...entry });
      this.addHist(entry.histOffset, entry.hist, 1);
      this.totalEvents += entry.events;
      this.totalLivetime += entry.livetime;
      remap[k] = this.nameIndex(id);
    }
    for (let i = 0; i < other.n; i++) {
      if (skip.has(other.job[i])) continue;
      this.push(other.stat[i], other.time[i], other.shift, i * this.nIfo, remap[other.job[i]]);
    }
    // the other summary's dropped events stay dropped
    if (other.dropped > this.dropped) this.dropped = other.dropped;
    if (other.dropped > this.cutoff) this.cutoff = other.dropped;
    this.compact();
    return this;
  }

  /** n(x): background events with statistic >= x; exact above `exactAbove`, else a histogram upper bound. */
  countAtLeast(x: number): { n: number; exact: boolean } {
    this.compact();
    if (x > this.dropped) return { n: countAtLeastSorted(this.stat.subarray(0, this.n), x), exact: true };
    // every event in x's bin counted as louder: never under-counts, so FAR stays conservative
    const b = Math.max(this.bin(x) - this.histOffset, 0);
    let n = 0;
    for (let i = b; i < this.hist.length; i++) n += this.hist[i];
    return { n, exact: false };
  }

  /** Significance of a candidate with statistic x given the foreground livetime T_fg (s). */
  significance(x: number, foregroundLivetime: number): Significance {
    const { n, exact } = this.countAtLeast(x);
    return significance(n, this.totalLivetime, foregroundLivetime, exact);
  }

  /** The kept loudest events, loudest first (copies). */
  loudest(): { detection_statistic: Float64Array; time: Float64Array; shift: Float64Array; job_id: string[] } {
    this.compact();
    const job_id: string[] = [];
    for (let i = 0; i < this.n; i++) job_id.push(this.jobNames[this.job[i]]);
    return {
      detection_statistic: this.stat.slice(0, this.n),
      time: this.time.slice(0, this.n),
      shift: this.shift.slice(0, this.n * this.nIfo),
      job_id,
    };
  }

  /** Histogram of every event: counts[i] covers [(offset+i)·w, (offset+i+1)·w). */
  histogram(): { binWidth: number; offset: number; counts: Float64Array } {
    return { binWidth: this.binWidth, offset: this.histOffset, counts: this.hist.slice() };
  }

  /**
   * Background FAR curve: one point per distinct kept statistic in the exact
   * region, then at histogram bin lower edges below it (n at a bin edge is
   * exact: it is the count of whole bins above).
   */
  farCurve(): FarPoint[] {
    this.compact();
    const T = this.totalLivetime;
    const kept = this.stat.subarray(0, this.n);
    const curve = farCurveSorted(kept, T).filter((p) => p.detection_statistic > this.dropped);
    if (this.dropped === -Infinity) return curve;
    let n = 0;
    const edgeBin = this.bin(this.dropped); // first edge at or below every inexact point
    for (let i = this.hist.length - 1; i >= 0; i--) {
      n += this.hist[i];
      const b = this.histOffset + i;
      if (b > edgeBin || this.hist[i] === 0) continue;
      curve.push({ detection_statistic: b * this.binWidth, far_per_year: (n * JULIAN_YEAR_S) / T });
    }
    return curve;
  }

  /** Rebuild from saved parts (background.h5): per-job histograms are not kept in files. */
  static fromParts(p: {
    nIfo: number;
    capacity: number;
    binWidth: number;
    exactAbove: number;
    jobs: { job_id: string; livetime: number; events: number }[];
    loudest: { detection_statistic: ArrayLike<number>; time: ArrayLike<number>; shift: ArrayLike<number>; job_id: string[] };
    histogram: { offset: number; counts: ArrayLike<number> };
  }): BackgroundSummary {
    const s = new BackgroundSummary({ nIfo: p.nIfo, capacity: Math.max(p.capacity, p.loudest.detection_statistic.length, 1), binWidth: p.binWidth });
    for (const j of p.jobs) {
      s.jobs.set(j.job_id, { livetime: j.livetime, events: j.events, histOffset: 0, hist: null });
      s.nameIndex(j.job_id);
      s.totalEvents += j.events;
      s.totalLivetime += j.livetime;
    }
    s.addHist(p.histogram.offset, p.histogram.counts, 1);
    s.dropped = p.exactAbove;
    s.cutoff = p.exactAbove;
    const L = p.loudest;
    for (let i = 0; i < L.detection_statistic.length; i++) s.push(L.detection_statistic[i], L.time[i], L.shift, i * p.nIfo, s.nameIndex(L.job_id[i] ?? ""));
    s.compact();
    return s;
  }
}
