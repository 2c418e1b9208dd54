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
}

export interface SequenceBatching {
  max_sequence_idle_microseconds?: number;
  direct?: { max_queue_delay_microseconds?: number; minimum_slot_utilization?: number };
  oldest?: { max_candidate_sequences?: number; preferred_batch_size?: number[]; max_queue_delay_microseconds?: number };
  control_input?: Array<{ name: string; control: SequenceControl[] }>;
  state?: SequenceState[];
}

export interface EnsembleStep {
  model_name: string;
  model_version?: number;
  input_map?: Record<string, string>;
  output_map?: Record<string, string>;
}

/** A Triton ModelConfig as plain data (field names as in model_config.proto). */
export interface ModelConfig {
  name: string;
  platform?: string;
  backend?: string;
  version_policy?: VersionPolicy;
  max_batch_size?: number;
  input?: ModelTensorConfig[];
  output?: ModelTensorConfig[];
  dynamic_batching?: { preferred_batch_size?: number[]; max_queue_delay_microseconds?: number; [k: string]: unknown };
  sequence_batching?: SequenceBatching;
  ensemble_scheduling?: { step: EnsembleStep[] };
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
