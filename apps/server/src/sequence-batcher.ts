// Triton's sequence batcher for one model: sequence slots per instance, a
// FIFO backlog of sequences beyond them, implicit state and control inputs
// per slot, and the Direct and Oldest strategies. It knows nothing of ONNX
// Runtime: a batch goes to a `SequenceTarget` (a model version's queue, dynamic-batcher.ts) to run.
//
// What Triton does (server docs/user_guide/architecture.md "Stateful
// Models", model_config.proto ModelSequenceBatching), and what this does:
// - Direct: each instance has max(1, max_batch_size) slots; a sequence is
//   bound to one slot of one instance for its lifetime, and a batch of an
//   instance holds at most one request of each of its slots (executed as
//   soon as one slot is ready, unless `minimum_slot_utilization` asks to
//   wait up to `max_queue_delay_microseconds`). Triton fills the empty slots
//   of a batch with READY = false; here a batch holds only the ready slots
//   (READY is always true), so a model sees no padding rows.
// - Oldest: each instance has `max_candidate_sequences` slots; a batch takes
//   the oldest request of up to max(1, max_batch_size) of its candidate
//   sequences (one request per sequence), as soon as the largest
//   `preferred_batch_size` (or max_batch_size) is reached, else when the
//   oldest request has waited `max_queue_delay_microseconds`.
// - A new sequence (START) takes a free slot; when none is free it waits, with
//   its requests, in a FIFO backlog, and takes the next slot that frees. A
//   slot frees when its sequence's END request has run, or when the sequence
//   has had no request queued or running for `max_sequence_idle_microseconds`
//   (default 1 s); a later request of that sequence without START fails
//   ("must specify the START flag"). Sequences in the backlog do not idle out
//   (their requests are queued).
// - Statistics: a request's queue time runs from its arrival to the start of
//   its execution, backlog included; one execution per batch.
import { status } from "@grpc/grpc-js";
import type { ModelConfig } from "@timeslide/model-repo";
import { sequenceKey, type Datatype, type ReceivedSequenceFlags } from "@timeslide/kserve";
import { InferenceError, invalid } from "./errors.js";
import { cloneTensor, concatBatch, scalar, splitBatch, type HostTensor } from "./host-tensors.js";

/** Triton's default max_sequence_idle_microseconds. */
export const DEFAULT_SEQUENCE_IDLE_US = 1_000_000;

/** A request's sequence_id, sequence_start and sequence_end, as @timeslide/kserve reads them. */
export type SequenceFlags = ReceivedSequenceFlags;

export interface ControlSpec {
  name: string;
  kind: string;
  datatype: Datatype;
  falseValue: number | boolean;
  trueValue: number | boolean;
}

export interface StateSpec {
  input: string;
  output: string;
  datatype: Datatype;
  dims: number[];
  initial: () => HostTensor;
}

/** What the batcher needs to know of the model (from its config). */
export interface SequenceModel {
  readonly name: string;
  readonly config: ModelConfig;
  readonly maxBatchSize: number;
  readonly controls: ControlSpec[];
  readonly states: StateSpec[];
  /** model instances (instance_group counts summed) */
  readonly instanceCount: number;
}

export interface RunResult {
  outputs: Map<string, HostTensor>;
  inferNs: number;
  queueNs: number;
}

/** A model version that runs batches (its instances are shared by the lanes). */
export interface SequenceTarget {
  run(feeds: Map<string, HostTensor>, batch: number): Promise<RunResult>;
}

export interface SequenceResult {
  outputs: Map<string, HostTensor>;
  /** arrival to execution start, ns (backlog included) */
  queueNs: number;
  inferNs: number;
}

interface Req {
  target: SequenceTarget;
  inputs: Map<string, HostTensor>;
  flags: SequenceFlags;
  arrived: number;
  resolve: (r: SequenceResult) => void;
  reject: (e: Error) => void;
}

interface Seq {
  key: string;
  id: SequenceFlags["id"];
  state: Map<string, HostTensor>;
  queue: Req[];
  running: boolean;
  /** lane (instance) holding its slot; -1 while in the backlog */
  lane: number;
  idleTimer?: NodeJS.Timeout;
}

interface Lane {
  busy: boolean;
  seqs: Set<Seq>;
  timer?: NodeJS.Timeout;
}

export interface BatcherLogger {
  info(obj: object, msg?: string): void;
}

const now = () => performance.now();
const ms2ns = (ms: number) => Math.round(ms * 1e6);

/** Sequence slots of a config as Triton counts them: instances × (Direct: max(1, max_batch_size); Oldest: max_candidate_sequences). */
export function slotsPerInstance(config: ModelConfig): number {
  const sb = config.sequence_batching;
  if (sb?.oldest) return Math.max(1, Number(sb.oldest.max_candidate_sequences) || 0);
  return Math.max(1, Number(config.max_batch_size) || 0);
}

export class SequenceBatcher {
  /** sequences holding a slot or waiting in the backlog, by id */
  readonly sequences = new Map<string, Seq>();
  private readonly backlog: Seq[] = [];
  private readonly lanes: Lane[] = [];
  private model!: SequenceModel;
  private laneCount = 0;
  private perLane = 1;
  private oldest = false;
  private maxBatch = 1;
  private delayMs = 0;
  private minUtil = 0;
  private preferred: number[] = [];
  private idleMs = DEFAULT_SEQUENCE_IDLE_US / 1000;
  private closed = false;

  constructor(
    model: SequenceModel,
    private readonly log?: BatcherLogger,
  ) {
    this.configure(model);
  }

  /** (Re)reads the config; sequences, state and backlog carry over (a reload does not reset running streams). */
  configure(model: SequenceModel): void {
    this.model = model;
    const sb = model.config.sequence_batching ?? {};
    this.oldest = Boolean(sb.oldest);
    this.laneCount = Math.max(1, model.instanceCount);
    this.perLane = slotsPerInstance(model.config);
    this.maxBatch = Math.max(1, model.maxBatchSize);
    const strategy = (this.oldest ? sb.oldest : sb.direct) ?? {};
    this.delayMs = (Number(strategy.max_queue_delay_microseconds) || 0) / 1000;
    this.minUtil = this.oldest ? 0 : Number((sb.direct ?? {}).minimum_slot_utilization) || 0;
    this.preferred = this.oldest
      ? ((sb.oldest?.preferred_batch_size ?? []) as Array<number | string>).map(Number).filter((n) => n > 0 && n <= this.maxBatch).sort((a, b) => a - b)
      : [];
    this.idleMs = (Number(sb.max_sequence_idle_microseconds) || DEFAULT_SEQUENCE_IDLE_US) / 1000;
    while (this.lanes.length < this.laneCount) this.lanes.push({ busy: false, seqs: new Set() });
    this.schedule();
  }

  /** Slots in all: instances × slots per instance. */
  get slots(): number {
    return this.laneCount * this.perLane;
  }
  /** Sequences holding a slot. */
  get active(): number {
    let n = 0;
    for (const l of this.lanes) n += l.seqs.size;
    return n;
  }
  /** Sequences waiting for a slot. */
  get waiting(): number {
    return this.backlog.length;
  }

  /** Queues one request of a sequence; resolves with its outputs (state outputs removed). */
  submit(target: SequenceTarget, inputs: Map<string, HostTensor>, flags: SequenceFlags): Promise<SequenceResult> {
    if (this.closed) return Promise.reject(new InferenceError(status.UNAVAILABLE, `model '${this.model.name}' is unloaded`));
    const key = sequenceKey(flags.id);
    let s = this.sequences.get(key);
    if (!s) {
      if (!flags.start) {
        return Promise.reject(
          invalid(`inference request for sequence ${String(flags.id)} to model '${this.model.name}' must specify the START flag on the first request of the sequence`),
        );
      }
      s = { key, id: flags.id, state: new Map(), queue: [], running: false, lane: -1 };
      this.sequences.set(key, s);
      this.place(s);
    }
    const seq = s;
    this.clearIdle(seq);
    return new Promise<SequenceResult>((resolve, reject) => {
      seq.queue.push({ target, inputs, flags, arrived: now(), resolve, reject });
      this.schedule();
    });
  }

  private freeLane(): number {
    let best = -1;
    for (let i = 0; i < this.laneCount; i++) {
      const n = this.lanes[i].seqs.size;
      if (n < this.perLane && (best < 0 || n < this.lanes[best].seqs.size)) best = i;
    }
    return best;
  }

  private place(s: Seq): void {
    const lane = this.backlog.length ? -1 : this.freeLane();
    if (lane < 0) {
      this.backlog.push(s);
      s.lane = -1;
      return;
    }
    s.lane = lane;
    this.lanes[lane].seqs.add(s);
  }

  private release(s: Seq, why: "end" | "idle" | "unload"): void {
    this.clearIdle(s);
    if (this.sequences.get(s.key) === s) this.sequences.delete(s.key);
    if (s.lane >= 0) this.lanes[s.lane]?.seqs.delete(s);
    else {
      const i = this.backlog.indexOf(s);
      if (i >= 0) this.backlog.splice(i, 1);
    }
    s.lane = -1;
    if (why === "idle") this.log?.info({ model: this.model.name, sequence: String(s.id), idle_us: this.idleMs * 1000 }, "idle sequence released its slot");
  }

  private clearIdle(s: Seq): void {
    if (s.idleTimer) clearTimeout(s.idleTimer);
    s.idleTimer = undefined;
  }

  private armIdle(s: Seq): void {
    this.clearIdle(s);
    s.idleTimer = setTimeout(() => {
      s.idleTimer = undefined;
      if (!s.running && s.queue.length === 0 && s.lane >= 0) {
        this.release(s, "idle");
        this.schedule();
      }
    }, this.idleMs);
    s.idleTimer.unref();
  }

  private schedule(): void {
    if (this.closed) return;
    // Free slots go to the backlog first, oldest sequence first.
    while (this.backlog.length) {
      const lane = this.freeLane();
      if (lane < 0) break;
      const s = this.backlog.shift()!;
      s.lane = lane;
      this.lanes[lane].seqs.add(s);
    }
    for (let i = 0; i < this.lanes.length; i++) if (!this.lanes[i].busy) this.tryBatch(i);
  }

  private tryBatch(i: number): void {
    const lane = this.lanes[i];
    if (lane.timer) {
      clearTimeout(lane.timer);
      lane.timer = undefined;
    }
    let ready = [...lane.seqs].filter((s) => !s.running && s.queue.length > 0);
    if (!ready.length) return;
    ready.sort((a, b) => a.queue[0].arrived - b.queue[0].arrived);
    // One model version per batch.
    const target = ready[0].queue[0].target;
    ready = ready.filter((s) => s.queue[0].target === target);
    const waited = now() - ready[0].queue[0].arrived;
    let n: number;
    if (this.oldest) {
      const full = Math.min(this.maxBatch, this.preferred.length ? this.preferred[this.preferred.length - 1] : this.maxBatch);
      if (ready.length >= full) n = full;
      else if (this.delayMs > 0 && waited < this.delayMs) return this.wait(i, this.delayMs - waited);
      else {
        const fits = this.preferred.filter((p) => p <= ready.length);
        n = fits.length ? fits[fits.length - 1] : ready.length;
      }
    } else {
      if (this.minUtil > 0 && ready.length / this.perLane < this.minUtil && waited < this.delayMs) return this.wait(i, this.delayMs - waited);
      n = Math.min(this.maxBatch, ready.length);
    }
    void this.execute(i, ready.slice(0, n));
  }

  private wait(i: number, ms: number): void {
    const lane = this.lanes[i];
    lane.timer = setTimeout(() => {
      lane.timer = undefined;
      if (!lane.busy) this.tryBatch(i);
    }, Math.max(0, ms));
    lane.timer.unref();
  }

  /** The feeds of one request: its inputs, the slot's state (initial at START) and the control inputs. */
  private feedsOf(s: Seq, r: Req): Map<string, HostTensor> {
    const m = this.model;
    const feeds = new Map(r.inputs);
    if (r.flags.start) s.state.clear();
    for (const st of m.states) {
      const cur = s.state.get(st.input);
      feeds.set(st.input, cur ? cloneTensor(cur) : st.initial());
    }
    const dims = m.maxBatchSize > 0 ? [1, 1] : [1];
    for (const c of m.controls) {
      let value: number | bigint | boolean | string;
      if (c.kind === "CONTROL_SEQUENCE_START") value = r.flags.start ? c.trueValue : c.falseValue;
      else if (c.kind === "CONTROL_SEQUENCE_END") value = r.flags.end ? c.trueValue : c.falseValue;
      else if (c.kind === "CONTROL_SEQUENCE_READY") value = c.trueValue;
      else value = typeof r.flags.id === "string" ? r.flags.id : BigInt(r.flags.id);
      feeds.set(c.name, scalar(c.datatype, dims, typeof value === "boolean" ? (value ? 1 : 0) : value));
    }
    return feeds;
  }

  private async execute(i: number, seqs: Seq[]): Promise<void> {
    const lane = this.lanes[i];
    lane.busy = true;
    const reqs = seqs.map((s) => {
      s.running = true;
      this.clearIdle(s);
      return s.queue.shift()!;
    });
    const started = now();
    try {
      const perReq = seqs.map((s, k) => this.feedsOf(s, reqs[k]));
      let feeds = perReq[0];
      if (perReq.length > 1) {
        feeds = new Map();
        for (const name of perReq[0].keys()) feeds.set(name, concatBatch(perReq.map((f) => f.get(name)!)));
      }
      const r = await reqs[0].target.run(feeds, this.model.maxBatchSize > 0 ? reqs.length : 1);
      const parts = reqs.length > 1 ? splitAll(r.outputs, reqs.length) : [r.outputs];
      seqs.forEach((s, k) => {
        const outputs = parts[k];
        for (const st of this.model.states) {
          const t = outputs.get(st.output);
          outputs.delete(st.output);
          if (t) s.state.set(st.input, t);
        }
        reqs[k].resolve({ outputs, inferNs: r.inferNs, queueNs: ms2ns(started - reqs[k].arrived) + r.queueNs });
      });
    } catch (e) {
      for (const r of reqs) r.reject(e as Error);
    } finally {
      lane.busy = false;
      seqs.forEach((s, k) => {
        s.running = false;
        if (reqs[k].flags.end) this.ended(s);
        else if (s.queue.length === 0 && s.lane >= 0) this.armIdle(s);
      });
      this.schedule();
    }
  }

  /** After an END request: the slot frees, unless a new sequence with the same id (START) is already queued behind it. */
  private ended(s: Seq): void {
    while (s.queue.length && !s.queue[0].flags.start) {
      const r = s.queue.shift()!;
      r.reject(invalid(`inference request for sequence ${String(s.id)} to model '${this.model.name}' must specify the START flag on the first request of the sequence`));
    }
    if (s.queue.length === 0) this.release(s, "end");
  }

  /** Unload: every queued request fails, every slot frees. */
  close(): void {
    this.closed = true;
    for (const l of this.lanes) if (l.timer) clearTimeout(l.timer);
    for (const s of [...this.sequences.values()]) {
      for (const r of s.queue.splice(0)) r.reject(new InferenceError(status.UNAVAILABLE, `model '${this.model.name}' is unloaded`));
      this.release(s, "unload");
    }
  }
}

function splitAll(outputs: Map<string, HostTensor>, n: number): Map<string, HostTensor>[] {
  const parts = Array.from({ length: n }, () => new Map<string, HostTensor>());
  const sizes = Array.from({ length: n }, () => 1);
  for (const [name, t] of outputs) splitBatch(t, sizes).forEach((p, k) => parts[k].set(name, p));
  return parts;
}
