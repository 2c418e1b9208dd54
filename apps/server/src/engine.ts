import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import {
  checkModelEntry,
  configWarnings,
  gpuConfigNotes,
  folderSkipReason,
  listModelNames,
  readModel,
  repositoryLookup,
  type ModelConfig,
  type ModelEntry,
} from "@timeslide/model-repo";
import type { Logger } from "pino";
import { InferenceError, invalid, notFound } from "./errors.js";
import { OrtInstance } from "./instances.js";
import type { EngineObserver } from "./metrics.js";
import { SequenceBatcher, type ControlSpec, type SequenceFlags, type SequenceModel, type StateSpec } from "./sequence-batcher.js";
import { concatBatch, configToDatatype, elementCount, splitBatch, zeros, type Datatype, type HostTensor } from "./tensors.js";

export type { SequenceFlags } from "./sequence-batcher.js";

export interface ExecRequest {
  inputs: Map<string, HostTensor>;
  sequence?: SequenceFlags;
}

class Duration {
  count = 0;
  ns = 0;
  add(ns: number): void {
    this.count++;
    this.ns += ns;
  }
  toJSON() {
    return { count: this.count, ns: Math.round(this.ns) };
  }
}

/** Per model version counters, as Triton's ModelStatistics reports them. */
export class VersionStats {
  inference_count = 0;
  execution_count = 0;
  last_inference = 0;
  success = new Duration();
  fail = new Duration();
  queue = new Duration();
  compute_input = new Duration();
  compute_infer = new Duration();
  compute_output = new Duration();
  readonly batch = new Map<number, { compute_input: Duration; compute_infer: Duration; compute_output: Duration }>();

  addExecution(batch: number, inputNs: number, inferNs: number, outputNs: number): void {
    this.execution_count++;
    let b = this.batch.get(batch);
    if (!b) this.batch.set(batch, (b = { compute_input: new Duration(), compute_infer: new Duration(), compute_output: new Duration() }));
    b.compute_input.add(inputNs);
    b.compute_infer.add(inferNs);
    b.compute_output.add(outputNs);
  }
}

interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** Full shape including the batch dimension (as -1) when max_batch_size > 0. */
  dims: number[];
  optional: boolean;
  reshape?: number[];
}

interface Job {
  feeds: Map<string, HostTensor>;
  batch: number;
  enqueued: number;
  resolve: (r: { outputs: Map<string, HostTensor>; inferNs: number; queueNs: number }) => void;
  reject: (e: Error) => void;
}

const now = () => performance.now();
/** Runs handed to one instance's thread at a time: one computing, one waiting in its message queue. */
const PIPELINE_DEPTH = 2;

const queuedBatch = (q: Job[]) => q.reduce((a, j) => a + j.batch, 0);
const ms2ns = (ms: number) => ms * 1e6;

/** One served version of a model. */
abstract class ServedVersion {
  readonly stats = new VersionStats();
  inflight = 0;
  private drained: (() => void) | undefined;
  constructor(readonly version: number) {}
  abstract close(): Promise<void>;

  enter(): void {
    this.inflight++;
  }
  leave(): void {
    if (--this.inflight === 0 && this.drained) this.drained();
  }
  /** Resolves once no request is in flight (for unload without dropping requests). */
  drain(): Promise<void> {
    if (this.inflight === 0) return Promise.resolve();
    return new Promise((r) => (this.drained = r));
  }
}

class OnnxVersion extends ServedVersion {
  private readonly queue: Job[] = [];
  constructor(
    version: number,
    readonly instances: OrtInstance[],
    private readonly model: ServedModel,
  ) {
    super(version);
  }

  run(feeds: Map<string, HostTensor>, batch: number): Promise<{ outputs: Map<string, HostTensor>; inferNs: number; queueNs: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ feeds, batch, enqueued: now(), resolve, reject });
      this.pump();
    });
  }

  // Give each instance the oldest request; with dynamic batching, merge the
  // compatible requests queued behind it, up to max_batch_size. An instance
  // takes a second request while it computes (PIPELINE_DEPTH): its thread
  // then starts the next run at once instead of idling for a round trip
  // through this event loop, which is busy with gRPC. With dynamic batching
  // the second slot waits for a full batch, so requests still gather.
  private pump(): void {
    for (let depth = 1; depth <= PIPELINE_DEPTH; depth++) {
      for (const inst of this.instances) {
        if (this.queue.length === 0) return;
        if (inst.running >= depth) continue;
        if (depth > 1 && this.model.dynamicBatching && queuedBatch(this.queue) < this.model.maxBatchSize) return;
        const first = this.queue.shift()!;
        const jobs = [first];
        if (this.model.dynamicBatching) {
          let total = first.batch;
          for (let i = 0; i < this.queue.length && total < this.model.maxBatchSize; ) {
            const j = this.queue[i];
            if (total + j.batch <= this.model.maxBatchSize && compatible(first.feeds, j.feeds)) {
              jobs.push(j);
              total += j.batch;
              this.queue.splice(i, 1);
            } else i++;
          }
        }
        void this.execute(inst, jobs);
      }
    }
  }

  private async execute(inst: OrtInstance, jobs: Job[]): Promise<void> {
    inst.running++;
    const started = now();
    try {
      let feeds = jobs[0].feeds;
      const sizes = jobs.map((j) => j.batch);
      const t0 = now();
      if (jobs.length > 1) {
        feeds = new Map();
        for (const name of jobs[0].feeds.keys()) feeds.set(name, concatBatch(jobs.map((j) => j.feeds.get(name)!)));
      }
      const t1 = now();
      const r = await inst.run(feeds, this.model.fetches);
      const t2 = now();
      const parts = jobs.length > 1 ? splitOutputs(r.outputs, sizes) : [r.outputs];
      const t3 = now();
      const total = sizes.reduce((a, b) => a + b, 0);
      this.stats.addExecution(total, ms2ns(t1 - t0), r.inferNs, ms2ns(t3 - t2));
      this.model.observer?.execution(this.model.name, this.version, total, jobs.map((j) => (started - j.enqueued) / 1000), r.inferNs / 1e9);
      jobs.forEach((j, i) => j.resolve({ outputs: parts[i], inferNs: r.inferNs, queueNs: ms2ns(started - j.enqueued) }));
    } catch (e) {
      const err = ortInputError(this.model.name, e as Error);
      for (const j of jobs) j.reject(err);
    } finally {
      inst.running--;
      this.pump();
    }
  }

  async close(): Promise<void> {
    await this.drain();
    await Promise.all(this.instances.map((i) => i.close()));
  }
}

class EnsembleVersion extends ServedVersion {
  async close(): Promise<void> {
    await this.drain();
  }
}

/**
 * ONNX Runtime refusing a request's tensors (dimensions, rank, data type, a
 * node that can't take the shape) is the request's fault, not the server's:
 * INVALID_ARGUMENT naming the model, so clients do not retry it elsewhere.
 */
function ortInputError(model: string, e: Error): Error {
  const msg = e?.message ?? String(e);
  if (/invalid dimensions|Invalid rank|Unexpected input data type|input data type|Non-zero status code returned while running/i.test(msg) && !/allocat/i.test(msg)) {
    return invalid(`model '${model}': ONNX Runtime refused the input: ${msg.replace(/\s+/g, " ").trim()}`);
  }
  return e;
}

function compatible(a: Map<string, HostTensor>, b: Map<string, HostTensor>): boolean {
  if (a.size !== b.size) return false;
  for (const [name, t] of a) {
    const u = b.get(name);
    if (!u || u.datatype !== t.datatype || u.dims.length !== t.dims.length) return false;
    for (let i = 1; i < t.dims.length; i++) if (u.dims[i] !== t.dims[i]) return false;
  }
  return true;
}

function splitOutputs(outputs: Map<string, HostTensor>, sizes: number[]): Map<string, HostTensor>[] {
  const parts = sizes.map(() => new Map<string, HostTensor>());
  for (const [name, t] of outputs) splitBatch(t, sizes).forEach((p, i) => parts[i].set(name, p));
  return parts;
}

function cloneTensor(t: HostTensor): HostTensor {
  return { datatype: t.datatype, dims: [...t.dims], data: t.data.slice() as HostTensor["data"] };
}

const instanceCountOf = (config: ModelConfig) => Math.max(1, (config.instance_group ?? []).reduce((a, g) => a + (Number(g.count) || 1), 0));

const fmtDims = (d: number[]) => `[${d.join(",")}]`;

/** Outputs with a config `reshape` leave in the config's dims (e.g. the graph's [batch] as [batch, 1]), as Triton answers. */
function reshapeOutputs(m: ServedModel, outputs: Map<string, HostTensor>): Map<string, HostTensor> {
  for (const s of m.outputs) {
    const t = outputs.get(s.name);
    if (!t || !s.reshape) continue;
    const dims = m.maxBatchSize > 0 ? [t.dims[0], ...s.dims.slice(1)] : s.dims;
    if (dims.every((d) => d >= 0) && elementCount(dims) === elementCount(t.dims)) outputs.set(s.name, { ...t, dims });
  }
  return outputs;
}

/** A model of the repository with its loaded versions, sequence batcher and tensor specs. */
export class ServedModel implements SequenceModel {
  readonly versions = new Map<number, ServedVersion>();
  readonly inputs: TensorSpec[];
  readonly outputs: TensorSpec[];
  readonly maxBatchSize: number;
  readonly dynamicBatching: boolean;
  readonly controls: ControlSpec[] = [];
  readonly states: StateSpec[] = [];
  readonly instanceCount: number;
  /** Triton's sequence batcher (sequence_batching models): slots, backlog, implicit state; kept across reloads. */
  batcher: SequenceBatcher | undefined;
  /** Outputs fetched from ONNX Runtime: the config's outputs and the state outputs. */
  fetches: string[] | undefined;
  observer: EngineObserver | undefined;

  constructor(
    readonly entry: ModelEntry,
    readonly config: ModelConfig,
    readonly kind: "onnx" | "ensemble",
  ) {
    this.maxBatchSize = config.max_batch_size ?? 0;
    const spec = (t: NonNullable<ModelConfig["input"]>[number], io: string): TensorSpec => {
      let datatype: Datatype;
      try {
        datatype = configToDatatype(t.data_type);
      } catch (e) {
        throw new Error(`model '${config.name}' ${io} '${t.name}': ${(e as Error).message}`);
      }
      const dims = (t.dims ?? []).map(Number);
      return {
        name: t.name,
        datatype,
        dims: this.maxBatchSize > 0 ? [-1, ...dims] : dims,
        optional: Boolean(t.optional),
        reshape: t.reshape ? (t.reshape.shape ?? []).map(Number) : undefined,
      };
    };
    this.inputs = (config.input ?? []).map((t) => spec(t, "input"));
    this.outputs = (config.output ?? []).map((t) => spec(t, "output"));
    this.dynamicBatching = Boolean(config.dynamic_batching) && this.maxBatchSize > 0;
    const sb = config.sequence_batching;
    this.instanceCount = instanceCountOf(config);
    if (sb) {
      for (const ci of sb.control_input ?? []) {
        for (const c of ci.control ?? []) {
          let datatype: Datatype;
          let pair: (number | boolean)[] = [0, 1];
          if (c.int32_false_true?.length) (datatype = "INT32"), (pair = c.int32_false_true);
          else if (c.fp32_false_true?.length) (datatype = "FP32"), (pair = c.fp32_false_true);
          else if (c.bool_false_true?.length) (datatype = "BOOL"), (pair = c.bool_false_true);
          else datatype = configToDatatype(c.data_type ?? "TYPE_UINT64");
          this.controls.push({ name: ci.name, kind: c.kind ?? "CONTROL_SEQUENCE_START", datatype, falseValue: pair[0], trueValue: pair[1] });
        }
      }
      for (const s of sb.state ?? []) {
        const datatype = configToDatatype(s.data_type);
        const dims = (s.dims ?? []).map(Number);
        if (dims.some((d) => d < 0)) throw new Error(`model '${config.name}' state '${s.input_name}': dims ${fmtDims(dims)} must be fixed`);
        const full = this.maxBatchSize > 0 ? [1, ...dims] : dims;
        const init = s.initial_state?.[0];
        let initial: () => HostTensor = () => zeros(datatype, full);
        if (init?.data_file) {
          const file = join(entry.dir, "initial_state", init.data_file);
          const bytes = readFileSync(file);
          initial = () => {
            const t = zeros(datatype, full);
            const d = t.data as Uint8Array;
            new Uint8Array(d.buffer, d.byteOffset, d.byteLength).set(bytes.subarray(0, d.byteLength));
            return t;
          };
        }
        this.states.push({ input: s.input_name, output: s.output_name, datatype, dims: full, initial });
      }
    }
    if (kind === "onnx") this.fetches = [...this.outputs.map((o) => o.name), ...this.states.map((s) => s.output)];
  }

  get name(): string {
    return this.config.name;
  }

  get platform(): string {
    return this.config.platform || (this.config.backend === "onnxruntime" ? "onnxruntime_onnx" : this.config.backend || "");
  }

  /** The highest loaded version, or the named one. */
  pick(version: string | number | undefined): ServedVersion {
    if (version === undefined || version === "" || version === -1 || version === "-1") {
      const vs = [...this.versions.keys()].sort((a, b) => b - a);
      if (!vs.length) throw new InferenceError(status.UNAVAILABLE, `Request for unknown model: '${this.name}' has no available versions`);
      return this.versions.get(vs[0])!;
    }
    const v = this.versions.get(Number(version));
    if (!v) throw notFound(this.name, String(version));
    return v;
  }

  /** Checks names, data types and shapes against the config; returns the batch size. */
  validate(inputs: Map<string, HostTensor>): number {
    for (const name of inputs.keys()) {
      if (!this.inputs.some((s) => s.name === name)) throw invalid(`unexpected inference input '${name}' for model '${this.name}'`);
    }
    const missing = this.inputs.filter((s) => !s.optional && !inputs.has(s.name)).map((s) => `'${s.name}'`);
    if (missing.length) {
      throw invalid(
        `expected ${this.inputs.filter((s) => !s.optional).length} inputs but got ${inputs.size} inputs for model '${this.name}'; missing required input(s) ${missing.join(", ")}`,
      );
    }
    let batch = 1;
    let batchFrom = "";
    for (const s of this.inputs) {
      const t = inputs.get(s.name);
      if (!t) continue;
      if (t.datatype !== s.datatype) {
        throw invalid(`inference input '${s.name}' data-type is '${t.datatype}', but model '${this.name}' expects '${s.datatype}'`);
      }
      const ok = t.dims.length === s.dims.length && s.dims.every((d, i) => d === -1 || d === t.dims[i]);
      if (!ok) {
        throw invalid(`unexpected shape for input '${s.name}' for model '${this.name}'. Expected ${fmtDims(s.dims)}, got ${fmtDims(t.dims)}`);
      }
      if (this.maxBatchSize > 0) {
        const b = t.dims[0];
        if (b < 1 || b > this.maxBatchSize) {
          throw invalid(`inference request batch-size must be <= ${this.maxBatchSize} for '${this.name}' (input '${s.name}' has batch ${b})`);
        }
        if (batchFrom && b !== batch) {
          throw invalid(`input '${s.name}' has batch size ${b} but input '${batchFrom}' has ${batch}; all inputs of '${this.name}' must have the same batch size`);
        }
        batch = b;
        batchFrom = s.name;
      }
    }
    for (const s of this.inputs) {
      const t = inputs.get(s.name);
      if (t && s.reshape) {
        const dims = this.maxBatchSize > 0 ? [t.dims[0], ...s.reshape] : s.reshape;
        if (elementCount(dims) !== elementCount(t.dims)) {
          throw invalid(`input '${s.name}' of model '${this.name}': shape ${fmtDims(t.dims)} cannot be reshaped to ${fmtDims(dims)}`);
        }
        inputs.set(s.name, { ...t, dims });
      }
    }
    return batch;
  }

  /** Sequences holding a slot / waiting for one. */
  get sequencesActive(): number {
    return this.batcher?.active ?? 0;
  }
  get sequencesWaiting(): number {
    return this.batcher?.waiting ?? 0;
  }
}

export interface EngineOptions {
  repository: string;
  /** ONNX Runtime intra-op threads per model instance. */
  threads: number;
  logger: Logger;
  /** Receives request and execution measurements (Prometheus metrics). */
  observer?: EngineObserver;
}

export interface ModelIndexEntry {
  name: string;
  version: string;
  state: "READY" | "UNAVAILABLE";
  reason: string;
}

/** Loads the repository and executes requests: ONNX models, sequences with implicit state, ensembles. */
export class Engine {
  readonly models = new Map<string, ServedModel>();
  private readonly failures = new Map<string, string>();
  private readonly unloaded = new Set<string>();
  /** folders that are no model (no config.pbtxt), with the reason */
  private readonly skipped = new Map<string, string>();
  private readonly loading = new Map<string, Promise<void>>();

  constructor(private readonly opts: EngineOptions) {}

  get ready(): boolean {
    return this.failures.size === 0;
  }

  /**
   * Loads every model of the repository (ensembles after the models they
   * use). Every folder that is not served is logged with the reason (no
   * config.pbtxt, a config that does not parse, no version, graph ≠
   * config) and listed by RepositoryIndex as UNAVAILABLE with that reason.
   */
  async loadAll(): Promise<void> {
    const log = this.opts.logger;
    const names = listModelNames(this.opts.repository);
    for (const d of readdirSync(this.opts.repository, { withFileTypes: true })) {
      if (!d.isDirectory() || d.name.startsWith(".")) continue;
      const reason = folderSkipReason(this.opts.repository, d.name);
      if (reason) {
        this.skipped.set(d.name, reason);
        log.warn({ folder: d.name, reason }, "model folder skipped");
      }
    }
    const plain: string[] = [];
    const ensembles: string[] = [];
    for (const n of names) {
      try {
        (readModel(this.opts.repository, n).config.platform === "ensemble" ? ensembles : plain).push(n);
      } catch (e) {
        this.failures.set(n, (e as Error).message);
        log.error({ model: n, err: (e as Error).message }, "model folder skipped: config.pbtxt does not parse");
      }
    }
    await Promise.all(plain.map((n) => this.load(n).catch(() => {})));
    for (const n of ensembles) await this.load(n).catch(() => {});
    if (this.failures.size)
      log.warn(
        { failed: [...this.failures.keys()].sort() },
        "server not ready: some models failed to load (ServerReady stays false, as Triton's strict readiness, so workers do not use this server until they load or are unloaded); `timeslide model-repo check REPO` says why",
      );
  }

  /** (Re)loads a model: new versions come up before the old ones go, in-flight requests finish on the old. */
  load(name: string): Promise<void> {
    const prev = this.loading.get(name) ?? Promise.resolve();
    const p = prev.catch(() => {}).then(() => this.loadNow(name));
    this.loading.set(name, p);
    return p;
  }

  private async loadNow(name: string): Promise<void> {
    const log = this.opts.logger;
    let model: ServedModel;
    try {
      const entry = readModel(this.opts.repository, name);
      for (const w of configWarnings(entry.config)) log.warn({ model: name }, w);
      for (const n of gpuConfigNotes(entry.config)) log.info({ model: name }, n);
      model = await this.build(entry);
    } catch (e) {
      const msg = `failed to load '${name}': ${(e as Error).message}`;
      this.failures.set(name, msg);
      log.error({ model: name, err: (e as Error).message }, "model load failed");
      throw new InferenceError(status.INVALID_ARGUMENT, msg);
    }
    const old = this.models.get(name);
    // Sequences (slots, state, backlog) carry over so a reload does not reset running streams.
    if (model.kind === "onnx" && model.config.sequence_batching) {
      model.batcher = old?.batcher ?? new SequenceBatcher(model, log);
      model.batcher.configure(model);
    } else old?.batcher?.close();
    this.models.set(name, model);
    this.failures.delete(name);
    this.unloaded.delete(name);
    log.info({ model: name, versions: [...model.versions.keys()], platform: model.platform }, "model loaded");
    if (old) void Promise.all([...old.versions.values()].map((v) => v.close()));
  }

  private async build(entry: ModelEntry): Promise<ServedModel> {
    // The rules `timeslide model-repo check` applies (packages/model-repo):
    // config against each served version's graph, ensemble wiring.
    const checked = checkModelEntry(entry, repositoryLookup(this.opts.repository));
    if (checked.problems.length) throw new Error(checked.problems.join("; "));
    const config = structuredClone(checked.config ?? entry.config);
    const isEnsemble = config.platform === "ensemble";
    const versions = checked.served;
    if (isEnsemble) {
      for (const step of config.ensemble_scheduling?.step ?? []) {
        if (!this.models.has(step.model_name)) {
          const why = this.failures.get(step.model_name);
          throw new Error(`ensemble step model '${step.model_name}' is not loaded${why ? ` (${why})` : ""}`);
        }
      }
      const m = new ServedModel(entry, config, "ensemble");
      m.observer = this.opts.observer;
      for (const v of versions) m.versions.set(v, new EnsembleVersion(v));
      return m;
    }
    const file = config.default_model_filename || "model.onnx";
    const m = new ServedModel(entry, config, "onnx");
    m.observer = this.opts.observer;
    const count = m.instanceCount;
    try {
      for (const v of versions) {
        const path = join(entry.dir, String(v), file);
        if (!existsSync(path)) throw new Error(`missing model file ${path}`);
        const instances = Array.from({ length: count }, () => new OrtInstance(path, { intraOpNumThreads: this.opts.threads }));
        m.versions.set(v, new OnnxVersion(v, instances, m));
        await Promise.all(instances.map((i) => i.ready));
        const have = new Set(instances[0].inputNames);
        const wanted = [...m.inputs.map((i) => i.name), ...m.states.map((s) => s.input), ...m.controls.map((c) => c.name)];
        const missing = wanted.filter((n) => !have.has(n));
        if (missing.length) throw new Error(`${path}: model has no input(s) ${missing.map((n) => `'${n}'`).join(", ")} (it has ${[...have].join(", ")})`);
        const outs = new Set(instances[0].outputNames);
        const missingOut = (m.fetches ?? []).filter((n) => !outs.has(n));
        if (missingOut.length) throw new Error(`${path}: model has no output(s) ${missingOut.map((n) => `'${n}'`).join(", ")}`);
      }
    } catch (e) {
      await Promise.all([...m.versions.values()].map((v) => v.close()));
      throw e;
    }
    return m;
  }

  async unload(name: string): Promise<void> {
    const m = this.models.get(name);
    if (!m) {
      if (!listModelNames(this.opts.repository).includes(name)) throw invalid(`failed to unload '${name}', no version is available`);
      // A model whose load failed, unloaded: no longer counted against readiness.
      if (this.failures.delete(name)) this.unloaded.add(name);
      return;
    }
    this.models.delete(name);
    this.unloaded.add(name);
    m.batcher?.close();
    this.opts.logger.info({ model: name }, "model unloaded");
    await Promise.all([...m.versions.values()].map((v) => v.close()));
  }

  index(readyOnly: boolean): ModelIndexEntry[] {
    let names: string[] = [];
    try {
      names = listModelNames(this.opts.repository);
    } catch {
      names = [];
    }
    const all = new Set([...names, ...this.models.keys(), ...this.skipped.keys()]);
    const out: ModelIndexEntry[] = [];
    for (const name of [...all].sort()) {
      const m = this.models.get(name);
      if (m) {
        for (const v of [...m.versions.keys()].sort((a, b) => a - b)) out.push({ name, version: String(v), state: "READY", reason: "" });
      } else if (!readyOnly) {
        const reason = this.failures.get(name) ?? this.skipped.get(name) ?? (this.unloaded.has(name) ? "unloaded" : "not loaded");
        out.push({ name, version: "", state: "UNAVAILABLE", reason });
      }
    }
    return out;
  }

  model(name: string): ServedModel {
    const m = this.models.get(name);
    if (!m) {
      if (this.failures.has(name) || this.unloaded.has(name)) {
        throw new InferenceError(status.UNAVAILABLE, `Request for unknown model: '${name}' is not ready (${this.failures.get(name) ?? "unloaded"})`);
      }
      const skipped = this.skipped.get(name);
      if (skipped) throw new InferenceError(status.NOT_FOUND, `Request for unknown model: '${name}' is not found (${skipped})`);
      throw notFound(name);
    }
    return m;
  }

  /** Runs one request on a model (any kind); returns its outputs (without implicit-state outputs). */
  async infer(name: string, version: string | number | undefined, req: ExecRequest): Promise<{ model: ServedModel; version: number; outputs: Map<string, HostTensor> }> {
    const m = this.model(name);
    const v = m.pick(version);
    const t0 = now();
    v.enter();
    try {
      const batch = m.validate(req.inputs);
      const outputs = m.kind === "ensemble" ? await this.runEnsemble(m, req) : await this.runOnnx(m, v as OnnxVersion, req, batch);
      v.stats.inference_count += m.maxBatchSize > 0 ? batch : 1;
      if (m.kind === "ensemble") v.stats.execution_count++;
      v.stats.success.add(ms2ns(now() - t0));
      v.stats.last_inference = Date.now();
      this.opts.observer?.request(m.name, v.version, true, (now() - t0) / 1000, m.maxBatchSize > 0 ? batch : 1);
      return { model: m, version: v.version, outputs };
    } catch (e) {
      v.stats.fail.add(ms2ns(now() - t0));
      this.opts.observer?.request(m.name, v.version, false, (now() - t0) / 1000, 0);
      throw e;
    } finally {
      v.leave();
    }
  }

  private async runOnnx(m: ServedModel, v: OnnxVersion, req: ExecRequest, batch: number): Promise<Map<string, HostTensor>> {
    if (!m.config.sequence_batching) {
      const r = await v.run(req.inputs, batch);
      v.stats.queue.add(r.queueNs);
      v.stats.compute_infer.add(r.inferNs);
      return reshapeOutputs(m, r.outputs);
    }
    const seq = req.sequence;
    if (!seq) throw invalid(`inference request to model '${m.name}' must specify a non-zero or non-empty correlation ID`);
    if (m.maxBatchSize > 0 && batch !== 1) throw invalid(`inference request to sequence model '${m.name}' must have batch size 1, got ${batch}`);
    const r = await m.batcher!.submit(v, req.inputs, seq);
    v.stats.queue.add(r.queueNs);
    v.stats.compute_infer.add(r.inferNs);
    return reshapeOutputs(m, r.outputs);
  }

  private async runEnsemble(m: ServedModel, req: ExecRequest): Promise<Map<string, HostTensor>> {
    const steps = m.config.ensemble_scheduling?.step ?? [];
    const tensors = new Map(req.inputs);
    // Tensors read by several steps are copied for all but one (inputs move to worker threads).
    const uses = new Map<string, number>();
    for (const s of steps) for (const t of Object.values(s.input_map ?? {})) uses.set(t, (uses.get(t) ?? 0) + 1);
    for (const o of m.outputs) uses.set(o.name, (uses.get(o.name) ?? 0) + 1);
    const done = new Set<number>();
    while (done.size < steps.length) {
      const ready = steps.map((s, i) => ({ s, i })).filter(({ s, i }) => !done.has(i) && Object.values(s.input_map ?? {}).every((t) => tensors.has(t)));
      if (!ready.length) {
        const waiting = steps.filter((_, i) => !done.has(i)).map((s) => s.model_name);
        throw new InferenceError(status.INTERNAL, `ensemble '${m.name}': step(s) ${waiting.join(", ")} wait for tensors no step produces`);
      }
      await Promise.all(
        ready.map(async ({ s, i }) => {
          done.add(i);
          const inputs = new Map<string, HostTensor>();
          for (const [modelInput, tensor] of Object.entries(s.input_map ?? {})) {
            const t = tensors.get(tensor)!;
            const left = (uses.get(tensor) ?? 1) - 1;
            uses.set(tensor, left);
            inputs.set(modelInput, left > 0 ? cloneTensor(t) : t);
          }
          let r;
          try {
            r = await this.infer(s.model_name, s.model_version ?? -1, { inputs, sequence: req.sequence });
          } catch (e) {
            if (e instanceof InferenceError) throw new InferenceError(e.code, `in ensemble '${m.name}': ${e.message}`);
            throw e;
          }
          for (const [modelOutput, tensor] of Object.entries(s.output_map ?? {})) {
            const t = r.outputs.get(modelOutput);
            if (!t) throw new InferenceError(status.INTERNAL, `ensemble '${m.name}': model '${s.model_name}' gave no output '${modelOutput}'`);
            tensors.set(tensor, t);
          }
        }),
      );
    }
    const out = new Map<string, HostTensor>();
    for (const o of m.outputs) {
      const t = tensors.get(o.name);
      if (!t) throw new InferenceError(status.INTERNAL, `ensemble '${m.name}': no step produces output '${o.name}'`);
      out.set(o.name, t);
    }
    return out;
  }

  async close(): Promise<void> {
    const all = [...this.models.values()];
    for (const m of all) m.batcher?.close();
    this.models.clear();
    await Promise.all(all.flatMap((m) => [...m.versions.values()].map((v) => v.close())));
  }
}
