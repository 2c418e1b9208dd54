import { existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { formatModelConfig, readModelConfig, type ModelConfig, type ModelTensorConfig, type TritonDataType, type VersionPolicy } from "./config.js";
import type { OnnxSignature, TensorSignature } from "./onnx.js";

/** One model folder of a Triton repository: `<repo>/<name>/config.pbtxt` and `<repo>/<name>/<version>/`. */
export interface ModelEntry {
  name: string;
  dir: string;
  config: ModelConfig;
  /** Numeric version folders present, ascending. */
  versions: number[];
}

/** Names of the model folders (any folder holding a config.pbtxt). */
export function listModelNames(repository: string): string[] {
  if (!existsSync(repository) || !statSync(repository).isDirectory()) {
    throw new Error(`model repository ${repository}: not a directory`);
  }
  return readdirSync(repository, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(repository, d.name, "config.pbtxt")))
    .map((d) => d.name)
    .sort();
}

/** Numeric version folders of a model, ascending. */
export function listVersions(modelDir: string): number[] {
  return readdirSync(modelDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && /^\d+$/.test(d.name))
    .map((d) => Number(d.name))
    .sort((a, b) => a - b);
}

/** Reads one model's config and versions. The config's name must match the folder (Triton's rule). */
export function readModel(repository: string, name: string): ModelEntry {
  const dir = join(repository, name);
  if (!existsSync(join(dir, "config.pbtxt"))) {
    throw new Error(`model repository ${repository}: no model "${name}" (missing ${join(dir, "config.pbtxt")})`);
  }
  const config = readModelConfig(dir);
  if (!config.name) config.name = name;
  if (config.name !== name) {
    throw new Error(`${join(dir, "config.pbtxt")}: name "${config.name}" does not match the model folder "${name}"`);
  }
  return { name, dir, config, versions: listVersions(dir) };
}

/** Every model of a repository. */
export function readRepository(repository: string): ModelEntry[] {
  return listModelNames(repository).map((n) => readModel(repository, n));
}

/** The versions served under a version_policy (Triton's default: the latest one). */
export function selectVersions(policy: VersionPolicy | undefined, available: number[]): number[] {
  const sorted = [...available].sort((a, b) => a - b);
  if (policy?.all) return sorted;
  if (policy?.specific) {
    const want = new Set((policy.specific.versions ?? []).map(Number));
    return sorted.filter((v) => want.has(v));
  }
  const n = Math.max(1, policy?.latest?.num_versions ?? 1);
  return sorted.slice(-n);
}

/** The next free version number of a model folder (1 when there is none). */
export function nextVersion(modelDir: string): number {
  if (!existsSync(modelDir)) return 1;
  const v = listVersions(modelDir);
  return v.length ? v[v.length - 1] + 1 : 1;
}

/** Writes `<repo>/<name>/config.pbtxt`. */
export function writeModelConfig(repository: string, config: ModelConfig): string {
  const dir = join(repository, config.name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "config.pbtxt");
  writeFileSync(file, formatModelConfig(config));
  return file;
}

/**
 * Adds an ONNX model version: writes `<repo>/<name>/<version>/model.onnx`
 * (version: next free one unless given) and the config. Returns the version.
 */
export function addOnnxModel(repository: string, config: ModelConfig, onnx: Uint8Array, version?: number): number {
  const dir = join(repository, config.name);
  const v = version ?? nextVersion(dir);
  mkdirSync(join(dir, String(v)), { recursive: true });
  writeFileSync(join(dir, String(v), config.default_model_filename || "model.onnx"), onnx);
  writeModelConfig(repository, config);
  return v;
}

/** Adds an ensemble (no model file; Triton still wants a version folder). */
export function addEnsemble(repository: string, config: ModelConfig, version = 1): void {
  mkdirSync(join(repository, config.name, String(version)), { recursive: true });
  writeModelConfig(repository, config);
}

/**
 * A graph tensor as a config tensor: with a batch axis (`batched`, i.e.
 * max_batch_size > 0) its first axis is left out of dims, Triton's
 * convention. A tensor left with no dims (a per-window scalar `[batch]`, or
 * a rank-0 tensor) gets `dims: [1]` with `reshape: { shape: [] }`: Triton
 * refuses a tensor without dims ("must specify dims") and the reshape keeps
 * the graph's own shape. The one rule for every config written from a graph
 * (`configForOnnx`, `configFromGraph`, so `add`, `stream` and the demo).
 */
export function tensorConfig(t: TensorSignature, batched: boolean): ModelTensorConfig {
  const dims = batched ? t.dims.slice(1) : t.dims;
  if (dims.length === 0) return { name: t.name, data_type: t.data_type as TritonDataType, dims: [1], reshape: { shape: [] } };
  return { name: t.name, data_type: t.data_type as TritonDataType, dims };
}

/**
 * A config for an ONNX file from its graph signature. With maxBatchSize > 0
 * the leading dimension of every input and output is the batch dimension
 * and is left out of dims (Triton's convention); a `[batch]` tensor gets
 * `dims: [1]` and an empty reshape (`tensorConfig`).
 */
export function configForOnnx(name: string, signature: OnnxSignature, maxBatchSize = 0): ModelConfig {
  const strip = (t: TensorSignature, io: string) => {
    if (maxBatchSize > 0 && t.dims.length === 0) {
      throw new Error(`model ${name}: ${io} ${t.name} has no batch dimension but max_batch_size is ${maxBatchSize}`);
    }
    return tensorConfig(t, maxBatchSize > 0);
  };
  return {
    name,
    backend: "onnxruntime",
    platform: "onnxruntime_onnx",
    max_batch_size: maxBatchSize,
    input: signature.inputs.map((t) => strip(t, "input")),
    output: signature.outputs.map((t) => strip(t, "output")),
  };
}

export interface GpuOptions {
  /** Instances per listed GPU (default 1). */
  count?: number;
  /** GPU ids (default: all GPUs Triton sees). */
  gpus?: number[];
  /**
   * ONNX Runtime's TensorRT execution accelerator in FP16 (Triton's
   * gpu_execution_accelerator block). Default true, as `model-repo --device gpu`
   * writes it; false (`--no-tensorrt`): ONNX Runtime's CUDA provider alone.
   */
  tensorrtFp16?: boolean;
  /** TensorRT workspace (default 1 GiB, Triton's default). */
  maxWorkspaceBytes?: number;
  /** Dynamic batching queue delay, µs (GPU sites gather larger batches); absent: keep the config's. */
  maxQueueDelayMicroseconds?: number;
}

/** TensorRT's workspace written in the accelerator block: 1 GiB (the ONNX Runtime backend's default). */
export const TENSORRT_WORKSPACE_BYTES = 1 << 30;

/**
 * The block Triton's ONNX Runtime backend reads to run a model through
 * TensorRT (parameters `precision_mode`, `max_workspace_size_bytes`; see the
 * backend's README, "ONNX Runtime with TensorRT optimization").
 */
export function tensorrtAccelerator(maxWorkspaceBytes = TENSORRT_WORKSPACE_BYTES): Record<string, unknown> {
  return { name: "tensorrt", parameters: { precision_mode: "FP16", max_workspace_size_bytes: String(maxWorkspaceBytes) } };
}

/**
 * The same config for a Triton GPU site: a KIND_GPU instance group and,
 * unless `tensorrtFp16: false`, the TensorRT FP16 accelerator. The one place
 * that writes a model for GPUs: `model-repo add|demo --device gpu` come here
 * (the snapshotter gets the instance group only: see `writeDemoRepository`).
 * The embedded server reads such a config too: it runs `count` CPU instances
 * and ignores the accelerator, with a note in its log (`gpuConfigNotes`).
 */
export function forGpu(config: ModelConfig, o: GpuOptions = {}): ModelConfig {
  const out: ModelConfig = structuredClone(config);
  out.instance_group = [{ count: o.count ?? 1, kind: "KIND_GPU", ...(o.gpus ? { gpus: o.gpus } : {}) }];
  if (o.tensorrtFp16 ?? true) {
    out.optimization = {
      ...(out.optimization ?? {}),
      execution_accelerators: { gpu_execution_accelerator: [tensorrtAccelerator(o.maxWorkspaceBytes)] },
    };
  }
  if (o.maxQueueDelayMicroseconds !== undefined && out.dynamic_batching) {
    out.dynamic_batching = { ...out.dynamic_batching, max_queue_delay_microseconds: o.maxQueueDelayMicroseconds };
  }
  return out;
}
