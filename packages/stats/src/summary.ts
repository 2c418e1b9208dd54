// Bounded-memory, mergeable summary of a background event set:
//  - the loudest `capacity` events, kept exactly (time, statistic, shift, job);
//  - a histogram of every event whose bins follow the statistic's scale
//    (bins.ts: 2^-14 relative width, each bin's smallest value kept);
//  - per job: its id, livetime and event count, so a job is counted once.
// n(x) is exact for every x above `exactAbove` (the loudest statistic ever
// dropped from the kept set) and at every bin's smallest value below it;
// elsewhere below it the histogram gives an upper bound (never an
// under-count: FAR stays conservative). Counts add, so the result does not
// depend on the order jobs are folded in.

import { StatisticHistogram, type BinColumns } from "./bins.js";
import { countAtLeastSorted, farCurveSorted, significance, JULIAN_YEAR_S, type FarPoint, type Significance } from "./far.js";

export const DEFAULT_CAPACITY = 10_000;

export interface SummaryOptions {
  /** number of ifos (columns of the shift vector) */
  nIfo: number;
  /** loudest events kept exactly; see `chooseCapacity` */
  capacity?: number;
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
  private hist = new StatisticHistogram();
  private totalEvents = 0;
  private totalLivetime = 0;

  constructor(opts: SummaryOptions) {
    if (!Number.isInteger(opts.nIfo) || opts.nIfo < 1) throw new Error(`BackgroundSummary: nIfo must be a positive integer, got ${opts.nIfo}`);
    this.nIfo = opts.nIfo;
    this.capacity = opts.capacity ?? DEFAULT_CAPACITY;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new Error(`BackgroundSummary: capacity must be a positive integer, got ${this.capacity}`);
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
    this.compact(); // events beyond capacity are dropped (and `dropped` raised) only here
    return this.dropped;
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
    const st = ev.detection_statistic;
    for (let i = 0; i < m; i++) {
      if (Number.isNaN(st[i])) throw new Error(`job ${jobId}: detection_statistic[${i}] is NaN`);
    }
    for (let i = 0; i < m; i++) this.hist.add(st[i]);
    this.jobs.set(jobId, { livetime: ev.livetime, events: m });
    this.totalEvents += m;
    this.totalLivetime += ev.livetime;
    const k = this.nameIndex(jobId);
    for (let i = 0; i < m; i++) this.push(st[i], ev.time[i], ev.shift, i * this.nIfo, k);
    return true;
  }

  /**
   * Merge another summary of other jobs into this one (associative and
   * commutative in every exact quantity). A job in both would be counted
   * twice (the bulk keeps no per-job record), so it is refused, named.
   */
  merge(other: BackgroundSummary): this {
    if (other.nIfo !== this.nIfo) throw new Error(`merge: summaries differ (nIfo ${this.nIfo} vs ${other.nIfo})`);
    for (const id of other.jobs.keys())
      if (this.jobs.has(id)) throw new Error(`merge: job ${id} is in both summaries: merge summaries of disjoint jobs (addJob skips a job already counted)`);
    other.compact();
    const remap = new Int32Array(other.jobNames.length);
    for (let k = 0; k < other.jobNames.length; k++) remap[k] = this.nameIndex(other.jobNames[k]);
    for (const [id, entry] of other.jobs) {
      this.jobs.set(id, { ...entry });
      this.totalEvents += entry.events;
      this.totalLivetime += entry.livetime;
    }
    this.hist.addAll(other.hist);
    for (let i = 0; i < other.n; i++) this.push(other.stat[i], other.time[i], other.shift, i * this.nIfo, remap[other.job[i]]);
    // the other summary's dropped events stay dropped
    if (other.dropped > this.dropped) this.dropped = other.dropped;
    if (other.dropped > this.cutoff) this.cutoff = other.dropped;
    this.compact();
    return this;
  }

  /**
   * n(x): background events with statistic >= x. Exact above `exactAbove`
   * and at each bin's smallest value; elsewhere every event of x's bin is
   * counted as louder (an upper bound within 2^-14 of x).
   */
  countAtLeast(x: number): { n: number; exact: boolean } {
    this.compact();
    if (x > this.dropped) return { n: countAtLeastSorted(this.stat.subarray(0, this.n), x), exact: true };
    return this.hist.countAtLeast(x);
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

  /** The bulk: every event's bin (key, count, smallest value), for background.h5. */
  bulk(): BinColumns {
    return this.hist.toColumns();
  }

  /**
   * Background FAR curve: one point per distinct kept statistic in the exact
   * region, then one per histogram bin below it, at the bin's smallest value
   * (where n is exact).
   */
  farCurve(): FarPoint[] {
    this.compact();
    const T = this.totalLivetime;
    const kept = this.stat.subarray(0, this.n);
    const curve = farCurveSorted(kept, T).filter((p) => p.detection_statistic > this.dropped);
    if (this.dropped === -Infinity) return curve;
    for (const p of this.hist.points()) if (p.x <= this.dropped) curve.push({ detection_statistic: p.x, far_per_year: (p.n * JULIAN_YEAR_S) / T });
    return curve;
  }

  /** Rebuild from saved parts (background.h5). */
  static fromParts(p: {
    nIfo: number;
    capacity: number;
    exactAbove: number;
    jobs: { job_id: string; livetime: number; events: number }[];
    loudest: { detection_statistic: ArrayLike<number>; time: ArrayLike<number>; shift: ArrayLike<number>; job_id: string[] };
    bulk: StatisticHistogram;
  }): BackgroundSummary {
    const s = new BackgroundSummary({ nIfo: p.nIfo, capacity: Math.max(p.capacity, p.loudest.detection_statistic.length, 1) });
    for (const j of p.jobs) {
      s.jobs.set(j.job_id, { livetime: j.livetime, events: j.events });
      s.nameIndex(j.job_id);
      s.totalEvents += j.events;
      s.totalLivetime += j.livetime;
    }
    s.hist = p.bulk;
    s.dropped = p.exactAbove;
    s.cutoff = p.exactAbove;
    const L = p.loudest;
    for (let i = 0; i < L.detection_statistic.length; i++) s.push(L.detection_statistic[i], L.time[i], L.shift, i * p.nIfo, s.nameIndex(L.job_id[i] ?? ""));
    s.compact();
    return s;
  }
}
