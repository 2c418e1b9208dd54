import pLimit from "p-limit";
import type { Logger } from "pino";
import { SegmentList, maxLightTravelTime, type LivetimeOptions } from "@timeslide/segments";
import { dirname, resolve } from "node:path";
import { JOB_ID_PATTERN, shiftIndices, shiftOutputSpan, type JobPayload, type JobSummary, type CampaignSpec } from "@timeslide/campaign";
import { DetectorStream, Whitener, welchPsd, decimate, decimationFactor, injectInto, type InjectionSet } from "@timeslide/strain";
import { integrate, cluster, windowSamples, writeEvents } from "@timeslide/stats";
import type { DetectionModel } from "./inference.js";

/** What a job needs of its campaign (read once per campaign from Redis). */
export interface JobContext {
  campaign: string;
  spec: CampaignSpec;
  shiftTable: number[][];
  /** data files per detector */
  files: Record<string, string[]>;
  output: string;
  injections?: InjectionSet;
  /** the campaign's jobs by id, rebuilt from its metadata: payloads read from Redis are checked against it */
  planned?: ReadonlyMap<string, JobPayload>;
}

/** A job that cannot succeed however often it is retried (bad data, bad payload). */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}

export interface RunOptions {
  model: DetectionModel;
  log?: Logger;
  /** shifts streamed at once (several sequences in flight) */
  concurrency?: number;
  onProgress?: (p: { shiftsDone: number; shifts: number; inferences: number }) => void;
  /** aborts the job (shutdown past its grace period): the promise rejects with the signal's reason */
  signal?: AbortSignal;
}

/** Extra read (s) each side of a piece for the decimation filter's support. */
const RESAMPLE_PAD = 1;

interface Piece {
  start: number; // GPS of data[0] at the analysis rate
  data: Float64Array; // whitened
}

export function livetimeOptionsOf(spec: CampaignSpec): LivetimeOptions {
  return {
    psdLength: spec.inference.psd_length,
    inferenceSamplingRate: spec.inference.inference_sampling_rate,
    circular: spec.background.circular,
    minSeparation: maxLightTravelTime(spec.ifos).seconds,
  };
}

/**
 * Runs one job: reads and whitens each detector once, streams every shift
 * through the model, integrates and clusters, writes the events file
 * atomically and returns the summary. Time conventions: a detection-statistic
 * sample is stamped with the end of its window; an event's time is its peak
 * sample's time minus half the kernel and half the integration window (the
 * centre of what the boxcar saw), in reference-detector GPS.
 */
export async function runJob(id: string, p: JobPayload, ctx: JobContext, o: RunOptions): Promise<JobSummary> {
  const t0 = performance.now();
  const { spec } = ctx;
  // The job id names the result file: it must stay in <output>/jobs.
  const path = `${ctx.output}/jobs/${id}.h5`;
  if (!JOB_ID_PATTERN.test(id) || dirname(resolve(path)) !== resolve(ctx.output, "jobs"))
    throw new PermanentJobError(`job ${id}: the result file ${path} would not be in ${ctx.output}/jobs: refused`);
  const inf = spec.inference;
  const fs = spec.data.sample_rate;
  const isr = inf.inference_sampling_rate;
  const stride = Math.round(fs / isr);
  const kernel = Math.round(inf.kernel_length * fs);
  if (kernel !== o.model.kernel || stride !== o.model.stride)
    throw new PermanentJobError(
      `job ${id}: the model's geometry (kernel ${o.model.kernel}, stride ${o.model.stride} samples) does not match the campaign (kernel ${kernel}, stride ${stride} at ${fs} Hz)`,
    );
  const lo = livetimeOptionsOf(spec);
  const ifos = spec.ifos;
  const shifts = shiftIndices(p).map((k) => {
    const v = ctx.shiftTable[k];
    if (!v || v.length !== ifos.length) throw new PermanentJobError(`job ${id}: shift index ${k} is not in the campaign's shift table`);
    return { k, v, out: shiftOutputSpan(p.segment, p.span, v, lo) };
  });

  // Warm-up before the first output: whole windows, and the integration's history.
  const m = Math.ceil(inf.kernel_length * isr - 1e-9);
  const w = windowSamples(spec.postprocess.integration_window, isr);
  const warm = Math.max(m, Math.min(m + w - 1, Math.floor((inf.psd_length - inf.fduration / 2) * isr + 1e-9)));
  const outStart = p.span[0] + inf.psd_length;
  const T0 = outStart - warm / isr; // reference-time start of every shift's stream
  const lastEnd = Math.max(...shifts.map((s) => s.out[1]));

  // Read, resample and whiten each detector once for all shifts of the job.
  const tRead = performance.now();
  const pieces: Piece[] = [];
  let strainSeconds = 0;
  const injected = new Set<number>();
  const circular = spec.background.circular;
  for (const [i, ifo] of ifos.entries()) {
    o.signal?.throwIfAborted();
    // Circular slides wrap each detector within the segment: read it whole.
    const lo_ = circular ? p.segment[0] : T0 + Math.min(...shifts.map((s) => s.v[i]));
    const hi_ = circular ? p.segment[1] : lastEnd + Math.max(...shifts.map((s) => s.v[i]));
    const analysed = new SegmentList([shifts[0].out]);
    const piece = await readWhitened(id, ctx, ifo, p, [lo_, hi_], injected, analysed);
    strainSeconds += piece.data.length / fs;
    pieces.push(piece);
  }
  const readS = (performance.now() - tRead) / 1000;
  o.log?.debug({ shifts: shifts.length, strain_s: strainSeconds, read_whiten_s: readS }, "read and whitened: streaming");

  // Stream every shift; several sequences in flight.
  const limit = pLimit(Math.max(1, o.concurrency ?? 4));
  let done = 0;
  let inferences = 0;
  const tInfer = performance.now();
  const perShift = await Promise.all(
    shifts.map((s) =>
      limit(async () => {
        o.signal?.throwIfAborted();
        const nOut = Math.round((s.out[1] - s.out[0]) * isr);
        if (nOut <= 0) return { s, times: new Float64Array(0), stats: new Float64Array(0), livetime: 0 };
        const J = warm - 1 + nOut; // outputs from the stream start to the last kept one
        const N = J * stride;
        const channels = pieces.map((pc, i) => {
          if (circular) return wrapped(pc, p.segment, T0 + s.v[i], N, fs);
          const off = Math.round((T0 + s.v[i] - pc.start) * fs);
          if (off < 0 || off + N > pc.data.length)
            throw new Error(`job ${id}: internal: shift ${s.k} needs ${ifos[i]} samples [${off}, ${off + N}) of ${pc.data.length}`);
          return Float32Array.from(pc.data.subarray(off, off + N));
        });
        const first = Math.max(m - 1, warm - w); // earliest output the integration uses: only whole windows
        const y = await o.model.run(channels, first, J - first, o.signal);
        inferences += J - first;
        const z = integrate(y, w);
        const keep = z.subarray(z.length - nOut); // samples at outStart .. outEnd
        const c = cluster(keep, windowSamples(spec.postprocess.cluster_window, isr));
        const offset = inf.kernel_length / 2 + spec.postprocess.integration_window / 2;
        const times = Float64Array.from(c.index, (q) => outStart + q / isr - offset);
        done++;
        o.onProgress?.({ shiftsDone: done, shifts: shifts.length, inferences });
        return { s, times, stats: c.detection_statistic, livetime: nOut / isr };
      }),
    ),
  );
  const inferS = (performance.now() - tInfer) / 1000;
  o.signal?.throwIfAborted();

  // Events of all shifts, in shift order.
  const n = perShift.reduce((a, r) => a + r.times.length, 0);
  const time = new Float64Array(n);
  const stat = new Float64Array(n);
  const shift = new Float64Array(n * ifos.length);
  let at = 0;
  let livetimeSamples = 0;
  for (const r of perShift) {
    time.set(r.times, at);
    stat.set(r.stats, at);
    for (let e = 0; e < r.times.length; e++) shift.set(r.s.v, (at + e) * ifos.length);
    at += r.times.length;
    livetimeSamples += Math.round(r.livetime * isr);
  }
  const livetime = livetimeSamples / isr;
  if (Math.abs(livetime - p.livetime) > 0.5 / isr)
    throw new Error(`job ${id}: analysed ${livetime} s but the plan says ${p.livetime} s (internal inconsistency)`);

  let injectionIndex: Int32Array | undefined;
  if (p.kind === "injection") injectionIndex = matchInjections(time, ctx.injections, injected, spec.injections?.window ?? 1);

  await writeEvents(path, {
    time,
    detection_statistic: stat,
    shift,
    nIfo: ifos.length,
    injection_index: injectionIndex,
    livetime,
    ifos: [...ifos],
    kind: p.kind,
    job_id: id,
  }, { campaign: ctx.campaign }, p.kind === "injection"
    ? { injections: { datasets: { index: BigInt64Array.from([...injected].sort((a, b) => a - b), (k) => BigInt(k)) } } }
    : {});

  let loudest: number | null = null;
  for (const x of stat) if (loudest === null || x > loudest) loudest = x;
  const total = (performance.now() - t0) / 1000;
  return {
    job_id: id,
    kind: p.kind,
    livetime,
    events: n,
    loudest,
    path,
    shifts: shifts.length,
    strain_s: strainSeconds,
    timings: { read_whiten_s: readS, infer_s: inferS, total_s: total, inferences },
    finished_at: Date.now(),
  };
}

/**
 * Detector `ifo`'s whitened strain over [range) (its own GPS), at the
 * analysis rate: PSD from the first psd_length s of the job's span (so every
 * shift of the job sees one whitening filter), filter applied to the range
 * padded for the filter and the resampler, clamped to the segment.
 */
async function readWhitened(
  id: string,
  ctx: JobContext,
  ifo: string,
  p: JobPayload,
  range: [number, number],
  injected: Set<number>,
  analysed: SegmentList,
): Promise<Piece> {
  const { spec } = ctx;
  const fs = spec.data.sample_rate;
  const inf = spec.inference;
  const files = ctx.files[ifo];
  if (!files?.length) throw new PermanentJobError(`job ${id}: no data files for ${ifo} in the campaign metadata`);
  let stream: DetectorStream;
  try {
    // A file damaged after planning fails only the jobs that need its time.
    stream = await DetectorStream.open(files, { ifo, skipUnreadable: true });
  } catch (e) {
    throw new PermanentJobError(`job ${id}: ${ifo}: ${(e as Error).message}`);
  }
  const factor = decimationFactor(stream.sampleRate, fs);
  const pad = (factor > 1 ? RESAMPLE_PAD : 0) + inf.fduration / 2;
  const [s, e] = p.segment;
  const read = async (a: number, b: number, what: string) => {
    const aa = Math.max(s, a);
    const bb = Math.min(e, b);
    const slice = await stream.read(aa, bb);
    if (slice.gaps.length) {
      const g = slice.gaps.segments[0];
      throw new PermanentJobError(
        `job ${id}: ${ifo} has no valid data (NaN or no file) at [${g.start}, ${g.end}) inside the good segment [${s}, ${e}) (${what})` +
          (stream.unreadable.length ? `; unreadable: ${stream.unreadable.map((u) => u.message).join("; ")}` : ""),
      );
    }
    const x = factor > 1 ? decimate(slice.data, factor) : slice.data;
    return { start: slice.start, data: x };
  };
  const whitenOpts = { sampleRate: fs, psdLength: inf.psd_length, fduration: inf.fduration, highpass: inf.highpass };

  const psdPiece = await read(p.span[0], p.span[0] + inf.psd_length, "PSD burn-in");
  const raw = await read(range[0] - pad, range[1] + pad, "analysis");
  if (p.kind === "injection" && ctx.injections) {
    // Only injections whose time the job analyses: one near the edge of the
    // span belongs to the neighbouring job, and is counted there.
    const r = injectInto({ ifo, start: raw.start, sampleRate: fs, data: raw.data }, ctx.injections, { shift: 0, analysed });
    for (const k of r.injected) injected.add(k);
    injectInto({ ifo, start: psdPiece.start, sampleRate: fs, data: psdPiece.data }, ctx.injections, { shift: 0, analysed });
  }
  const psd = welchPsd(psdPiece.data, fs, { fftlength: inf.fduration });
  const whitener = Whitener.fromPsd(psd, whitenOpts);
  const head = whitener.push(raw.data);
  const tail = whitener.flush();
  const data = new Float64Array(head.length + tail.length);
  data.set(head);
  data.set(tail, head.length);
  return { start: raw.start, data: data.subarray(0, raw.data.length) };
}

/**
 * N samples of a detector whose stream wraps within its segment [s, e),
 * starting at (own) time t: position s + ((t - s) mod L).
 */
function wrapped(pc: Piece, segment: readonly [number, number], t: number, N: number, fs: number): Float32Array {
  const L = Math.round((segment[1] - segment[0]) * fs);
  const base = Math.round((segment[0] - pc.start) * fs);
  if (base < 0 || base + L > pc.data.length) throw new Error(`internal: circular slide needs the whole segment [${segment[0]}, ${segment[1]})`);
  const out = new Float32Array(N);
  let k = (((Math.round((t - segment[0]) * fs)) % L) + L) % L;
  for (let n = 0; n < N; n++) {
    out[n] = pc.data[base + k];
    if (++k === L) k = 0;
  }
  return out;
}

/** For each event, the injection (added in this job) within ±window of it, else −1. */
function matchInjections(time: Float64Array, set: InjectionSet | undefined, injected: Set<number>, window: number): Int32Array {
  const out = new Int32Array(time.length).fill(-1);
  if (!set) return out;
  const cands = [...injected].map((k) => ({ k, t: set.times[k] })).sort((a, b) => a.t - b.t);
  for (let e = 0; e < time.length; e++) {
    let best = -1;
    let bestD = Infinity;
    for (const c of cands) {
      const d = Math.abs(c.t - time[e]);
      if (d <= window && d < bestD) {
        best = c.k;
        bestD = d;
      }
    }
    out[e] = best;
  }
  return out;
}
