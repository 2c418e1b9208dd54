// The factorized path (DESIGN.md "Factorized models"): a job's detectors are
// each streamed once through their encoder (snapshotter + encoder, as the
// whole model is streamed), the embeddings kept (spilled to the job's scratch
// file past a limit), then the slides model re-pairs them for every shift of
// the job: a shift costs the head alone. Shifts are whole multiples of the
// embedding stride (refused at plan time otherwise), so output j of shift s
// uses, in detector i, the embedding of the window that the whole model's
// output j sees: exactly the same windows.
import { closeSync, mkdirSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import pLimit from "p-limit";
import { outputOf, type ServerPool } from "@timeslide/kserve";
import { SLIDES_TENSORS as T } from "@timeslide/model-repo";
import type { Channel, DetectionModel } from "./inference.js";

/** A factorized pair as the worker runs it. */
export class FactorizedModel {
  readonly factorized = true;
  readonly kernel: number;
  readonly stride: number;
  readonly batch: number;
  /** tensor bytes sent and received (the bench's bytes on the wire; gRPC framing not counted) */
  readonly wire = { sent: 0, received: 0 };
  constructor(
    private readonly pool: ServerPool,
    /** the slides ensemble */
    readonly slides: string,
    /** each detector's encoder stream, in the campaign's detector order: `run` gives D floats per window */
    readonly encoders: DetectionModel[],
    readonly embeddingDim: number,
    /** the head's max_batch_size: (shift, output) pairs per slides request at most */
    readonly maxPairs: number,
    private readonly opts: { version?: string; deadlineMs?: number } = {},
  ) {
    const [e] = encoders;
    this.kernel = e.kernel;
    this.stride = e.stride;
    this.batch = e.batch;
  }

  /** Encodes samples of one detector: D floats for each output in [first, first + count). */
  async encode(ifo: number, channel: Channel, first: number, count: number, signal?: AbortSignal): Promise<Float32Array> {
    const e = this.encoders[ifo];
    const y = await e.run([channel], first, count, signal);
    // what crossed the wire: the updates from the part's sequence start, and the embeddings back
    const U = e.stride * e.batch;
    const r0 = Math.max(0, Math.floor(((first + 1) * e.stride - e.kernel) / U));
    const requests = Math.ceil((first + count) / e.batch) - r0;
    this.wire.sent += requests * U * 4;
    this.wire.received += requests * e.batch * this.embeddingDim * 4;
    return y;
  }

  /** The statistic of S shifts × W outputs: row s·W + w pairs embedding[i, offset[s, i] + w] over detectors i. */
  async pairs(embedding: Float32Array, nIfo: number, E: number, offset: BigInt64Array, W: number, signal?: AbortSignal): Promise<Float32Array> {
    const S = offset.length / nIfo;
    const res = await this.pool.infer(
      {
        model: this.slides,
        version: this.opts.version,
        inputs: [
          { name: T.embedding, datatype: "FP32", shape: [nIfo, E, this.embeddingDim], data: embedding },
          { name: T.offset, datatype: "INT64", shape: [S, nIfo], data: offset },
          { name: T.count, datatype: "INT64", shape: [1], data: BigInt64Array.from([BigInt(W)]) },
        ],
        outputs: [T.statistic],
      },
      { deadlineMs: this.opts.deadlineMs ?? 60_000, signal },
    );
    this.wire.sent += embedding.byteLength + offset.byteLength + 8;
    this.wire.received += S * W * 4;
    return Float32Array.from(outputOf(res, T.statistic).data as ArrayLike<number>);
  }
}

export function isFactorized(m: DetectionModel | FactorizedModel): m is FactorizedModel {
  return (m as FactorizedModel).factorized === true;
}

/** Default bytes of embeddings a job keeps in memory before spilling to its scratch file. */
export const DEFAULT_EMBEDDING_MEMORY = 256 * 1024 * 1024;

/**
 * Each detector's embeddings, D floats per window: in memory up to a limit,
 * else in one scratch file (detector i's run after detector i−1's).
 */
export class EmbeddingStore {
  readonly spilled: boolean;
  readonly #mem: Float32Array[] = [];
  readonly #at: number[] = []; // first float of each detector in the file
  #fd: number | undefined;
  constructor(
    readonly lengths: readonly number[],
    readonly D: number,
    limitBytes: number,
    readonly spillPath: string,
  ) {
    const total = lengths.reduce((a, n) => a + n, 0) * D * 4;
    this.spilled = total > limitBytes;
    if (this.spilled) {
      mkdirSync(dirname(spillPath), { recursive: true });
      this.#fd = openSync(spillPath, "w+");
      let at = 0;
      for (const n of lengths) (this.#at.push(at), (at += n * D));
    } else for (const n of lengths) this.#mem.push(new Float32Array(n * D));
  }

  /** embeddings [e0, e0 + data.length / D) of detector i */
  write(i: number, e0: number, data: Float32Array): void {
    if (!this.spilled) return this.#mem[i].set(data, e0 * this.D);
    writeSync(this.#fd!, data, 0, data.byteLength, (this.#at[i] + e0 * this.D) * 4);
  }

  /** embeddings [e0, e0 + n) of detector i into dst at `at` (floats); zeros outside the detector's run */
  read(i: number, e0: number, n: number, dst: Float32Array, at: number): void {
    const a = Math.max(0, e0);
    const b = Math.min(this.lengths[i], e0 + n);
    if (b <= a) return;
    const D = this.D;
    const to = at + (a - e0) * D;
    if (!this.spilled) return dst.set(this.#mem[i].subarray(a * D, b * D), to);
    const view = new Uint8Array(dst.buffer, dst.byteOffset + to * 4, (b - a) * D * 4);
    for (let got = 0; got < view.length; ) {
      const k = readSync(this.#fd!, view, got, view.length - got, (this.#at[i] + a * D) * 4 + got);
      if (k <= 0) throw new Error(`internal: short read of ${this.spillPath}`);
      got += k;
    }
  }

  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
    rmSync(this.spillPath, { force: true });
  }
}

/** One detector of a job as the factorized path sees it: a sample sequence and where each shift starts in it. */
export interface DetectorSamples {
  /** samples [from, from + n) of the detector's sequence */
  channel(from: number, n: number): Channel;
  /** index in the sequence of each shift's stream start (one per shift, in the job's order) */
  starts: number[];
}

export interface FactorizedShift {
  /** outputs from the stream start to the last kept one (as the whole model's stream: J) */
  outputs: number;
}

export interface FactorizedRun {
  model: FactorizedModel;
  detectors: DetectorSamples[];
  /** the job's shifts with any output */
  shifts: FactorizedShift[];
  /** the earliest output any shift uses (whole windows only): every shift's statistic starts there */
  first: number;
  /** sequences and slides requests in flight */
  concurrency: number;
  memoryBytes: number;
  spillPath: string;
  signal?: AbortSignal;
  /** shift s's statistic, outputs [first, outputs): called once per shift, in completion order */
  onShift: (s: number, y: Float32Array) => void;
}

/** Smallest and largest of many numbers (no spread: a job may have 10^5 shifts). */
export const least = (xs: readonly number[]) => xs.reduce((a, x) => Math.min(a, x), Infinity);
export const most = (xs: readonly number[]) => xs.reduce((a, x) => Math.max(a, x), -Infinity);

/** Requests' worth of outputs below which an encoding is not split into parts (each part re-sends up to one request of history). */
const MIN_PART_REQUESTS = 8;

/** Encodes each detector once, then runs the slides model over every shift; returns the time spent in each stage. */
export async function runFactorized(r: FactorizedRun): Promise<{ encodeS: number; headS: number; spilled: boolean; embeddings: number; wireBytes: number }> {
  const { model, detectors, shifts, first } = r;
  const wire0 = model.wire.sent + model.wire.received;
  const nIfo = detectors.length;
  const { stride, batch, embeddingDim: D } = model;
  // Detector i's encoder stream starts at its earliest shift start: shift s's
  // output j is then embedding (start − base)/stride + j of that stream.
  const base = detectors.map((d) => least(d.starts));
  const offsets = detectors.map((d, i) =>
    d.starts.map((a) => {
      const o = (a - base[i]) / stride;
      if (!Number.isInteger(o)) throw new Error(`internal: a shift of detector ${i} starts ${a - base[i]} samples after another, not a whole number of strides (${stride})`);
      return o;
    }),
  );
  const lengths = detectors.map((_, i) => most(shifts.map((s, k) => offsets[i][k] + s.outputs)));
  const store = new EmbeddingStore(lengths, D, r.memoryBytes, r.spillPath);
  const limit = pLimit(Math.max(1, r.concurrency));
  // After a failure no new request starts, and the store closes only once
  // every request has settled (none writes to a closed file).
  let failure: { e: unknown } | undefined;
  const task = (f: () => Promise<void>) =>
    limit(async () => {
      if (failure) return;
      r.signal?.throwIfAborted();
      await f();
    }).catch((e: unknown) => void (failure ??= { e }));
  const settle = async (ps: Array<Promise<void>>) => {
    await Promise.all(ps);
    if (failure) throw failure.e;
  };
  try {
    // 1. Encode: each detector once, in parts (several sequences in flight),
    //    each part's embeddings to the store at once: at most `concurrency`
    //    parts' worth in memory besides the store (bounded by memoryBytes too).
    const tEncode = performance.now();
    const conc = Math.max(1, r.concurrency);
    const minPart = batch * MIN_PART_REQUESTS;
    const even = Math.ceil(most(lengths) / Math.max(1, Math.ceil(conc / nIfo)) / batch) * batch;
    const bounded = Math.floor(r.memoryBytes / (4 * D * conc) / batch) * batch;
    const size = Math.max(minPart, Math.min(even, bounded));
    const parts: Array<Promise<void>> = [];
    for (let i = 0; i < nIfo; i++)
      for (let a = first; a < lengths[i]; a += size) {
        const n = Math.min(size, lengths[i] - a);
        parts.push(task(async () => store.write(i, a, await model.encode(i, detectors[i].channel(base[i], (a + n) * stride), a, n, r.signal))));
      }
    await settle(parts);
    const encodeS = (performance.now() - tEncode) / 1000;

    // 2. Slides: groups of shifts × blocks of W outputs, S·W ≤ the head's
    //    max batch. A request carries, per detector, the embeddings its
    //    group's offsets span (E ≈ W + S · spread) and gets S·W statistics
    //    back: shifts grouped in offset order, and W ≈ sqrt(maxPairs ·
    //    spread of offsets per shift), keep E small.
    const tHead = performance.now();
    const B = model.maxPairs;
    const longest = most(shifts.map((s) => s.outputs - first));
    const order = shifts.map((_, k) => k).sort((x, y) => offsets[nIfo - 1][x] - offsets[nIfo - 1][y] || x - y);
    let spread = 0;
    for (let i = 0; i < nIfo; i++) spread = Math.max(spread, (most(offsets[i]) - least(offsets[i])) / Math.max(1, shifts.length - 1));
    const W = Math.max(1, Math.min(longest, B, Math.max(64, Math.round(Math.sqrt(B * Math.max(spread, 1))))));
    const perRequest = Math.max(1, Math.floor(B / W));
    const groups: number[][] = [];
    for (let k = 0; k < order.length; k += perRequest) groups.push(order.slice(k, k + perRequest));
    // A few groups at a time: their statistics wait in memory until the group is done.
    const groupLimit = pLimit(Math.max(2, conc));
    const runGroup = async (group: number[]) => {
      const len = most(group.map((k) => shifts[k].outputs - first));
      const ys = group.map((k) => new Float32Array(shifts[k].outputs - first));
      const blocks: Array<Promise<void>> = [];
      for (let w0 = 0; w0 < len; w0 += W) {
        const n = Math.min(W, len - w0);
        blocks.push(
          task(async () => {
            // detector i's block starts at its group's smallest offset
            const lo = detectors.map((_, i) => least(group.map((k) => offsets[i][k])) + first + w0);
            const E = most(detectors.map((_, i) => most(group.map((k) => offsets[i][k])) + first + w0 + n - lo[i]));
            const emb = new Float32Array(nIfo * E * D);
            for (let i = 0; i < nIfo; i++) store.read(i, lo[i], E, emb, i * E * D);
            const off = new BigInt64Array(group.length * nIfo);
            group.forEach((k, s) => detectors.forEach((_, i) => (off[s * nIfo + i] = BigInt(offsets[i][k] + first + w0 - lo[i]))));
            const z = await model.pairs(emb, nIfo, E, off, n, r.signal);
            // outputs past a shorter shift's end paired zeros: dropped
            group.forEach((_, s) => {
              if (w0 < ys[s].length) ys[s].set(z.subarray(s * n, s * n + Math.min(n, ys[s].length - w0)), w0);
            });
          }),
        );
      }
      await settle(blocks);
      group.forEach((k, s) => r.onShift(k, ys[s]));
    };
    await settle(groups.map((g) => groupLimit(() => (failure ? Promise.resolve() : runGroup(g))).catch((e: unknown) => void (failure ??= { e }))));
    return {
      encodeS,
      headS: (performance.now() - tHead) / 1000,
      spilled: store.spilled,
      embeddings: lengths.reduce((a, n) => a + n, 0),
      wireBytes: model.wire.sent + model.wire.received - wire0,
    };
  } finally {
    store.close();
  }
}
