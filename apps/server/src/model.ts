// A model of the repository as the scheduler and backends see it: tensor
// specs from its config (batch dimension included), request checks with
// Triton's wording, control inputs and implicit state for the sequence
// batcher, and its loaded versions.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { elementCount, fromConfigDataType, type Datatype } from "@timeslide/kserve";
import type { ModelConfig, ModelEntry } from "@timeslide/model-repo";
import type { ModelInstance } from "./backends/backend.js";
import { DynamicBatcher } from "./dynamic-batcher.js";
import { InferenceError, invalid, notFound } from "./errors.js";
import { zeros, type HostTensor } from "./host-tensors.js";
import type { EngineObserver } from "./metrics.js";
import type { ControlSpec, SequenceBatcher, SequenceModel, StateSpec } from "./sequence-batcher.js";
import { VersionStats } from "./stats.js";

export interface TensorSpec {
  name: string;
  datatype: Datatype;
  /** Full shape including the batch dimension (as -1) when max_batch_size > 0. */
  dims: number[];
  optional: boolean;
  reshape?: number[];
}

const fmtDims = (d: number[]) => `[${d.join(",")}]`;
const instanceCountOf = (config: ModelConfig) => Math.max(1, (config.instance_group ?? []).reduce((a, g) => a + (Number(g.count) || 1), 0));

/** The Triton platform a config names (`backend: "onnxruntime"` is platform onnxruntime_onnx). */
export function platformOf(config: ModelConfig): string {
  return config.platform || (config.backend === "onnxruntime" ? "onnxruntime_onnx" : config.backend || "");
}

/** One served version of a model: its instances behind the scheduler's queue, and its statistics. */
export class ServedVersion {
  readonly stats = new VersionStats();
  readonly queue: DynamicBatcher;
  private inflight = 0;
  private drained: (() => void) | undefined;

  constructor(
    readonly version: number,
    readonly instances: ModelInstance[],
    model: ServedModel,
  ) {
    this.queue = new DynamicBatcher(instances, model, this);
  }

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

  async close(): Promise<void> {
    await this.drain();
    await Promise.all(this.instances.map((i) => i.close()));
  }
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

  constructor(
    readonly entry: ModelEntry,
    readonly config: ModelConfig,
    readonly observer?: EngineObserver,
  ) {
    this.maxBatchSize = config.max_batch_size ?? 0;
    const spec = (t: NonNullable<ModelConfig["input"]>[number], io: string): TensorSpec => {
      let datatype: Datatype;
      try {
        datatype = fromConfigDataType(t.data_type);
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
    this.instanceCount = instanceCountOf(config);
    const sb = config.sequence_batching;
    for (const ci of sb?.control_input ?? []) {
      for (const c of ci.control ?? []) {
        let datatype: Datatype;
        let pair: (number | boolean)[] = [0, 1];
        if (c.int32_false_true?.length) (datatype = "INT32"), (pair = c.int32_false_true);
        else if (c.fp32_false_true?.length) (datatype = "FP32"), (pair = c.fp32_false_true);
        else if (c.bool_false_true?.length) (datatype = "BOOL"), (pair = c.bool_false_true);
        else datatype = fromConfigDataType(c.data_type ?? "TYPE_UINT64");
        this.controls.push({ name: ci.name, kind: c.kind ?? "CONTROL_SEQUENCE_START", datatype, falseValue: pair[0], trueValue: pair[1] });
      }
    }
    for (const s of sb?.state ?? []) this.states.push(this.stateSpec(s));
  }

  private stateSpec(s: NonNullable<NonNullable<ModelConfig["sequence_batching"]>["state"]>[number]): StateSpec {
    const datatype = fromConfigDataType(s.data_type);
    const dims = (s.dims ?? []).map(Number);
    if (dims.some((d) => d < 0)) throw new Error(`model '${this.config.name}' state '${s.input_name}': dims ${fmtDims(dims)} must be fixed`);
    const full = this.maxBatchSize > 0 ? [1, ...dims] : dims;
    const file = s.initial_state?.[0]?.data_file;
    let initial: () => HostTensor = () => zeros(datatype, full);
    if (file) {
      const bytes = readFileSync(join(this.entry.dir, "initial_state", file));
      initial = () => {
        const t = zeros(datatype, full);
        const d = t.data as Uint8Array;
        new Uint8Array(d.buffer, d.byteOffset, d.byteLength).set(bytes.subarray(0, d.byteLength));
        return t;
      };
    }
    return { input: s.input_name, output: s.output_name, datatype, dims: full, initial };
  }

  get name(): string {
    return this.config.name;
  }

  get platform(): string {
    return platformOf(this.config);
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

  /** Checks names, data types and shapes against the config (applying input `reshape`); returns the batch size. */
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
      const ok = t.shape.length === s.dims.length && s.dims.every((d, i) => d === -1 || d === t.shape[i]);
      if (!ok) {
        throw invalid(`unexpected shape for input '${s.name}' for model '${this.name}'. Expected ${fmtDims(s.dims)}, got ${fmtDims(t.shape)}`);
      }
      if (this.maxBatchSize > 0) {
        const b = t.shape[0];
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
        const shape = this.maxBatchSize > 0 ? [t.shape[0], ...s.reshape] : s.reshape;
        if (elementCount(shape) !== elementCount(t.shape)) {
          throw invalid(`input '${s.name}' of model '${this.name}': shape ${fmtDims(t.shape)} cannot be reshaped to ${fmtDims(shape)}`);
        }
        inputs.set(s.name, { ...t, shape });
      }
    }
    return batch;
  }

  /** Outputs with a config `reshape` leave in the config's dims (e.g. the graph's [batch] as [batch, 1]), as Triton answers. */
  reshapeOutputs(outputs: Map<string, HostTensor>): Map<string, HostTensor> {
    for (const s of this.outputs) {
      const t = outputs.get(s.name);
      if (!t || !s.reshape) continue;
      const shape = this.maxBatchSize > 0 ? [t.shape[0], ...s.dims.slice(1)] : s.dims;
      if (shape.every((d) => d >= 0) && elementCount(shape) === elementCount(t.shape)) outputs.set(s.name, { ...t, shape });
    }
    return outputs;
  }

  /** Sequences holding a slot / waiting for one. */
  get sequencesActive(): number {
    return this.batcher?.active ?? 0;
  }
  get sequencesWaiting(): number {
    return this.batcher?.waiting ?? 0;
  }

  async close(): Promise<void> {
    await Promise.all([...this.versions.values()].map((v) => v.close()));
  }
}
