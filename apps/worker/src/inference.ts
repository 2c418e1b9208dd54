import type { ServerPool } from "@timeslide/kserve";
import { outputOf } from "@timeslide/kserve";

/**
 * One detector's whitened samples of one shift, from the stream start. The
 * job's reader fills them while earlier ones are being streamed, so a model
 * waits for `ready(n)` before copying samples below n.
 */
export interface Channel {
  readonly length: number;
  /** resolves when samples [0, n) can be copied; undefined when they can already */
  ready(n: number): Promise<void> | undefined;
  /** samples [a, b) into `dst` from index `at` (as float32) */
  copyTo(dst: Float32Array, at: number, a: number, b: number): void;
}

/** A channel whose samples are all there. */
export function arrayChannel(x: Float32Array | Float64Array): Channel {
  return {
    length: x.length,
    ready: () => undefined,
    copyTo: (dst, at, a, b) => dst.set(x.subarray(a, b), at),
  };
}

/**
 * The detection statistic of a multi-detector stream: `channels[i]` holds
 * detector i's whitened samples from the stream start; output j is the
 * statistic of the window that ends after sample (j + 1)·stride (windows
 * reaching before the stream start see zeros, as a snapshotter's zero initial
 * state does). Implementations: streaming through a snapshotter ensemble,
 * full windows to the bare model, or (in tests) onnxruntime in-process.
 */
export interface DetectionModel {
  readonly kernel: number; // samples
  readonly stride: number; // samples
  readonly batch: number; // windows per request
  /**
   * outputs [first, count): only those are computed where the implementation
   * can skip windows; an aborted `signal` stops sending and rejects
   */
  run(channels: Channel[], first: number, count: number, signal?: AbortSignal): Promise<Float32Array>;
}

/** Waits until every channel has its first n samples (clamped to its length). */
export async function channelsReady(channels: Channel[], n: number): Promise<void> {
  for (const c of channels) {
    const p = c.ready(Math.min(n, c.length));
    if (p) await p;
  }
}

export interface Geometry {
  kernel: number;
  stride: number;
  batch: number;
}

const DEFAULT_DEADLINE_MS = 60_000;

/** Snapshotter streaming: each request carries stride·batch new samples per detector. */
export class StreamingModel implements DetectionModel {
  readonly kernel: number;
  readonly stride: number;
  readonly batch: number;
  constructor(
    private readonly pool: ServerPool,
    private readonly model: string,
    g: Geometry,
    private readonly opts: {
      version?: string;
      input?: string;
      output?: string;
      deadlineMs?: number;
      inflight?: number;
      /** floats per window in the output (an encoder's embedding: D); default 1, the detection statistic */
      width?: number;
    } = {},
  ) {
    this.kernel = g.kernel;
    this.stride = g.stride;
    this.batch = g.batch;
  }

  get name(): string {
    return this.model;
  }

  /** outputs [first, first + count), `width` floats each (window-major) */
  async run(channels: Channel[], first: number, count: number, signal?: AbortSignal): Promise<Float32Array> {
    signal?.throwIfAborted();
    const U = this.stride * this.batch;
    const width = this.opts.width ?? 1;
    const nIfo = channels.length;
    const need = first + count; // outputs from the stream start
    const requests = Math.ceil(need / this.batch);
    // The sequence starts (zero state) at the last request boundary before
    // the first window's earliest sample: earlier requests feed no window asked for.
    const r0 = Math.max(0, Math.floor(((first + 1) * this.stride - this.kernel) / U));
    const seq = this.pool.openSequence({
      model: this.model,
      version: this.opts.version,
      geometry: { channels: nIfo, kernel: this.kernel, stride: this.stride, batch: this.batch },
      inputName: this.opts.input,
      outputs: this.opts.output ? [this.opts.output] : undefined,
      deadlineMs: this.opts.deadlineMs ?? DEFAULT_DEADLINE_MS,
    });
    const out = new Float32Array(count * width);
    const inflight = Math.max(1, this.opts.inflight ?? 4);
    const pending: Array<Promise<void>> = [];
    let failure: unknown;
    try {
      for (let r = r0; r < requests && failure === undefined; r++) {
        if (signal?.aborted) {
          failure = signal.reason;
          break;
        }
        await channelsReady(channels, (r + 1) * U);
        const update = new Float32Array(nIfo * U);
        for (let c = 0; c < nIfo; c++) {
          const src = channels[c];
          const a = r * U;
          const b = Math.min(src.length, a + U);
          if (b > a) src.copyTo(update, c * U, a, b);
        }
        const last = r === requests - 1;
        const p = seq.send(update, { end: last }).then((res) => {
          const y = (this.opts.output ? outputOf(res, this.opts.output) : res.outputs[0]).data as ArrayLike<number>;
          for (let w = 0; w < this.batch; w++) {
            const j = r * this.batch + w - first;
            if (j >= 0 && j < count) for (let d = 0; d < width; d++) out[j * width + d] = y[w * width + d];
          }
        });
        pending.push(p.catch((e) => void (failure ??= e)));
        // Backpressure: at most `inflight` requests of this sequence on the wire.
        if (pending.length >= inflight) await pending.shift();
      }
    } catch (e) {
      failure ??= e; // e.g. the reader failed: no more samples
    }
    // Stopped before the end: end the sequence on its server now, so its
    // slot frees at once (a sequence model has few; others wait for them).
    if (failure !== undefined) seq.close(failure instanceof Error ? failure : new Error(String(failure)));
    await Promise.all(pending);
    if (failure !== undefined) throw failure;
    return out;
  }
}

/** No snapshotter: full windows, `batch` per request, to the bare model. */
export class WindowModel implements DetectionModel {
  readonly kernel: number;
  readonly stride: number;
  readonly batch: number;
  constructor(
    private readonly pool: ServerPool,
    private readonly model: string,
    g: Geometry,
    private readonly opts: {
      version?: string;
      input?: string;
      output?: string;
      deadlineMs?: number;
      inflight?: number;
      /** the model takes exactly `batch` windows per request (no batch axis): a short last request is padded with zeros */
      fixedBatch?: boolean;
    } = {},
  ) {
    this.kernel = g.kernel;
    this.stride = g.stride;
    this.batch = g.batch;
  }

  async run(channels: Channel[], first: number, count: number, signal?: AbortSignal): Promise<Float32Array> {
    signal?.throwIfAborted();
    const nIfo = channels.length;
    const out = new Float32Array(count);
    const K = this.kernel;
    const inflight = Math.max(1, this.opts.inflight ?? 4);
    const pending: Array<Promise<void>> = [];
    let failure: unknown;
    for (let j0 = 0; j0 < count && failure === undefined; j0 += this.batch) {
      if (signal?.aborted) {
        failure = signal.reason;
        break;
      }
      const n = Math.min(this.batch, count - j0);
      await channelsReady(channels, (first + j0 + n) * this.stride);
      const sent = this.opts.fixedBatch ? this.batch : n;
      const x = new Float32Array(sent * nIfo * K); // zeros outside the stream (and in padding windows)
      for (let w = 0; w < n; w++) {
        const end = (first + j0 + w + 1) * this.stride; // window ends after this sample
        for (let c = 0; c < nIfo; c++) {
          const src = channels[c];
          const a = Math.max(0, end - K);
          const b = Math.min(src.length, end);
          if (b > a) src.copyTo(x, (w * nIfo + c) * K + (a - (end - K)), a, b);
        }
      }
      const p = this.pool
        .infer(
          { model: this.model, version: this.opts.version, inputs: [{ name: this.opts.input ?? "windows", datatype: "FP32", shape: [sent, nIfo, K], data: x }], outputs: this.opts.output ? [this.opts.output] : undefined },
          { deadlineMs: this.opts.deadlineMs ?? DEFAULT_DEADLINE_MS, signal },
        )
        .then((res) => {
          const y = (this.opts.output ? outputOf(res, this.opts.output) : res.outputs[0]).data as ArrayLike<number>;
          for (let w = 0; w < n; w++) out[j0 + w] = y[w];
        });
      pending.push(p.catch((e) => void (failure ??= e)));
      if (pending.length >= inflight) await pending.shift();
    }
    await Promise.all(pending);
    if (failure !== undefined) throw failure;
    return out;
  }
}
