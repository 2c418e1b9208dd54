import pLimit from "p-limit";
import type { Logger } from "pino";
import { SegmentList, vetoedSamples } from "@timeslide/segments";
import { dirname, resolve } from "node:path";
import { JOB_ID_PATTERN, livetimeOptionsOf, psdFftLength, shiftIndices, shiftOutputSpan, type CampaignSpec, type JobPayload, type JobSummary, type PlannedJobs } from "@timeslide/campaign";
import { BadSegmentError, DetectorStream, injectInto, openWhitenedStrain, segmentEdge, type InjectionSet, type WhitenedStrain } from "@timeslide/strain";
import { integrate, cluster, gridGroup, windowSamples, writeEvents, type GridRow } from "@timeslide/stats";
import type { Channel, DetectionModel } from "./inference.js";
import { DEFAULT_EMBEDDING_MEMORY, isFactorized, least, most, runFactorized, type FactorizedModel } from "./factorized.js";

/** What a job needs of its campaign (read once per campaign from Redis). */
export interface JobContext {
  campaign: string;
  spec: CampaignSpec;
  shiftTable: number[][];
  /** s lost at each segment's end, as planned (the stored plan's edge_s) */
  edge: number;
  /** background.vetoes, as planned: background samples whose windows overlap one are not produced */
  vetoes?: SegmentList;
  /** data files per detector */
  files: Record<string, string[]>;
  output: string;
  injections?: InjectionSet;
  /** the campaign's jobs by id, rebuilt from its metadata: payloads read from Redis are checked against it */
  planned?: PlannedJobs;
  /** each detector's data files, opened once for the jobs of this context (filled by the jobs) */
  streams?: Map<string, Promise<DetectorStream>>;
}

/** A job that cannot succeed however often it is retried (bad data, bad payload). */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
}

export interface RunOptions {
  /** the whole model, or a factorized pair (each detector encoded once, the head per shift) */
  model: DetectionModel | FactorizedModel;
  /** factorized: bytes of embeddings kept in memory; past it they go to a scratch file under the output (default DEFAULT_EMBEDDING_MEMORY) */
  embeddingMemoryBytes?: number;
  log?: Logger;
  /** shifts streamed at once (several sequences in flight) */
  concurrency?: number;
  onProgress?: (p: { shiftsDone: number; shifts: number; inferences: number }) => void;
  /** aborts the job (shutdown past its grace period): the promise rejects with the signal's reason */
  signal?: AbortSignal;
}

/**
 * Seconds of strain read, resampled and whitened per step of a job's reader.
 * Between steps the reader yields, so requests already streaming are
 * answered without delay: reading overlaps inference instead of idling the
 * servers before a job's first request.
 */
const READ_STEP_S = 16;

/** Seconds of strain the reader stays ahead of what the job's shifts ask for. */
const READ_AHEAD_S = 4 * READ_STEP_S;

/** A detector's whitened strain over the job's range, filled by the reader step by step. */
export class Piece {
  /** samples [0, filled) are final */
  filled = 0;
  /** the furthest sample a shift has asked for */
  wanted = 0;
  #failure: { error: unknown } | undefined;
  #waiting: Array<{ n: number; resolve: () => void; reject: (e: unknown) => void }> = [];
  #onDemand: (() => void) | undefined;
  constructor(
    readonly ifo: string,
    /** GPS of data[0] at the analysis rate */
    readonly start: number,
    readonly data: Float64Array,
  ) {}

  until(n: number): Promise<void> | undefined {
    if (n > this.wanted) {
      this.wanted = n;
      this.#onDemand?.();
    }
    if (this.#failure) return Promise.reject(this.#failure.error);
    if (n <= this.filled) return undefined;
    return new Promise((resolve, reject) => this.#waiting.push({ n, resolve, reject }));
  }

  put(y: Float64Array): void {
    const m = Math.min(y.length, this.data.length - this.filled);
    this.data.set(m === y.length ? y : y.subarray(0, m), this.filled);
    this.filled += m;
    this.#waiting = this.#waiting.filter((w) => (w.n <= this.filled ? (w.resolve(), false) : true));
  }

  /** resolves when a shift asks for more than it did (the reader paces itself by it) */
  demand(): Promise<void> {
    return new Promise((resolve) => (this.#onDemand = () => ((this.#onDemand = undefined), resolve())));
  }

  fail(error: unknown): void {
    this.#failure ??= { error };
    for (const w of this.#waiting) w.reject(error);
    this.#waiting = [];
  }
}

/** Samples [off, off + N) of a piece. */
function sliceChannel(pc: Piece, off: number, N: number): Channel {
  if (off < 0 || off + N > pc.data.length) throw new Error(`internal: ${pc.ifo} needs samples [${off}, ${off + N}) of ${pc.data.length}`);
  return {
    length: N,
    ready: (n) => pc.until(off + n),
    copyTo: (dst, at, a, b) => dst.set(pc.data.subarray(off + a, off + b), at),
  };
}

/**
 * N samples of a detector whose stream wraps within the valid ring [a, b) of
 * its segment (DESIGN.md: [s + edge, e − edge)), starting at (own) time t:
 * sample n is at a + ((t − a + n/fs) mod (b − a)).
 */
function wrappedChannel(pc: Piece, ring: readonly [number, number], t: number, N: number, fs: number): Channel {
  return ringChannel(pc, ring, Math.round((t - ring[0]) * fs), N, fs);
}

/** Samples of the ring's unrolled sequence from sample `from` (any integer: taken modulo the ring's length) on. */
function ringChannel(pc: Piece, ring: readonly [number, number], from: number, N: number, fs: number): Channel {
  const L = ringLength(ring, fs);
  const base = Math.round((ring[0] - pc.start) * fs);
  if (base < 0 || base + L > pc.data.length) throw new Error(`internal: circular slide needs the whole ring [${ring[0]}, ${ring[1]})`);
  const k0 = ((from % L) + L) % L;
  return {
    length: N,
    // The wrapped part lies before k0: it is there once the ring's end is.
    ready: (n) => pc.until(base + Math.min(L, k0 + n)),
    copyTo: (dst, at, a, b) => {
      while (a < b) {
        const k = (k0 + a) % L;
        const m = Math.min(b - a, L - k);
        dst.set(pc.data.subarray(base + k, base + k + m), at);
        at += m;
        a += m;
      }
    },
  };
}

/** The ring's length in whole samples: the period of a wrapped detector. */
const ringLength = (ring: readonly [number, number], fs: number) => Math.round((ring[1] - ring[0]) * fs);

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
  const lo = livetimeOptionsOf(spec, ctx.edge);
  const ifos = spec.ifos;
  const shifts = shiftIndices(p).map((k) => {
    const v = ctx.shiftTable[k];
    if (!v || v.length !== ifos.length) throw new PermanentJobError(`job ${id}: shift index ${k} is not in the campaign's shift table`);
    return { k, v, out: shiftOutputSpan(p.segment, p.span, v, lo) };
  });

  // Warm-up before the first output: whole windows, and the integration's history.
  const m = Math.ceil(inf.kernel_length * isr - 1e-9);
  const w = windowSamples(spec.postprocess.integration_window, isr);
  // The stream starts no earlier than s + edge, where whitened strain has full support.
  const warm = Math.max(m, Math.min(m + w - 1, Math.floor((inf.psd_length - ctx.edge) * isr + 1e-9)));
  const outStart = p.span[0] + inf.psd_length;
  // an event at output sample q (stamped outStart + q/isr, its window's end) has time outStart + q/isr − this
  const eventTimeOffset = inf.kernel_length / 2 + spec.postprocess.integration_window / 2;
  const T0 = outStart - warm / isr; // reference-time start of every shift's stream
  const live = shifts.filter((s) => s.out[1] > s.out[0]);
  const ring: [number, number] = [p.segment[0] + ctx.edge, p.segment[1] - ctx.edge];
  const vetoes = ctx.vetoes?.segments ?? [];
  const vetoGeometry = { kernelLength: inf.kernel_length, inferenceSamplingRate: isr, ring: spec.background.circular ? ring : undefined };

  // Read, resample and whiten each detector once for all shifts of the job,
  // step by step while the shifts stream (each waits for the samples it needs).
  const tRead = performance.now();
  const injected = new Set<number>();
  const circular = spec.background.circular;
  const readers: PieceReader[] = [];
  for (const [i, ifo] of ifos.entries()) {
    o.signal?.throwIfAborted();
    // Circular slides wrap each detector within the segment's valid ring: read it whole.
    let range: [number, number] = ring;
    if (!circular) {
      range = [Infinity, -Infinity];
      for (const s of live) {
        range[0] = Math.min(range[0], T0 + s.v[i]);
        range[1] = Math.max(range[1], s.out[1] + s.v[i]);
      }
      if (!live.length) range = [T0, T0];
    }
    const analysed = new SegmentList([shifts[0].out]);
    try {
      readers.push(await openPiece(id, ctx, ifo, p, range, injected, analysed));
    } catch (e) {
      for (const r of readers) r.close();
      throw e;
    }
  }
  const pieces = readers.map((r) => r.piece);
  const strainSeconds = pieces.reduce((a, pc) => a + pc.data.length / fs, 0);
  let readS = (performance.now() - tRead) / 1000;
  const stopReading = new AbortController();
  // The reader keeps READ_AHEAD_S ahead of the furthest sample the shifts ask
  // for, not as far as it can: reading in a burst at a job's start takes the
  // cores the servers need (on a node shared with them) when they need them.
  let paced = true;
  let streamed: () => void = () => {};
  const streamingDone = new Promise<void>((r) => (streamed = r));
  const ahead = Math.round(READ_AHEAD_S * fs);
  const reading = (async () => {
    try {
      // Detectors in step, so every shift's channels fill together.
      for (let more = true; more; ) {
        while (paced && pieces.every((pc) => pc.filled >= Math.min(pc.data.length, pc.wanted + ahead))) {
          await Promise.race([streamingDone, ...pieces.map((pc) => pc.demand())]);
        }
        more = false;
        for (const r of readers) {
          o.signal?.throwIfAborted();
          stopReading.signal.throwIfAborted();
          const t = performance.now();
          more = (await r.step()) || more;
          readS += (performance.now() - t) / 1000;
        }
        await new Promise<void>((r) => setImmediate(r)); // let responses in
      }
    } catch (e) {
      for (const pc of pieces) pc.fail(e);
      throw e;
    } finally {
      for (const r of readers) r.close();
    }
  })();
  reading.catch(() => {}); // awaited below; its failure also reaches the waiting shifts
  o.log?.debug({ shifts: shifts.length, strain_s: strainSeconds }, "streaming shifts while reading");

  // Stream every shift (or, factorized, each detector once and the head per shift); several sequences in flight.
  const sequences = Math.max(1, o.concurrency ?? 4);
  let done = 0;
  let inferences = 0;
  let postS = 0;
  const tInfer = performance.now();
  const first = Math.max(m - 1, warm - w); // earliest output the integration uses: only whole windows
  /** Integration, vetoes and clustering of one shift's statistic (outputs [first, J)). */
  const postprocess = (s: (typeof shifts)[number], y: Float32Array): ShiftResult => {
    const t = performance.now();
    const nOut = Math.round((s.out[1] - s.out[0]) * isr);
    const z = integrate(y, w);
    const keep = z.subarray(z.length - nOut); // samples at outStart .. outEnd
    // Vetoed background samples are not produced (NaN: never an event) and not counted.
    let vetoed = 0;
    const vetoedRanges = p.kind === "background" && vetoes.length ? vetoedSamples(s.out[0], nOut, s.v, vetoes, vetoGeometry) : [];
    for (const [a, b] of vetoedRanges) {
      keep.fill(Number.NaN, a, b);
      vetoed += b - a;
    }
    const c = cluster(keep, windowSamples(spec.postprocess.cluster_window, isr));
    const times = Float64Array.from(c.index, (q) => outStart + q / isr - eventTimeOffset);
    done++;
    o.onProgress?.({ shiftsDone: done, shifts: shifts.length, inferences });
    postS += (performance.now() - t) / 1000;
    return { s, times, stats: c.detection_statistic, livetime: (nOut - vetoed) / isr, nOut, vetoedRanges };
  };
  const nothing = (s: (typeof shifts)[number]): ShiftResult => ({ s, times: new Float64Array(0), stats: new Float64Array(0), livetime: 0, nOut: 0, vetoedRanges: [] });
  /** outputs from the stream start to the last kept one */
  const outputsOf = (s: (typeof shifts)[number]) => warm - 1 + Math.round((s.out[1] - s.out[0]) * isr);
  let factorizedTimings: Record<string, number> = {};
  let streaming: Promise<ShiftResult[]>;
  if (isFactorized(o.model)) {
    const fm = o.model;
    const results = shifts.map(nothing);
    const liveIndex = shifts.flatMap((s, k) => (s.out[1] > s.out[0] ? [k] : []));
    // Each detector as one sample sequence: the piece (non-circular), or the
    // ring unrolled (circular: windows across the junction join its end and
    // start, as wrappedChannel does), with every shift's stream start in it.
    const L = ringLength(ring, fs);
    const detectors = pieces.map((pc, i) => {
      const start = (s: (typeof shifts)[number]) => (circular ? Math.round((T0 + s.v[i] - ring[0]) * fs) : Math.round((T0 + s.v[i] - pc.start) * fs));
      let starts = liveIndex.map((k) => start(shifts[k]));
      if (circular) {
        // Unrolled positions P apart are the same windows (P a multiple of the
        // ring and of the stride): fold them when that encodes less.
        const P = lcm(L, stride);
        const folded = starts.map((a) => ((a % P) + P) % P);
        const span = (xs: number[]) => most(xs) - least(xs);
        if (span(folded) < span(starts)) starts = folded;
      }
      return {
        starts,
        channel: (from: number, n: number) => (circular ? ringChannel(pc, ring, from, n, fs) : sliceChannel(pc, from, n)),
      };
    });
    streaming = liveIndex.length
      ? runFactorized({
          model: fm,
          detectors,
          shifts: liveIndex.map((k) => ({ outputs: outputsOf(shifts[k]) })),
          first,
          concurrency: sequences,
          memoryBytes: o.embeddingMemoryBytes ?? DEFAULT_EMBEDDING_MEMORY,
          spillPath: resolve(ctx.output, "scratch", `${id}.${process.pid}.embeddings`),
          signal: o.signal,
          onShift: (j, y) => {
            const k = liveIndex[j];
            inferences += y.length;
            results[k] = postprocess(shifts[k], y);
          },
        }).then((r) => {
          factorizedTimings = { encode_s: r.encodeS, head_s: r.headS, embeddings: r.embeddings, spilled: r.spilled ? 1 : 0, wire_bytes: r.wireBytes };
          return results;
        })
      : Promise.resolve(results);
  } else {
    const model = o.model;
    const limit = pLimit(sequences);
    // A job with fewer shifts than sequences (zero lag has one) streams each
    // shift in consecutive parts, one sequence each, so the servers see as
    // many streams as usual; a part starts with zeroed state early enough that
    // its outputs see only real samples (exactly the outputs of one stream).
    const partsPerShift = shifts.length < sequences ? Math.ceil(sequences / shifts.length) : 1;
    streaming = Promise.all(
      shifts.map(async (s) => {
        o.signal?.throwIfAborted();
        if (s.out[1] <= s.out[0]) return nothing(s);
        const J = outputsOf(s);
        const N = J * stride;
        const channels = pieces.map((pc, i) =>
          circular ? wrappedChannel(pc, ring, T0 + s.v[i], N, fs) : sliceChannel(pc, Math.round((T0 + s.v[i] - pc.start) * fs), N),
        );
        const y = new Float32Array(J - first);
        const parts = splitOutputs(J - first, partsPerShift, model.batch);
        await Promise.all(
          parts.map(([a, n]) =>
            limit(async () => {
              o.signal?.throwIfAborted();
              y.set(await model.run(channels, first + a, n, o.signal), a);
              inferences += n;
            }),
          ),
        );
        return postprocess(s, y);
      }),
    );
  }
  streaming.catch((e) => stopReading.abort(e)); // a failed shift fails the job: stop reading
  // Once every shift is through, what is left of the pieces (filter padding) is read unpaced.
  void streaming.finally(() => ((paced = false), streamed())).catch(() => {});
  const [perShift] = await Promise.all([streaming, reading]);
  const inferS = (performance.now() - tInfer) / 1000;
  o.signal?.throwIfAborted();

  // Events of all shifts, in shift order.
  const n = perShift.reduce((a, r) => a + r.times.length, 0);
  const time = new Float64Array(n);
  const stat = new Float64Array(n);
  const shift = new Float64Array(n * ifos.length);
  let at = 0;
  let livetimeSamples = 0;
  // The output sample grid, shift by shift (/grid): what the job produced, so
  // livetime removed from the background later is counted exactly from the file.
  const gridRows: GridRow[] = [];
  for (const r of perShift) {
    gridRows.push({ shiftIndex: r.s.k, shift: r.s.v, first: outStart, count: r.nOut, eventStart: at, eventCount: r.times.length, vetoed: r.vetoedRanges });
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

  const tWrite = performance.now();
  try {
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
    }, { campaign: ctx.campaign }, {
      // circular: wrappedChannel's period is the ring's length in whole samples
      grid: gridGroup({ inferenceSamplingRate: isr, eventTimeOffset, ...(circular ? { ring, ringPeriod: Math.round((ring[1] - ring[0]) * fs) / fs } : {}), rows: gridRows }, ifos.length),
      ...(p.kind === "injection"
        ? { injections: { datasets: { index: BigInt64Array.from([...injected].sort((a, b) => a - b), (k) => BigInt(k)) } } }
        : {}),
    });
  } catch (e) {
    throw writeError(id, path, e);
  }

  const writeS = (performance.now() - tWrite) / 1000;
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
    timings: { read_whiten_s: readS, infer_s: inferS, postprocess_s: postS, write_s: writeS, total_s: total, inferences, ...factorizedTimings },
    finished_at: Date.now(),
  };
}

/** One shift's events and what it produced. */
interface ShiftResult {
  s: { k: number; v: number[]; out: [number, number] };
  times: Float64Array;
  stats: Float64Array;
  livetime: number;
  nOut: number;
  vetoedRanges: Array<[number, number]>;
}

const gcd = (a: number, b: number): number => (b ? gcd(b, a % b) : a);
const lcm = (a: number, b: number) => (a / gcd(a, b)) * b;

/** Requests' worth of outputs below which a shift is not split into parts: each part re-sends up to one request of history. */
const MIN_PART_REQUESTS = 8;

/** [offset, count] of up to `parts` consecutive ranges covering `count` outputs, whole requests each but the last. */
function splitOutputs(count: number, parts: number, batch: number): Array<[number, number]> {
  const n = Math.max(1, Math.min(parts, Math.floor(count / (batch * MIN_PART_REQUESTS))));
  const size = Math.ceil(count / n / batch) * batch;
  const out: Array<[number, number]> = [];
  for (let a = 0; a < count; a += size) out.push([a, Math.min(size, count - a)]);
  return out;
}

export interface PieceReader {
  piece: Piece;
  /** reads, resamples and whitens the next step into the piece; false once it is full */
  step(): Promise<boolean>;
  /** releases the open data file (done by the last step; needed when reading stops early) */
  close(): void;
}

/**
 * A write failure with a reason that says what is wrong: a bare "EEXIST:
 * mkdir" or "EACCES" does not tell an operator the output directory is the
 * problem. Not permanent: the directory may be fixed before the next attempt.
 */
function writeError(id: string, path: string, e: unknown): unknown {
  const err = e as NodeJS.ErrnoException;
  if (!err?.code) return e;
  return new Error(`job ${id}: cannot write its result ${path}: the output directory is not a writable directory (${err.message})`);
}

/**
 * Detector `ifo`'s whitened strain over [range) (its own GPS), at the
 * analysis rate, through the strain pipeline (packages/strain): PSD from the
 * first psd_length s of the job's span (so every shift of the job sees one
 * whitening filter), only samples whose filters had full support in the
 * segment. The PSD span is read here, the range by the reader's steps.
 */
export async function openPiece(
  id: string,
  ctx: JobContext,
  ifo: string,
  p: JobPayload,
  range: [number, number],
  injected: Set<number>,
  analysed: SegmentList,
): Promise<PieceReader> {
  const { spec } = ctx;
  const fs = spec.data.sample_rate;
  const inf = spec.inference;
  const files = ctx.files[ifo];
  if (!files?.length) throw new PermanentJobError(`job ${id}: no data files for ${ifo} in the campaign metadata`);
  let stream: DetectorStream;
  try {
    stream = await detectorStream(ctx, ifo, files);
  } catch (e) {
    throw new PermanentJobError(`job ${id}: ${ifo}: ${(e as Error).message}`);
  }
  const edge = segmentEdge(stream.sampleRate, fs, inf.fduration);
  if (edge > ctx.edge + 1e-9)
    throw new PermanentJobError(
      `job ${id}: ${ifo}'s files are at ${stream.sampleRate} Hz, whose resampling needs an edge of ${edge} s; the plan has ${ctx.edge} s (data changed since submit?)`,
    );
  // Injections: only those whose time the job analyses (one near the edge of
  // the span belongs to the neighbouring job, and is counted there).
  const set = p.kind === "injection" ? ctx.injections : undefined;
  const inject = set
    ? (start: number, sampleRate: number, data: Float64Array, part: "psd" | "analysis") => {
        const r = injectInto({ ifo, start, sampleRate, data }, set, { shift: 0, analysed });
        if (part === "analysis") for (const k of r.injected) injected.add(k);
      }
    : undefined;
  let strain: WhitenedStrain;
  try {
    strain = await openWhitenedStrain(stream, {
      sampleRate: fs,
      psdLength: inf.psd_length,
      fduration: inf.fduration,
      fftlength: psdFftLength(inf),
      highpass: inf.highpass,
      segment: p.segment,
      psdStart: p.span[0],
      range,
      inject,
      stepSeconds: READ_STEP_S,
      context: `job ${id}`,
    });
  } catch (e) {
    throw e instanceof BadSegmentError ? new PermanentJobError(e.message) : e;
  }
  const piece = new Piece(ifo, strain.start, new Float64Array(strain.length));
  return {
    piece,
    close: () => strain.close(),
    async step() {
      let y: Float64Array | null;
      try {
        y = await strain.step();
      } catch (e) {
        throw e instanceof BadSegmentError ? new PermanentJobError(e.message) : e;
      }
      if (y) piece.put(y);
      return y !== null && piece.filled < piece.data.length;
    },
  };
}

/**
 * A detector's data files, opened (metadata and DQ masks read) once per
 * campaign context rather than once per job: a campaign over weeks has
 * hundreds of files per detector. A file found unreadable reads as a gap, so
 * it fails only the jobs that need its time; one damaged later fails them
 * when they read it.
 */
function detectorStream(ctx: JobContext, ifo: string, files: string[]): Promise<DetectorStream> {
  const streams = (ctx.streams ??= new Map());
  let s = streams.get(ifo);
  if (!s) {
    s = DetectorStream.open(files, { ifo, skipUnreadable: true });
    s.catch(() => streams.delete(ifo)); // tried again by the next job
    streams.set(ifo, s);
  }
  return s;
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
