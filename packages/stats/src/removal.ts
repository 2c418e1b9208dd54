// Hierarchical removal (DESIGN.md "Real signals in the background"): the
// arithmetic of inclusive and exclusive significance. Where the removed
// events and livetime come from (the job result files) is the caller's
// business: `remove(candidate)` says what one removal takes.
import { significance, type Significance } from "./far.js";

export interface RemovalCandidate {
  time: number;
  detection_statistic: number;
}

/** What removing the background around one zero-lag candidate takes (only what earlier removals had not taken). */
export interface RemovalTake {
  /** statistics of the background events removed (each event once over all removals) */
  statistics: ArrayLike<number>;
  /** background livetime removed (s), not counting what earlier removals or vetoes had already taken */
  livetime_s: number;
}

export interface RemovedEntry {
  /** index into the candidates given */
  candidate: number;
  time: number;
  detection_statistic: number;
  events_removed: number;
  livetime_removed_s: number;
}

export interface HierarchicalResult {
  /** per candidate (same order as given): significance against the whole background */
  inclusive: Significance[];
  /**
   * per candidate: significance against the background left after the
   * removals made before it (a removed candidate: the removals before its
   * own; any other: all of them)
   */
  exclusive: Significance[];
  /** the removals, in the order made */
  removed: RemovedEntry[];
  /** background livetime left after every removal (s) */
  backgroundLivetimeLeft: number;
}

export interface HierarchicalOptions {
  candidates: readonly RemovalCandidate[];
  /** n(x) of the whole background: events with statistic >= x (ties louder); `exact` false for an upper bound */
  countAtLeast(x: number): { n: number; exact: boolean };
  /** T_bg (s): the whole background livetime */
  backgroundLivetime: number;
  /** T_fg (s) */
  foregroundLivetime: number;
  /** N: at most this many removals */
  maxRemovals: number;
  /** the background events and livetime that removing around this candidate takes */
  remove(c: RemovalCandidate, index: number): RemovalTake | Promise<RemovalTake>;
}

/**
 * The removed events' statistics, kept exactly: r(x) = removed events with
 * statistic >= x (ties louder, as n(x)).
 */
export class RemovedStatistics {
  #sorted: Float64Array = new Float64Array(0); // descending
  add(stats: ArrayLike<number>): void {
    const all = new Float64Array(this.#sorted.length + stats.length);
    all.set(this.#sorted);
    for (let i = 0; i < stats.length; i++) all[this.#sorted.length + i] = stats[i];
    all.sort().reverse();
    this.#sorted = all;
  }
  get size(): number {
    return this.#sorted.length;
  }
  countAtLeast(x: number): number {
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#sorted[mid] >= x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/**
 * Exclusive significance: n(x) − r(x) background events at least as loud,
 * over T_bg − T_removed. `exact` as n(x)'s (r is exact, so an upper bound on
 * n stays one on n − r).
 */
export function exclusiveSignificance(
  x: number,
  n: { n: number; exact: boolean },
  removed: RemovedStatistics,
  backgroundLeft: number,
  foregroundLivetime: number,
): Significance {
  const r = removed.countAtLeast(x);
  if (r > n.n) throw new Error(`hierarchical removal: ${r} removed events at or above ${x} but the background counts only ${n.n} (the removed events must be background events)`);
  return significance(n.n - r, Math.max(0, backgroundLeft), foregroundLivetime, n.exact);
}

/**
 * DESIGN.md's hierarchical removal: while the loudest remaining zero-lag
 * candidate is louder than every remaining background event (saturated
 * against the background left), remove around it (`remove`) and go on with
 * the next loudest; at most `maxRemovals` times. Candidates are taken
 * loudest first (ties: earlier time first).
 */
export async function hierarchicalRemoval(o: HierarchicalOptions): Promise<HierarchicalResult> {
  const { candidates } = o;
  const tbg = o.backgroundLivetime;
  const tfg = o.foregroundLivetime;
  const counts = candidates.map((c) => o.countAtLeast(c.detection_statistic));
  const inclusive = candidates.map((c, i) => significance(counts[i].n, tbg, tfg, counts[i].exact));
  const exclusive: (Significance | undefined)[] = new Array(candidates.length);
  const order = candidates
    .map((_, i) => i)
    .sort((a, b) => candidates[b].detection_statistic - candidates[a].detection_statistic || candidates[a].time - candidates[b].time);
  const removedStats = new RemovedStatistics();
  const removed: RemovedEntry[] = [];
  let left = tbg;
  const maxRemovals = Math.max(0, Math.floor(o.maxRemovals));
  for (const i of order) {
    if (removed.length >= maxRemovals) break;
    const c = candidates[i];
    const sig = exclusiveSignificance(c.detection_statistic, counts[i], removedStats, left, tfg);
    if (!sig.saturated || !(left > 0)) break; // not louder than every remaining background event: stop
    exclusive[i] = sig; // against the removals made before it
    const take = await o.remove(c, i);
    if (!(take.livetime_s >= 0) || take.livetime_s > left + 1e-9)
      throw new Error(`hierarchical removal at ${c.time}: removed livetime ${take.livetime_s} s is not within the ${left} s of background left`);
    removedStats.add(take.statistics);
    left -= take.livetime_s;
    removed.push({ candidate: i, time: c.time, detection_statistic: c.detection_statistic, events_removed: take.statistics.length, livetime_removed_s: take.livetime_s });
  }
  for (let i = 0; i < candidates.length; i++) exclusive[i] ??= exclusiveSignificance(candidates[i].detection_statistic, counts[i], removedStats, left, tfg);
  return { inclusive, exclusive: exclusive as Significance[], removed, backgroundLivetimeLeft: left };
}
