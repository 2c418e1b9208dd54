// Streaming through a server-side snapshotter: each request carries only
// the `stride·batch` new samples per channel; the server keeps the last
// `kernel + (batch−1)·stride` samples of the sequence as implicit state.
//
// The client keeps the same number of samples (as of the last answered
// update) so that, when a server dies mid-sequence, the sequence can be
// restarted elsewhere: re-send those samples (zero-padded at the front to
// whole updates) with sequence_start, discard their outputs, then re-send
// the unanswered updates. The new server's state is then identical to the
// old one's, so outputs are neither lost nor duplicated.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { KServeError, isServerFailure, type InferRequest, type InferResult, type RequestedOutput } from "./client.js";
import type { ParamValue, SequenceId } from "./params.js";

export interface SnapshotGeometry {
  /** Detectors (ifos) per update. */
  channels: number;
  /** Window length, samples. */
  kernel: number;
  /** Samples between successive windows. */
  stride: number;
  /** Windows per request. */
  batch: number;
}

/** Samples per channel in one update: stride·batch. */
export function updateLength(g: SnapshotGeometry): number {
  return g.stride * g.batch;
}

/** Samples per channel the snapshotter keeps: kernel + (batch−1)·stride. */
export function stateLength(g: SnapshotGeometry): number {
  return g.kernel + (g.batch - 1) * g.stride;
}

export function checkGeometry(g: SnapshotGeometry): void {
  for (const k of ["channels", "kernel", "stride", "batch"] as const) {
    if (!Number.isInteger(g[k]) || g[k] < 1) throw new RangeError(`snapshot geometry: ${k} = ${g[k]} must be a positive integer`);
  }
}

/**
 * Update k of a stream given per-channel sample arrays: samples
 * [k·U, (k+1)·U) of every channel, laid out [channels, U].
 */
export function sliceUpdate(channels: readonly Float32Array[], k: number, g: SnapshotGeometry): Float32Array {
  const U = updateLength(g);
  if (channels.length !== g.channels) throw new RangeError(`sliceUpdate: ${channels.length} channels given, geometry has ${g.channels}`);
  const out = new Float32Array(g.channels * U);
  channels.forEach((ch, c) => {
    if ((k + 1) * U > ch.length) throw new RangeError(`sliceUpdate: update ${k} needs samples up to ${(k + 1) * U}, channel ${c} has ${ch.length}`);
    out.set(ch.subarray(k * U, (k + 1) * U), c * U);
  });
  return out;
}

/**
 * Exclusive end (in samples from the start of the sequence) of window j
 * of the response to update k: (k+1)·U − (batch−1−j)·stride. Windows that
 * end before `kernel` samples have been sent include the zero initial state.
 */
export function windowEnd(k: number, j: number, g: SnapshotGeometry): number {
  return (k + 1) * updateLength(g) - (g.batch - 1 - j) * g.stride;
}

/** A random sequence id in [1, 2^63): ids must not collide between clients sharing a server. */
export function randomSequenceId(): bigint {
  const v = randomBytes(8).readBigUInt64BE(0) & (2n ** 63n - 1n);
  return v === 0n ? 1n : v;
}

/** Anything that can carry one request of the sequence (an InferStream, or a pool's sticky stream). */
export interface SequenceCarrier {
  readonly endpoint: string;
  infer(req: InferRequest, opts?: { deadlineMs?: number; signal?: AbortSignal }): Promise<InferResult>;
}

/**
 * Gives a SequenceStream somewhere to send. `acquire` returns a carrier on
 * a healthy server, avoiding the endpoints in `exclude` when it can;
 * `failed` reports a server failure; `begin`/`done` bracket each request
 * (in-flight accounting; `begin` may wait for capacity).
 */
export interface CarrierProvider {
  /** `sequence`: the model (and version) the sequence runs, so a provider can respect the servers' sequence slots. */
  acquire(exclude: ReadonlySet<string>, sequence?: { model: string; version?: string }): Promise<SequenceCarrier>;
  failed?(carrier: SequenceCarrier, err: Error): void;
  begin?(carrier: SequenceCarrier): Promise<void>;
  done?(carrier: SequenceCarrier): void;
  /** The sequence no longer lives on this carrier (ended, moved or aborted). */
  release?(carrier: SequenceCarrier): void;
}

export interface SequenceStreamOptions {
  /** A single stream (no failover) or a provider (failover across servers). */
  carrier: SequenceCarrier | CarrierProvider;
  model: string;
  version?: string;
  geometry: SnapshotGeometry;
  /** Model input that receives the update; default "update". */
  inputName?: string;
  outputs?: Array<string | RequestedOutput>;
  /** Default: a random 63-bit integer. */
  sequenceId?: SequenceId;
  /** Client deadline per request, ms. */
  deadlineMs?: number;
  /** Server-side "timeout" parameter per request, µs. */
  timeoutUs?: number;
  parameters?: Record<string, ParamValue>;
  /** How many times one update may be moved to another server; default 3. */
  maxFailovers?: number;
  /**
   * Rebuild the sequence in place when the server answers that it lost it
   * (the in-band "must specify the START flag" error after idle expiry);
   * default true.
   */
  restartOnLostState?: boolean;
  /** Called whenever the sequence moves to another server. */
  onFailover?: (info: { from: string; to: string; error: Error; replayed: number; resent: number }) => void;
}

interface Pending {
  index: number;
  data: Float32Array;
  end: boolean;
  result?: InferResult;
  resolve: (r: InferResult) => void;
  reject: (e: Error) => void;
}

/** The in-band error of a server that no longer knows the sequence (Triton's wording, and ours). */
function lostState(err: Error): boolean {
  return err instanceof KServeError && err.inBand && /START flag|sequence_start first/i.test(err.details);
}

function isProvider(x: SequenceCarrier | CarrierProvider): x is CarrierProvider {
  return typeof (x as CarrierProvider).acquire === "function";
}

/**
 * One sequence through a snapshotter model. `send` may be called again
 * before earlier sends resolve (pipelining); results resolve in order.
 */
export class SequenceStream {
  readonly sequenceId: SequenceId;
  readonly geometry: SnapshotGeometry;
  private readonly U: number;
  private readonly S: number;
  private readonly opts: SequenceStreamOptions;
  private readonly provider: CarrierProvider;
  /** Last S samples per channel as of the last answered update (channel-major). */
  private readonly state: Float32Array;
  private readonly queue: Pending[] = [];
  private carrier: SequenceCarrier | undefined;
  private connecting: Promise<SequenceCarrier> | undefined;
  private generation = 0;
  private sent = 0;
  private acked = 0;
  private failovers = 0;
  private ended = false;
  private fatal: Error | undefined;
  private startOnNext = true;
  private failingOver = false;
  /** Serialises writes so requests of the sequence reach the server in order. */
  private writeChain: Promise<void> = Promise.resolve();
  /** Requests written (replays included) and bytes of update payload written. */
  readonly counters = { requests: 0, replayed: 0, payloadBytes: 0, failovers: 0, restarts: 0 };

  constructor(opts: SequenceStreamOptions) {
    checkGeometry(opts.geometry);
    this.opts = opts;
    this.geometry = opts.geometry;
    this.U = updateLength(opts.geometry);
    this.S = stateLength(opts.geometry);
    this.state = new Float32Array(opts.geometry.channels * this.S);
    this.sequenceId = opts.sequenceId ?? randomSequenceId();
    const c = opts.carrier;
    this.provider = isProvider(c) ? c : { acquire: async () => c };
  }

  /** Samples per channel per update. */
  get updateSamples(): number {
    return this.U;
  }

  /** Endpoint currently serving the sequence (undefined before the first send). */
  get endpoint(): string | undefined {
    return this.carrier?.endpoint;
  }

  /** Updates answered so far. */
  get answered(): number {
    return this.acked;
  }

  /** Copy of the retained samples, [channels, kernel + (batch−1)·stride], as of the last answered update. */
  retained(): Float32Array {
    return this.state.slice();
  }

  /**
   * The updates that rebuild the current state from a zero state:
   * ceil(S/U) updates, the retained samples zero-padded at the front.
   */
  replayUpdates(): Float32Array[] {
    const { channels } = this.geometry;
    const n = Math.ceil(this.S / this.U);
    const pad = n * this.U - this.S;
    const out: Float32Array[] = [];
    for (let r = 0; r < n; r++) {
      const u = new Float32Array(channels * this.U);
      for (let c = 0; c < channels; c++) {
        for (let t = 0; t < this.U; t++) {
          const pos = r * this.U + t - pad; // position within the retained window
          if (pos >= 0) u[c * this.U + t] = this.state[c * this.S + pos];
        }
      }
      out.push(u);
    }
    return out;
  }

  /**
   * Sends one update, [channels, stride·batch] channel-major (row-major
   * [1, channels, stride·batch] as the model input). `end` closes the
   * sequence on the server.
   */
  send(update: Float32Array, options: { end?: boolean } = {}): Promise<InferResult> {
    if (this.fatal) return Promise.reject(this.fatal);
    if (this.ended) return Promise.reject(new Error(`sequence ${String(this.sequenceId)}: already ended`));
    const want = this.geometry.channels * this.U;
    if (!(update instanceof Float32Array) || update.length !== want) {
      return Promise.reject(
        new RangeError(
          `sequence ${String(this.sequenceId)}: update must be a Float32Array of ${this.geometry.channels} × ${this.U} = ${want} samples, got ${update instanceof Float32Array ? update.length : typeof update}`,
        ),
      );
    }
    if (options.end) this.ended = true;
    return new Promise<InferResult>((resolve, reject) => {
      const p: Pending = { index: this.sent++, data: update.slice(), end: Boolean(options.end), resolve, reject };
      this.queue.push(p);
      // During a failover the queue is re-sent as a whole once the new server is chosen.
      if (!this.failingOver) void this.transmit(p, this.generation);
    });
  }

  /** Sends the last update with sequence_end. */
  end(update: Float32Array): Promise<InferResult> {
    return this.send(update, { end: true });
  }

  private async currentCarrier(exclude: ReadonlySet<string> = new Set()): Promise<SequenceCarrier> {
    if (this.carrier) return this.carrier;
    if (!this.connecting) {
      this.connecting = this.provider.acquire(exclude, { model: this.opts.model, version: this.opts.version }).finally(() => (this.connecting = undefined));
    }
    this.carrier = await this.connecting;
    return this.carrier;
  }

  private request(data: Float32Array, start: boolean, end: boolean): InferRequest {
    const { channels } = this.geometry;
    return {
      model: this.opts.model,
      version: this.opts.version,
      inputs: [{ name: this.opts.inputName ?? "update", datatype: "FP32", shape: [1, channels, this.U], data }],
      outputs: this.opts.outputs,
      sequence: { id: this.sequenceId, start, end },
      timeoutUs: this.opts.timeoutUs,
      parameters: this.opts.parameters,
    };
  }

  /**
   * Writes one request on the carrier, after every earlier write of this
   * sequence (the chain advances once a request is written, not answered),
   * with in-flight accounting around it.
   */
  private write(carrier: SequenceCarrier, data: Float32Array, end: boolean): Promise<InferResult> {
    const start = this.startOnNext;
    this.startOnNext = false;
    const req = this.request(data, start, end);
    this.counters.requests++;
    this.counters.payloadBytes += data.byteLength;
    let began = false;
    const issued = this.writeChain.then(async () => {
      await this.provider.begin?.(carrier);
      began = true;
      return { result: carrier.infer(req, { deadlineMs: this.opts.deadlineMs }) };
    });
    this.writeChain = issued.then(
      () => undefined,
      () => undefined,
    );
    return issued
      .then((box) => box.result)
      .finally(() => {
        if (began) this.provider.done?.(carrier);
      });
  }

  private async transmit(p: Pending, gen: number, on?: SequenceCarrier): Promise<void> {
    let carrier: SequenceCarrier;
    try {
      carrier = on ?? (await this.currentCarrier());
    } catch (err) {
      this.abort(err as Error);
      return;
    }
    if (gen !== this.generation) return; // a failover re-sends it
    try {
      const r = await this.write(carrier, p.data, p.end);
      if (gen !== this.generation) return;
      p.result = r;
      this.drain();
    } catch (err) {
      if (gen !== this.generation) return;
      this.onError(carrier, err as Error);
    }
  }

  /** Resolves answered updates in order and folds them into the retained state. */
  private drain(): void {
    while (this.queue.length && this.queue[0].result) {
      const p = this.queue.shift()!;
      this.advanceState(p.data);
      this.acked++;
      this.failovers = 0;
      if (p.end) this.leave();
      p.resolve(p.result!);
    }
  }

  private leave(): void {
    if (this.carrier) this.provider.release?.(this.carrier);
    this.carrier = undefined;
  }

  private advanceState(update: Float32Array): void {
    const { channels } = this.geometry;
    const { S, U } = this;
    for (let c = 0; c < channels; c++) {
      const row = this.state.subarray(c * S, (c + 1) * S);
      const u = update.subarray(c * U, (c + 1) * U);
      if (U >= S) row.set(u.subarray(U - S));
      else {
        row.copyWithin(0, U);
        row.set(u, S - U);
      }
    }
  }

  private onError(carrier: SequenceCarrier, err: Error): void {
    const budgetLeft = this.failovers < (this.opts.maxFailovers ?? 3);
    if (budgetLeft && (this.opts.restartOnLostState ?? true) && lostState(err)) {
      // The server forgot the sequence (idle expiry, restart behind a proxy):
      // rebuild it in place, same server.
      this.failovers++;
      this.counters.restarts++;
      void this.failover(carrier, err, true);
      return;
    }
    const recoverable = isServerFailure(err) && isProvider(this.opts.carrier);
    if (!recoverable || !budgetLeft) {
      this.abort(err);
      return;
    }
    this.failovers++;
    this.counters.failovers++;
    this.provider.failed?.(carrier, err);
    void this.failover(carrier, err, false);
  }

  private async failover(from: SequenceCarrier, err: Error, sameServer: boolean): Promise<void> {
    const gen = ++this.generation;
    let to: SequenceCarrier;
    if (sameServer) {
      to = from;
    } else {
      this.leave();
      this.failingOver = true;
      try {
        to = await this.currentCarrier(new Set([from.endpoint]));
      } catch (e) {
        this.failingOver = false;
        this.abort(new Error(`sequence ${String(this.sequenceId)}: no server to fail over to after ${err.message}: ${(e as Error).message}`));
        return;
      }
    }
    this.failingOver = false;
    if (gen !== this.generation) return;
    this.startOnNext = true;
    const replay = this.acked > 0 ? this.replayUpdates() : [];
    const resend = this.queue.map((p) => {
      p.result = undefined;
      return p;
    });
    if (!sameServer) this.opts.onFailover?.({ from: from.endpoint, to: to.endpoint, error: err, replayed: replay.length, resent: resend.length });
    // Replays rebuild the state; their outputs duplicate answered ones and are dropped.
    for (const u of replay) {
      this.counters.replayed++;
      this.write(to, u, false).then(
        () => undefined,
        (e: Error) => {
          if (gen === this.generation) this.onError(to, e);
        },
      );
    }
    for (const p of resend) void this.transmit(p, gen, to);
  }

  /**
   * Gives the sequence up before its end (the caller stopped: a failed job,
   * an abort). Unanswered sends reject with `reason`. If the sequence lives
   * on a server, one zero update with `sequence_end` follows its earlier
   * requests (its answer dropped), so the server frees the sequence's slot at
   * once instead of after max_sequence_idle_microseconds (on Triton a
   * sequence model has few slots and further sequences wait for them);
   * then the carrier is released. Nothing to do after `end` was sent.
   */
  close(reason: Error = new Error(`sequence ${String(this.sequenceId)}: closed before its end`)): void {
    if (this.fatal || this.ended) return;
    this.ended = true;
    this.fatal = reason;
    this.generation++;
    for (const p of this.queue.splice(0)) p.reject(reason);
    const carrier = this.carrier;
    this.carrier = undefined;
    if (!carrier) {
      // a carrier still being acquired carries nothing of this sequence yet
      this.connecting?.then(
        (c) => {
          if (this.carrier === c) this.carrier = undefined;
          this.provider.release?.(c);
        },
        () => undefined,
      );
      return;
    }
    if (this.startOnNext) {
      this.provider.release?.(carrier); // no START on this carrier: nothing on its server
      return;
    }
    const zeros = new Float32Array(this.geometry.channels * this.U);
    this.write(carrier, zeros, true).then(
      () => this.provider.release?.(carrier),
      () => this.provider.release?.(carrier),
    );
  }

  private abort(err: Error): void {
    this.fatal ??= err;
    this.generation++;
    this.leave();
    for (const p of this.queue.splice(0)) p.reject(err);
  }
}

/** Error raised when the provider has no usable server. */
export function noServerError(details: string): KServeError {
  return new KServeError({ code: grpc.status.UNAVAILABLE, details, endpoint: "pool" });
}
