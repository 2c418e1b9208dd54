import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import { z } from "zod";
import { formatTextFormat, parseTextFormat, PbtxtError } from "./pbtxt.js";

/**
 * model_config.proto lives with the protocol in packages/kserve/proto (one
 * schema for config.pbtxt and for the ModelConfig RPC). Resolved through the
 * workspace layout so this package does not need kserve built.
 */
export const MODEL_CONFIG_PROTO = fileURLToPath(new URL("../../kserve/proto/model_config.proto", import.meta.url));

let configType: protobuf.Type | undefined;
/** The inference.ModelConfig message type (protobufjs reflection, field names as in the .proto). */
export function modelConfigType(): protobuf.Type {
  if (!configType) {
    const root = new protobuf.Root();
    root.loadSync(MODEL_CONFIG_PROTO, { keepCase: true });
    configType = root.lookupType("inference.ModelConfig");
    root.resolveAll();
  }
  return configType;
}

export type TritonDataType =
  | "TYPE_BOOL"
  | "TYPE_UINT8"
  | "TYPE_UINT16"
  | "TYPE_UINT32"
  | "TYPE_UINT64"
  | "TYPE_INT8"
  | "TYPE_INT16"
  | "TYPE_INT32"
  | "TYPE_INT64"
  | "TYPE_FP16"
  | "TYPE_FP32"
  | "TYPE_FP64"
  | "TYPE_STRING"
  | "TYPE_BF16";

export interface ModelTensorConfig {
  name: string;
  data_type: TritonDataType;
  dims: number[];
  reshape?: { shape?: number[] };
  optional?: boolean;
  /** TensorRT only; parsed and kept, ignored by the embedded server (a warning). */
  is_non_linear_format_io?: boolean;
  [k: string]: unknown;
}

export interface VersionPolicy {
  latest?: { num_versions?: number };
  all?: Record<string, never>;
  specific?: { versions?: number[] };
}

export interface SequenceControl {
  kind: "CONTROL_SEQUENCE_START" | "CONTROL_SEQUENCE_READY" | "CONTROL_SEQUENCE_END" | "CONTROL_SEQUENCE_CORRID";
  int32_false_true?: number[];
  fp32_false_true?: number[];
  bool_false_true?: boolean[];
  data_type?: TritonDataType;
}

export interface SequenceState {
  input_name: string;
  output_name: string;
  data_type: TritonDataType;
  dims: number[];
  initial_state?: Array<{ data_type?: TritonDataType; dims?: number[]; zero_data?: boolean; data_file?: string; name?: string }>;
  /** Memory layout only (one buffer for input and output state). */
  use_same_buffer_for_input_output?: boolean;
  /** CUDA memory only. */
  use_growable_memory?: boolean;
}

export interface SequenceBatching {
  max_sequence_idle_microseconds?: number;
  direct?: { max_queue_delay_microseconds?: number; minimum_slot_utilization?: number };
  oldest?: { max_candidate_sequences?: number; preferred_batch_size?: number[]; max_queue_delay_microseconds?: number; preserve_ordering?: boolean };
  control_input?: Array<{ name: string; control: SequenceControl[] }>;
  state?: SequenceState[];
  /** Needs backend support the embedded server lacks (a warning). */
  iterative_sequence?: boolean;
}

export interface EnsembleStep {
  model_name: string;
  model_version?: number;
  input_map?: Record<string, string>;
  output_map?: Record<string, string>;
}

/** uint64 fields read as numbers, and as decimal strings past 2^53. */
export type Uint64 = number | string;

/** A Triton ModelConfig as plain data (field names as in model_config.proto). */
export interface ModelConfig {
  name: string;
  platform?: string;
  backend?: string;
  /** The backend's library file; parsed and kept, ignored by the embedded server (a warning). */
  runtime?: string;
  version_policy?: VersionPolicy;
  max_batch_size?: number;
  input?: ModelTensorConfig[];
  output?: ModelTensorConfig[];
  dynamic_batching?: {
    preferred_batch_size?: number[];
    max_queue_delay_microseconds?: number;
    preserve_ordering?: boolean;
    priority_levels?: Uint64;
    default_priority_level?: Uint64;
    /** Keyed by priority level (uint64, as a decimal string). */
    priority_queue_policy?: Record<string, Record<string, unknown>>;
    [k: string]: unknown;
  };
  sequence_batching?: SequenceBatching;
  /** max_inflight_requests: parsed and kept, not enforced by the embedded server (a warning). */
  ensemble_scheduling?: { step: EnsembleStep[]; max_inflight_requests?: number };
  /** Per-model metric settings (histogram buckets); parsed and kept. */
  model_metrics?: { metric_control?: Array<{ metric_identifier?: { family?: string }; histogram_options?: { buckets?: number[] } }> };
  instance_group?: Array<{ name?: string; kind?: string; count?: number; gpus?: number[]; [k: string]: unknown }>;
  optimization?: Record<string, unknown>;
  default_model_filename?: string;
  parameters?: Record<string, { string_value: string }>;
  [k: string]: unknown;
}

const tensorSchema = z.object({
  name: z.string().min(1, "a tensor needs a name"),
  data_type: z.string().refine((s) => s !== "TYPE_INVALID", "data_type must be set"),
  dims: z.array(z.number().int().gte(-1)),
});

// Semantic checks the schema-driven parser can't express.
const configSchema = z
  .object({
    name: z.string().optional(),
    platform: z.string().optional(),
    backend: z.string().optional(),
    max_batch_size: z.number().int().nonnegative().optional(),
    input: z.array(tensorSchema).optional(),
    output: z.array(tensorSchema).optional(),
    ensemble_scheduling: z
      .object({ step: z.array(z.object({ model_name: z.string().min(1) }).loose()).min(1, "an ensemble needs at least one step") })
      .loose()
      .optional(),
  })
  .loose()
  .refine((c) => Boolean(c.platform || c.backend), { message: "either platform or backend must be set", path: ["platform"] })
  .refine((c) => c.platform !== "ensemble" || c.ensemble_scheduling !== undefined, {
    message: 'platform "ensemble" needs ensemble_scheduling',
    path: ["ensemble_scheduling"],
  });

/** Parses config.pbtxt text; `file` names the source in errors. Missing dims default to []. */
export function parseModelConfig(src: string, file = "config.pbtxt"): ModelConfig {
  const raw = parseTextFormat(src, modelConfigType(), file) as Record<string, unknown>;
  for (const key of ["input", "output"] as const) {
    for (const t of (raw[key] as Record<string, unknown>[] | undefined) ?? []) t.dims ??= [];
  }
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`${file}: ${issue.path.join(".") || "config"}: ${issue.message}`);
  }
  return raw as ModelConfig;
}

/**
 * Fields of current Triton that the config carries and the embedded server
 * does not honour, where that changes behaviour: one message each (the
 * server logs them as warnings at load). Fields that only concern memory
 * layout, GPUs or metrics (use_same_buffer_for_input_output,
 * use_growable_memory, model_metrics, ...) are kept without a warning.
 */
export function configWarnings(config: ModelConfig): string[] {
  const out: string[] = [];
  if (config.runtime) out.push(`runtime "${config.runtime}" is ignored: the embedded server runs ONNX Runtime models and ensembles itself`);
  if (config.sequence_batching?.iterative_sequence) {
    out.push("sequence_batching.iterative_sequence is not supported (it needs a backend that reschedules requests): each request runs once, as in an ordinary sequence");
  }
  const inflight = config.ensemble_scheduling?.max_inflight_requests;
  if (inflight) out.push(`ensemble_scheduling.max_inflight_requests: ${inflight} is not enforced: every step's requests run without a limit`);
  for (const key of ["input", "output"] as const) {
    for (const t of config[key] ?? []) {
      if (t.is_non_linear_format_io) out.push(`${key} "${t.name}": is_non_linear_format_io applies to TensorRT models only and is ignored`);
    }
  }
  return out;
}

/**
 * What the embedded server does differently with a config written for a
 * Triton GPU site (`--device gpu`), one note each, logged at load (info, not
 * a warning: the model is served as exported, in FP32): KIND_GPU
 * instances run as that many CPU instances (ONNX Runtime on the CPU), and
 * execution accelerators (TensorRT FP16, OpenVINO, ...) are not applied.
 */
export function gpuConfigNotes(config: ModelConfig): string[] {
  const out: string[] = [];
  const gpu = (config.instance_group ?? []).filter((g) => g.kind === "KIND_GPU");
  if (gpu.length) {
    const n = gpu.reduce((a, g) => a + (Number(g.count) || 1), 0);
    out.push(`instance_group KIND_GPU: the embedded server runs ONNX Runtime on the CPU: ${n} CPU instance(s) instead (Triton on a GPU node runs them on the GPU)`);
  }
  const acc = (config.optimization as { execution_accelerators?: Record<string, Array<{ name?: string }> | undefined> } | undefined)?.execution_accelerators;
  for (const key of ["gpu_execution_accelerator", "cpu_execution_accelerator"]) {
    const names = (acc?.[key] ?? []).map((a) => `"${a.name ?? ""}"`);
    if (names.length) out.push(`optimization.execution_accelerators.${key} ${names.join(", ")} is not applied: the embedded server runs the model as exported (FP32 on the CPU); Triton applies it`);
  }
  return out;
}

/** Writes a ModelConfig as config.pbtxt text (through the schema; unknown fields are errors). */
export function formatModelConfig(config: ModelConfig): string {
  return formatTextFormat(config as Record<string, unknown>, modelConfigType());
}

/** Reads and parses `<modelDir>/config.pbtxt`. */
export function readModelConfig(modelDir: string): ModelConfig {
  const file = join(modelDir, "config.pbtxt");
  let src: string;
  try {
    src = readFileSync(file, "utf8");
  } catch (e) {
    throw new Error(`${file}: cannot read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  return parseModelConfig(src, file);
}

export { PbtxtError };
