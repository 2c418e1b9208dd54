// Hierarchical removal, the data side (DESIGN.md "Real signals in the
// background"): the background events and livetime near a zero-lag
// candidate's time t_c, read from the job result files (only the jobs whose
// data can hold that time, and only their shifts' event slices).
//
// An event of shift δ at (reference) time t is removed when
// |t + δ_i − t_c| < w for some detector i. Livetime: the job's output sample
// grid (/grid: first stamp, count, rate, vetoed samples) gives every sample j
// the time t_j = first + j / rate − event_time_offset that an event there
// would have (the same arithmetic as the worker's event times, so a sample
// and an event at it always agree); the samples meeting the same condition,
// produced (not vetoed) and not taken by an earlier removal, are removed,
// shift by shift. Circular slides: detector i's data wrap within the ring
// [a, b) with period R (b − a in whole samples of the analysis rate:
// /grid ring_period), so its stream holds t_c at every t_c + mR: the
// condition is |t + δ_i − (t_c + mR)| < w for some m when t_c is in the ring.
import type { Logger } from "pino";
import type { JobPayload } from "@timeslide/campaign";
import { JobFileReader, producedSamples, type GridRow, type RemovalTake } from "@timeslide/stats";

export interface RemovalJob {
  job_id: string;
  path: string;
  /** the job's livetime as recorded (checked against its grid) */
  livetime: number;
  /** the planned payload (segment, span) when the plan can be rebuilt: only jobs near t_c are opened */
  payload?: JobPayload;
  /**
   * non-circular jobs with a known payload: per detector, the own-time range
   * [span start + min δ_i, span end + max δ_i] its data come from (the span
   * holds every output time), so a job none of whose detectors read near t_c is not opened
   */
  ownTimes?: Array<[number, number]>;
}

export interface RemovalDetail extends RemovalTake {
  /** removed samples by shift-table index (livetime removed = samples / rate) */
  samples_by_shift: Map<number, number>;
  /** job files opened for this removal */
  files_read: number;
}

export class BackgroundRemover {
  /** per job and grid row: removed sample ranges (sorted, disjoint) */
  readonly #takenSamples = new Map<string, Array<[number, number]>>();
  /** per job: /events rows removed */
  readonly #takenEvents = new Map<string, Set<number>>();

  constructor(
    private readonly jobs: readonly RemovalJob[],
    /** w (s) */
    private readonly window: number,
    /** s an event's time lies before its sample's stamp (kernel/2 + integration window/2): for choosing jobs only */
    private readonly eventTimeOffset: number,
    private readonly log?: Logger,
  ) {}

  /** Could this job's data hold a time within w of t_c? (conservative; the grid decides exactly) */
  #mayHold(j: RemovalJob, tc: number): boolean {
    if (!j.payload) return true;
    const [s, e] = j.payload.segment;
    const margin = this.window + this.eventTimeOffset + 1;
    // Every detector's data is read inside the segment, so an event's own time lies in [s − offset, e).
    if (!(tc > s - margin && tc < e + margin)) return false;
    return !j.ownTimes || j.ownTimes.some(([a, b]) => tc > a - margin && tc < b + margin);
  }

  async remove(tc: number): Promise<RemovalDetail> {
    const w = this.window;
    const statistics: number[] = [];
    const samplesByShift = new Map<number, number>();
    let samples = 0;
    let rate = 0;
    let filesRead = 0;
    for (const job of this.jobs) {
      if (!this.#mayHold(job, tc)) continue;
      const r = await JobFileReader.open(job.path);
      filesRead++;
      try {
        const grid = r.grid();
        if (!grid)
          throw new Error(
            `${job.path}: no /grid (the job's output sample grid): written by a worker older than hierarchical removal; run the job again or set significance.hierarchical_removal: 0`,
          );
        const isr = grid.inferenceSamplingRate;
        if (rate && rate !== isr) throw new Error(`${job.path}: /grid inference_sampling_rate ${isr} differs from other jobs' ${rate}`);
        rate = isr;
        const produced = grid.rows.reduce((a, row) => a + producedSamples(row), 0);
        if (Math.abs(produced / isr - job.livetime) > 0.5 / isr)
          throw new Error(`${job.path}: /grid holds ${produced / isr} s of produced samples but the job's livetime is ${job.livetime} s`);
        const off = grid.eventTimeOffset;
        const ring = grid.ring ? { bounds: grid.ring, period: grid.ringPeriod ?? grid.ring[1] - grid.ring[0] } : undefined;
        const takenEvents = this.#takenEvents.get(job.job_id) ?? new Set<number>();
        this.#takenEvents.set(job.job_id, takenEvents);
        for (const [ri, row] of grid.rows.entries()) {
          if (row.count <= 0) continue;
          const images = row.shift.map((d) => imagesOf(tc, ring, row.first - off + d, row.first + (row.count - 1) / isr - off + d, w));
          const removedHere = (t: number) => row.shift.some((d, i) => images[i].some((u) => Math.abs(t + d - u) < w));
          // samples: candidates near each image, each checked with the exact condition
          const js = new Set<number>();
          for (const [i, d] of row.shift.entries())
            for (const u of images[i]) {
              const j0 = Math.max(0, Math.floor((u - d - w + off - row.first) * isr) - 1);
              const j1 = Math.min(row.count - 1, Math.ceil((u - d + w + off - row.first) * isr) + 1);
              for (let j = j0; j <= j1; j++) if (removedHere(row.first + j / isr - off)) js.add(j);
            }
          if (js.size) {
            const key = `${job.job_id}#${ri}`;
            const before = this.#takenSamples.get(key) ?? [];
            const fresh = [...js].filter((j) => !inRanges(row.vetoed, j) && !inRanges(before, j)).sort((a, b) => a - b);
            if (fresh.length) {
              this.#takenSamples.set(key, mergeIndices(before, fresh));
              samples += fresh.length;
              samplesByShift.set(row.shiftIndex, (samplesByShift.get(row.shiftIndex) ?? 0) + fresh.length);
            }
          }
          // events of this shift: its slice of /events, in time order
          if (row.eventCount > 0) {
            const times = r.column("time", row.eventStart, row.eventStart + row.eventCount);
            const hit: number[] = [];
            for (let e = 0; e < times.length; e++) if (removedHere(times[e]) && !takenEvents.has(row.eventStart + e)) hit.push(e);
            if (hit.length) {
              const st = r.column("detection_statistic", row.eventStart + hit[0], row.eventStart + hit[hit.length - 1] + 1);
              for (const e of hit) {
                statistics.push(st[e - hit[0]]);
                takenEvents.add(row.eventStart + e);
              }
            }
          }
        }
      } finally {
        r.close();
      }
    }
    const livetime_s = rate ? samples / rate : 0;
    this.log?.info({ t_c: tc, window: w, events_removed: statistics.length, livetime_removed_s: livetime_s, files_read: filesRead }, "hierarchical removal");
    return { statistics, livetime_s, samples_by_shift: samplesByShift, files_read: filesRead };
  }
}

/**
 * Where detector i's stream holds t_c, in unwrapped own time: t_c itself, or
 * on a circular ring holding t_c, every t_c + mR within w of the row's own
 * times [lo, hi].
 */
function imagesOf(tc: number, ring: { bounds: [number, number]; period: number } | undefined, lo: number, hi: number, w: number): number[] {
  if (!ring || !(tc >= ring.bounds[0] && tc < ring.bounds[1])) return [tc];
  const R = ring.period;
  const out: number[] = [];
  for (let m = Math.ceil((lo - w - tc) / R) - 1; m <= Math.floor((hi + w - tc) / R) + 1; m++) out.push(tc + m * R);
  return out;
}

function inRanges(ranges: ReadonlyArray<readonly [number, number]>, j: number): boolean {
  for (const [a, b] of ranges) if (j >= a && j < b) return true;
  return false;
}

function mergeIndices(ranges: Array<[number, number]>, sorted: number[]): Array<[number, number]> {
  const all: Array<[number, number]> = [...ranges, ...sorted.map((j) => [j, j + 1] as [number, number])].sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [];
  for (const r of all) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export type { GridRow };
