import {
  Segment,
  SegmentList,
  chooseShifts,
  JULIAN_YEAR,
  livetimeSamples,
  countRanges,
  vetoedSamples,
  maxLightTravelTime,
  shiftVector,
  type LivetimeOptions,
} from "@timeslide/segments";
import { segmentEdge } from "@timeslide/strain";
import { CampaignError, type LoadedCampaign } from "./load.js";
import type { CampaignSpec } from "./schema.js";
import type { DataInventory } from "./inventory.js";
import { jobId, toRanges, type JobKind, type JobPayload } from "./jobs.js";

export interface PlannedJob {
  id: string;
  payload: JobPayload;
}

export interface Plan {
  campaign: string;
  ifos: string[];
  /** analysable segments (coincident good time, at least min_duration long) */
  segments: Segment[];
  /** coincident segments skipped for being shorter than min_duration */
  skipped: Segment[];
  /** the shift table: index 0 is zero lag, 1..N the background slides */
  shiftTable: number[][];
  /** s lost at each segment's end (DESIGN.md "Livetime"): fduration/2 + the resampler's half-support */
  edge: number;
  /** background.vetoes, coalesced (GPS) */
  vetoes?: SegmentList;
  jobs: PlannedJob[];
  counts: Record<JobKind, number>;
  /** background_s after vetoes; vetoed_s: background livetime the vetoes removed */
  livetime: { background_s: number; foreground_s: number; injection_s: number; vetoed_s: number };
  injections?: { total: number; in_analysed_time: number; outside: number };
  /** the data files of each detector (absolute paths, by start time): what workers open */
  files: Record<string, string[]>;
  warnings: string[];
}

/** The JSON contract of `timeslide plan --json` (DESIGN.md), plus a few extras. */
export function planSummary(plan: Plan) {
  return {
    campaign: plan.campaign,
    ifos: plan.ifos,
    segments: plan.segments.map((s) => [s.start, s.end] as [number, number]),
    skipped_segments: plan.skipped.map((s) => [s.start, s.end] as [number, number]),
    shifts: plan.shiftTable.slice(1),
    edge_s: plan.edge,
    ...(plan.vetoes ? { vetoes: plan.vetoes.segments.map((s) => [s.start, s.end] as [number, number]) } : {}),
    jobs: { ...plan.counts, total: plan.jobs.length },
    livetime: {
      background_s: plan.livetime.background_s,
      background_years: plan.livetime.background_s / JULIAN_YEAR,
      foreground_s: plan.livetime.foreground_s,
      injection_s: plan.livetime.injection_s,
      vetoed_s: plan.livetime.vetoed_s,
    },
    ...(plan.injections ? { injections: plan.injections } : {}),
    warnings: plan.warnings,
  };
}
export type PlanSummary = ReturnType<typeof planSummary>;

/**
 * The segment-end edge (s) for a campaign's data: the largest over its
 * detectors, each resampled from its files' rate to the analysis rate.
 */
export function campaignEdge(spec: CampaignSpec, fileRates: Readonly<Record<string, number>>): number {
  let edge = spec.inference.fduration / 2;
  for (const ifo of spec.ifos) {
    const rate = fileRates[ifo];
    if (rate !== undefined) edge = Math.max(edge, segmentEdge(rate, spec.data.sample_rate, spec.inference.fduration));
  }
  return edge;
}

export function livetimeOptions(c: LoadedCampaign, edge: number): LivetimeOptions {
  return livetimeOptionsOf(c.spec, edge);
}

export function livetimeOptionsOf(spec: CampaignSpec, edge: number): LivetimeOptions {
  return {
    edge,
    psdLength: spec.inference.psd_length,
    inferenceSamplingRate: spec.inference.inference_sampling_rate,
    circular: spec.background.circular,
    minSeparation: maxLightTravelTime(spec.ifos).seconds,
  };
}

/** Coincident good time of every detector, split into kept and too-short segments. */
export function analysableSegments(c: LoadedCampaign, inv: DataInventory): { segments: Segment[]; skipped: Segment[] } {
  let coincident = inv.good[c.spec.ifos[0]];
  for (const ifo of c.spec.ifos.slice(1)) coincident = coincident.intersect(inv.good[ifo]);
  const min = c.spec.data.segments.min_duration;
  const segments: Segment[] = [];
  const skipped: Segment[] = [];
  for (const s of coincident) (s.duration >= min ? segments : skipped).push(s);
  return { segments, skipped };
}

/** What every planned sample stays clear of: the segment-end edge, and (background only) the vetoes. */
export interface Exclusions {
  edge: number;
  vetoes?: SegmentList;
}

export interface PlanInputs {
  inventory: DataInventory;
  /** background.vetoes, read (GPS segments) */
  vetoes?: SegmentList;
  /** GPS times of the injections (injections/time), when the campaign has an injection file */
  injectionTimes?: Float64Array;
}

/**
 * Output span of one job under one shift: the reference-detector times whose
 * detection-statistic samples the job produces. Empty (start == end) when the
 * shift leaves this span no livetime. Shared by planning and the worker, so
 * both agree on every sample.
 */
export function shiftOutputSpan(
  segment: readonly [number, number],
  span: readonly [number, number],
  shift: readonly number[],
  o: LivetimeOptions,
): [number, number] {
  const [s, e] = segment;
  const first = span[0] + o.psdLength;
  const nSegment = livetimeSamples(e - s, shift, o); // samples of the whole segment under this shift
  const segmentOutEnd = s + o.psdLength + nSegment / o.inferenceSamplingRate;
  const end = Math.min(span[1], segmentOutEnd);
  return end > first ? [first, end] : [first, first];
}

/** Background livetime a job carries when `background.job_livetime` is not set. */
export const DEFAULT_JOB_LIVETIME = 2 * 86_400;
/**
 * The same for a factorized campaign (`model.factorized`): 32× more. A
 * factorized job's cost is one encoding of its span per detector plus a cheap
 * head per shift, so packing more shifts spreads the encoding over them: at
 * 64 d a 4096-s job carries ~1400 shifts, so its encodings are a small part
 * of its cost even where the head is 100× cheaper than the whole model.
 */
export const DEFAULT_FACTORIZED_JOB_LIVETIME = 64 * 86_400;
/**
 * Without an explicit `job_livetime`, jobs grow so a campaign has about this
 * many background jobs at most: 1000 y over 30 days stays at 2 d per job
 * (~1.9·10^5 jobs, ~160 MiB of Redis while queued), 10^4 y packs ~18 d per
 * job instead of queueing 1.8·10^6 jobs. Beyond ~1100 y the job count stops
 * growing with the years; each job's work does.
 */
export const MAX_BACKGROUND_JOBS = 200_000;

/** Samples of background one job carries at most (see DEFAULT_JOB_LIVETIME, MAX_BACKGROUND_JOBS). */
function jobBudget(spec: CampaignSpec, segments: readonly Segment[], shiftTable: readonly number[][], o: LivetimeOptions): number {
  const isr = spec.inference.inference_sampling_rate;
  if (spec.background.job_livetime !== undefined) return Math.max(1, Math.floor(spec.background.job_livetime * isr));
  const perJob = spec.model.factorized ? DEFAULT_FACTORIZED_JOB_LIVETIME : DEFAULT_JOB_LIVETIME;
  let total = 0; // background samples before vetoes
  for (const seg of segments) for (let k = 1; k < shiftTable.length; k++) total += livetimeSamples(seg.duration, shiftTable[k], o);
  return Math.max(Math.floor(perJob * isr), Math.ceil(total / MAX_BACKGROUND_JOBS));
}

/**
 * The jobs of a campaign's analysable segments under its shift table, in
 * queue order (foreground and injection jobs first). Shared by planning and
 * by workers, which rebuild the plan from the campaign metadata to check a
 * payload read from Redis against it. `injTimes` sorted; "every-chunk":
 * an injection job for every chunk (its livetime is the chunk's, whatever the
 * times).
 */
export function planJobs(
  spec: CampaignSpec,
  ex: Exclusions,
  segments: readonly Segment[],
  shiftTable: number[][],
  injTimes?: Float64Array | "every-chunk",
): { jobs: PlannedJob[]; totals: Record<JobKind | "vetoed", number>; injInside: number } {
  const o = livetimeOptionsOf(spec, ex.edge);
  const vetoes = ex.vetoes?.coalesce().segments ?? [];
  const isr = o.inferenceSamplingRate;
  const chunkSamples = Math.floor((spec.background.max_job_duration - o.psdLength) * isr + 1e-9);
  const chunk = chunkSamples / isr;
  const budget = jobBudget(spec, segments, shiftTable, o);

  let injInside = 0;

  const jobs: PlannedJob[] = [];
  const bgJobs: PlannedJob[] = [];
  const totals = { background: 0, foreground: 0, injection: 0, vetoed: 0 }; // samples
  const add = (list: PlannedJob[], kind: JobKind, seg: Segment, span: [number, number], shifts: number[], samples: number) => {
    const payload: JobPayload = {
      v: 1,
      campaign: spec.name,
      kind,
      segment: [seg.start, seg.end],
      span,
      shifts: toRanges(shifts),
      livetime: samples / isr,
    };
    list.push({ id: jobId(kind, span[0], shifts[0]), payload });
    totals[kind] += samples;
  };

  for (const seg of segments) {
    const L = seg.duration;
    const n0 = livetimeSamples(L, shiftTable[0], o);
    const nChunks = Math.ceil(n0 / chunkSamples);
    const nShift = shiftTable.map((v) => livetimeSamples(L, v, o));
    const vetoGeometry = {
      kernelLength: spec.inference.kernel_length,
      inferenceSamplingRate: isr,
      ring: o.circular ? ([seg.start + o.edge, seg.end - o.edge] as const) : undefined,
    };
    for (let j = 0; j < nChunks; j++) {
      const c0 = seg.start + j * chunk;
      const span: [number, number] = [c0, Math.min(c0 + o.psdLength + chunk, seg.end)];
      const inChunk = (n: number) => Math.max(0, Math.min((j + 1) * chunkSamples, n) - j * chunkSamples);

      const fgSamples = inChunk(n0);
      add(jobs, "foreground", seg, span, [0], fgSamples);

      if (injTimes) {
        const outStart = c0 + o.psdLength;
        const outEnd = outStart + fgSamples / isr;
        const k = injTimes === "every-chunk" ? 1 : countInRange(injTimes, outStart, outEnd);
        if (k > 0) {
          injInside += k;
          add(jobs, "injection", seg, span, [0], fgSamples);
        }
      }

      // Background: the shifts that leave this chunk any output, packed in
      // runs of consecutive shifts up to job_livetime. The reference detector
      // is read and whitened once per job and the slid ones over the span
      // plus (last - first shift), so a job of many shifts pays its
      // shift-independent cost once; the budget keeps jobs of even size
      // (short chunks take more shifts), so retries lose little and the
      // queue stays balanced.
      let group: number[] = [];
      let groupSamples = 0;
      for (let k = 1; k < shiftTable.length; k++) {
        let n = inChunk(nShift[k]);
        if (n > 0 && vetoes.length) {
          const out = shiftOutputSpan([seg.start, seg.end], span, shiftTable[k], o);
          const vetoed = countRanges(vetoedSamples(out[0], n, shiftTable[k], vetoes, vetoGeometry));
          totals.vetoed += vetoed;
          n -= vetoed;
        }
        if (n === 0) continue;
        if (group.length && groupSamples + n > budget) {
          add(bgJobs, "background", seg, span, group, groupSamples);
          group = [];
          groupSamples = 0;
        }
        group.push(k);
        groupSamples += n;
      }
      if (group.length) add(bgJobs, "background", seg, span, group, groupSamples);
    }
  }
  // Foreground and injection jobs first: cheap, and what analysts look at first.
  // (A loop, not push(...bgJobs): 10^5 arguments overflow the stack.)
  for (const j of bgJobs) jobs.push(j);
  return { jobs, totals, injInside };
}

/** Splits, packs and names every job of a campaign. Pure: no Redis, no files. */
export function planCampaign(c: LoadedCampaign, inputs: PlanInputs): Plan {
  const { spec } = c;
  const edge = campaignEdge(spec, inputs.inventory.sampleRate);
  const o = livetimeOptions(c, edge);
  const isr = o.inferenceSamplingRate;
  const nIfo = spec.ifos.length;
  const warnings = [...c.warnings, ...inputs.inventory.warnings];
  // The first output's window and the whitening and resampling filters'
  // support must lie inside the burn-in: nothing may depend on strain before the segment.
  if (spec.inference.kernel_length + edge > spec.inference.psd_length + 1e-9)
    throw new CampaignError(c.file, [
      `${c.file}: inference.psd_length: expected at least kernel_length + fduration/2 + the resampler's half-support ` +
        `(${spec.inference.kernel_length} + ${edge} = ${spec.inference.kernel_length + edge} s) so the burn-in holds the kernel and filter edges, got ${spec.inference.psd_length} s`,
    ]);
  const factorizedProblems = factorizedShiftProblems(spec);
  if (factorizedProblems.length) throw new CampaignError(c.file, factorizedProblems.map((m) => `${c.file}: ${m}`));
  const { segments, skipped } = analysableSegments(c, inputs.inventory);
  const durations = segments.map((s) => s.duration);

  if (segments.length === 0 || durations.every((d) => livetimeSamples(d, shiftVector(0, 0, nIfo), o) === 0)) {
    const per = spec.ifos.map((ifo) => `${ifo} ${inputs.inventory.good[ifo].duration} s`).join(", ");
    const coincident = [...segments, ...skipped].reduce((a, s) => a + s.duration, 0);
    throw new CampaignError(c.file, [
      `${c.file}: data gives no analysable time: good data ${per}; coincident ${coincident} s in ${segments.length + skipped.length} segment(s), ` +
        `none both at least data.segments.min_duration (${spec.data.segments.min_duration} s) and longer than inference.psd_length (${spec.inference.psd_length} s)`,
    ]);
  }

  // The shift table: zero lag, then the background slides.
  const ex: Exclusions = { edge, vetoes: inputs.vetoes };
  const injTimes = inputs.injectionTimes ? Float64Array.from(inputs.injectionTimes).sort() : undefined;
  let background: number[][];
  let planned: ReturnType<typeof planJobs> | undefined;
  if (spec.background.livetime !== undefined) {
    // With vetoes, ask for what they take on top of the target, until it is reached.
    const goal = spec.background.livetime;
    for (let target = goal, round = 0; ; round++) {
      try {
        background = chooseShifts(durations, target, spec.background.step, nIfo, o).shifts;
      } catch (e) {
        throw new CampaignError(c.file, [`${c.file}: ${(e as Error).message}${inputs.vetoes ? " (before vetoes)" : ""}`]);
      }
      if (!inputs.vetoes) break;
      planned = planJobs(spec, ex, segments, [shiftVector(0, 0, nIfo), ...background], injTimes);
      const got = planned.totals.background / isr;
      if (got >= goal - 1e-9 || round >= 8) break;
      target += goal - got;
    }
  } else if (typeof spec.background.shifts === "number") {
    background = Array.from({ length: spec.background.shifts }, (_, i) => shiftVector(i + 1, spec.background.step, nIfo));
  } else {
    background = spec.background.shifts!.map((v) => [...v]);
  }
  const shiftTable = [shiftVector(0, 0, nIfo), ...background!];
  const { jobs, totals, injInside } = planned ?? planJobs(spec, ex, segments, shiftTable, injTimes);
  const counts = { background: 0, foreground: 0, injection: 0 };
  for (const j of jobs) counts[j.payload.kind]++;

  const plan: Plan = {
    campaign: spec.name,
    ifos: [...spec.ifos],
    segments,
    skipped,
    shiftTable,
    edge,
    ...(inputs.vetoes ? { vetoes: inputs.vetoes } : {}),
    jobs,
    counts,
    livetime: {
      background_s: totals.background / isr,
      foreground_s: totals.foreground / isr,
      injection_s: totals.injection / isr,
      vetoed_s: totals.vetoed / isr,
    },
    files: Object.fromEntries(Object.entries(inputs.inventory.files).map(([ifo, list]) => [ifo, list.map((f) => f.path)])),
    warnings,
  };
  if (plan.livetime.background_s === 0) {
    const longest = Math.max(...durations);
    const maxShift = Math.max(0, ...background!.flat());
    warnings.push(
      `background: the plan gives 0 s of background livetime (${background!.length} shift(s), largest ${maxShift} s; longest segment ${longest} s, of which psd_length ${spec.inference.psd_length} s and the edge ${edge} s give no output` +
        `${spec.background.circular ? "" : ", and a non-circular shift loses its own length"}${inputs.vetoes ? "; vetoes remove the rest" : ""}): ` +
        `use smaller or fewer shifts, background.circular: true, or more data`,
    );
  }
  if (injTimes) {
    plan.injections = { total: injTimes.length, in_analysed_time: injInside, outside: injTimes.length - injInside };
    if (injTimes.length - injInside > 0)
      warnings.push(`injections.file: ${injTimes.length - injInside} of ${injTimes.length} injections fall outside analysed time and will not be injected`);
  }
  return plan;
}

/**
 * A factorized campaign re-pairs embeddings computed once per detector, one
 * per 1/inference_sampling_rate s: a shift that is not a whole number of
 * embeddings would need its own encoding. Problems name the field and value.
 */
export function factorizedShiftProblems(spec: CampaignSpec): string[] {
  if (!spec.model.factorized) return [];
  const isr = spec.inference.inference_sampling_rate;
  const whole = (d: number) => Math.abs(d * isr - Math.round(d * isr)) <= 1e-9 * Math.max(1, Math.abs(d * isr));
  const why = `model.factorized: true needs every shift to be a whole multiple of 1/inference.inference_sampling_rate (1/${isr} = ${1 / isr} s)`;
  const b = spec.background;
  if (Array.isArray(b.shifts)) {
    const bad = b.shifts.flatMap((v, k) => v.filter((d) => !whole(d)).map((d) => `shifts[${k}] has ${d}`));
    return bad.length ? [`background.shifts: ${why}: ${bad.slice(0, 5).join(", ")}${bad.length > 5 ? `, and ${bad.length - 5} more` : ""}`] : [];
  }
  return whole(b.step) ? [] : [`background.step: ${why}; got ${b.step} s`];
}

function countInRange(sorted: Float64Array, a: number, b: number): number {
  return lowerBound(sorted, b) - lowerBound(sorted, a);
}

function lowerBound(sorted: Float64Array, x: number): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
