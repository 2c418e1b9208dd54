// Managing a repository as hermes' quiver does (repo.add, export_version,
// add_streaming_inputs): add an ONNX model as a new version with its config
// written from the graph, wrap a model in a snapshotter + ensemble for
// streaming, list what is there. The demo repository is written through
// these same functions.
import { copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { ModelConfig, ModelTensorConfig } from "./config.js";
import { checkRepository, declaredPair, ensembleProblems, onnxConfigProblems, repositoryLookup, type ConfigLookup, type SkippedFolder } from "./check.js";
import { readOnnxSignature, type OnnxSignature, type TensorSignature } from "./onnx.js";
import { forGpu, nextVersion, tensorConfig, writeModelConfig, type GpuOptions } from "./repository.js";
import { buildSnapshotter, DEFAULT_STREAMS, snapshotSize, snapshotterConfig, type SnapshotterOptions } from "./demo.js";

/** max_batch_size written for a model with a dynamic batch axis when none is given. */
export const DEFAULT_MAX_BATCH_SIZE = 128;

const fmt = (d: readonly number[]) => `[${d.join(", ")}]`;
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function checkName(name: string, what = "model name"): void {
  if (!NAME.test(name)) throw new Error(`${what} "${name}": expected letters, digits, '-', '_' or '.' (it names a folder of the repository)`);
}

export interface AddModelOptions {
  /** version folder (default: the next free one) */
  version?: number;
  /** max_batch_size for a model whose inputs and outputs all have a dynamic first axis (default 128) */
  maxBatchSize?: number;
  /** dynamic_batching (default true when batching) */
  dynamicBatching?: boolean;
  /** instance_group: count and kind (absent: Triton's default) */
  instances?: { count: number; kind: "KIND_CPU" | "KIND_GPU" };
  /** a Triton GPU site's config (`forGpu`: KIND_GPU, TensorRT FP16 unless tensorrtFp16: false); replaces `instances` */
  gpu?: GpuOptions;
}

export interface AddModelResult {
  name: string;
  version: number;
  file: string;
  config: ModelConfig;
  signature: OnnxSignature;
  /** things that do not stop the model being served but will stop a campaign using it */
  warnings: string[];
}

/**
 * The config for an ONNX graph, as `add` writes it: names, data types and
 * shapes from the graph; a dynamic first axis on every input and output
 * becomes `max_batch_size` (left out of dims); a per-window scalar output
 * ([batch]) gets `dims: [1]` with `reshape: { shape: [] }`, as Triton needs.
 * A graph with a fixed first axis is served as it is (max_batch_size 0,
 * full dims): it takes exactly that many windows per request.
 */
export function configFromGraph(name: string, sig: OnnxSignature, o: Pick<AddModelOptions, "maxBatchSize" | "dynamicBatching"> = {}): ModelConfig {
  const all = [...sig.inputs, ...sig.outputs];
  const dynamicFirst = all.length > 0 && all.every((t) => t.dims.length >= 1 && t.dims[0] === -1);
  if (o.maxBatchSize !== undefined && o.maxBatchSize > 0 && !dynamicFirst) {
    const fixed = all.filter((t) => !(t.dims.length >= 1 && t.dims[0] === -1));
    throw new Error(
      `model '${name}': --max-batch-size ${o.maxBatchSize} needs a dynamic first (batch) axis on every input and output, but ` +
        fixed.map((t) => `'${t.name}' has shape ${fmt(t.dims)}`).join(", ") +
        `: re-export with dynamic_axes={${fixed.map((t) => `'${t.name}': {0: 'batch'}`).join(", ")}} (torch.onnx.export), or leave out --max-batch-size to serve it with its fixed batch`,
    );
  }
  const mbs = dynamicFirst ? (o.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE) : 0;
  const tensor = (t: TensorSignature): ModelTensorConfig => tensorConfig(t, mbs > 0);
  const config: ModelConfig = {
    name,
    backend: "onnxruntime",
    platform: "onnxruntime_onnx",
    max_batch_size: mbs,
    input: sig.inputs.map(tensor),
    output: sig.outputs.map(tensor),
  };
  if (mbs > 0 && (o.dynamicBatching ?? true)) config.dynamic_batching = { max_queue_delay_microseconds: 0 };
  return config;
}

/**
 * Adds an ONNX model (a file path or its bytes) as a new version of `name`
 * and writes its config from the graph. Refuses, naming the tensor, what
 * the repository's rules (`check`) would refuse.
 */
export function addModel(repository: string, name: string, onnx: string | Uint8Array, o: AddModelOptions = {}): AddModelResult {
  checkName(name);
  const source = typeof onnx === "string" ? onnx : "<bytes>";
  const bytes = typeof onnx === "string" ? readFileSync(onnx) : onnx;
  const sig = readOnnxSignature(bytes, source);
  if (!sig.inputs.length) throw new Error(`model '${name}': the graph ${source} has no inputs`);
  if (!sig.outputs.length) throw new Error(`model '${name}': the graph ${source} has no outputs`);
  let config = configFromGraph(name, sig, o);
  if (o.instances) config.instance_group = [{ count: o.instances.count, kind: o.instances.kind }];
  if (o.gpu) config = forGpu(config, o.gpu);
  const problems = onnxConfigProblems(config, sig, source);
  if (problems.length) throw new Error(problems.join("; "));
  const dir = join(repository, name);
  const version = o.version ?? nextVersion(dir);
  if (!(Number.isInteger(version) && version >= 1)) throw new Error(`model '${name}': version ${version}: expected a whole number >= 1`);
  const file = join(dir, String(version), "model.onnx");
  mkdirSync(join(dir, String(version)), { recursive: true });
  if (typeof onnx === "string" && existsSync(file) && realpathSync(file) === realpathSync(onnx)) {
    // already in place (a folder that lacked its config)
  } else if (typeof onnx === "string") copyFileSync(onnx, file);
  else writeFileSync(file, bytes);
  writeModelConfig(repository, config);
  const warnings: string[] = [];
  for (const t of sig.inputs)
    if (t.data_type !== "TYPE_FP32")
      warnings.push(
        `model '${name}' input '${t.name}' is ${t.data_type}: timeslide's workers and the snapshotter send float32 strain (TYPE_FP32), so \`stream\` and campaigns will refuse it; export the model in float32 (model.float())`,
      );
  return { name, version, file, config, signature: sig, warnings };
}

export interface StreamOptions {
  /** the model the windows go to (in the repository) */
  model: string;
  /** window length in samples (kernel_length · sample_rate) */
  kernel: number;
  /** samples between windows (sample_rate / inference_sampling_rate) */
  stride: number;
  /** windows per update (inference.batch_size) */
  batch: number;
  /** the model input that takes the windows (default: its one input) */
  input?: string;
  /** the model output the ensemble returns (default: its one output) */
  output?: string;
  /** detectors (default: from the model's input shape) */
  nIfo?: number;
  /** snapshotter name (default `<name>-snapshotter`) */
  snapshotter?: string;
  /** idle sequences are dropped after this (default 60 s) */
  sequenceIdleMicroseconds?: number;
  /** the snapshotter's instance kind (default KIND_CPU) */
  kind?: "KIND_CPU" | "KIND_GPU";
  /** snapshotter instances = sequence slots (streams) per server (default DEFAULT_STREAMS) */
  streams?: number;
}

export interface StreamResult {
  ensemble: string;
  snapshotter: string;
  model: string;
  input: string;
  output: string;
  nIfo: number;
  updateSize: number;
  stateSize: number;
}

/** Picks a tensor by name, or the only one; errors list the candidates and what to pass. */
function pick(list: ModelTensorConfig[], wanted: string | undefined, what: string, flag: string): ModelTensorConfig {
  const names = list.map((t) => `'${t.name}'`).join(", ") || "none";
  if (wanted !== undefined) {
    const t = list.find((x) => x.name === wanted);
    if (!t) throw new Error(`${what} '${wanted}': no such tensor (it has ${names})`);
    return t;
  }
  if (list.length !== 1) throw new Error(`${what}: the model has ${list.length} (${names}); pass ${flag} NAME to choose one`);
  return list[0];
}

/**
 * Wraps a model for streaming: a snapshotter (implicit state of
 * kernel + (batch − 1)·stride samples per detector) and an ensemble `name`
 * taking `update [1, n_ifo, stride·batch]` and returning the model's output
 * for `batch` windows, wired by the model's own tensor names.
 */
export function addStreaming(repository: string, name: string, o: StreamOptions, lookup: ConfigLookup = repositoryLookup(repository)): StreamResult {
  checkName(name, "ensemble name");
  const snapName = o.snapshotter ?? `${name}-snapshotter`;
  checkName(snapName, "snapshotter name");
  if (name === o.model || snapName === o.model || name === snapName) throw new Error(`stream: the ensemble (${name}), the snapshotter (${snapName}) and the model (${o.model}) need three different names`);
  for (const [v, what] of [
    [o.kernel, "kernel"],
    [o.stride, "stride"],
    [o.batch, "batch"],
  ] as const)
    if (!(Number.isInteger(v) && v >= 1)) throw new Error(`stream: ${what} ${v}: expected a whole number of samples >= 1`);
  if (o.stride > o.kernel) throw new Error(`stream: stride ${o.stride} samples exceeds the kernel (${o.kernel} samples): windows would skip data`);
  const found = lookup(o.model);
  if (!found.config) throw new Error(`stream: --model ${o.model}: ${found.error ?? "no such model in the repository"} (add it first: timeslide model-repo add ${repository} ${o.model} model.onnx)`);
  const m = found.config;
  const model = `model '${o.model}'`;
  const input = pick(m.input ?? [], o.input, `${model} input`, "--input");
  const output = pick(m.output ?? [], o.output, `${model} output`, "--output");
  if (input.data_type !== "TYPE_FP32")
    throw new Error(`${model} input '${input.name}' is ${input.data_type}; the snapshotter and timeslide's workers send float32 windows (TYPE_FP32): export the model in float32 (model.float())`);
  const mbs = Number(m.max_batch_size ?? 0);
  const full = mbs > 0 ? [-1, ...input.dims.map(Number)] : input.dims.map(Number);
  if (full.length !== 3)
    throw new Error(
      `${model} input '${input.name}' has shape ${fmt(full)}${mbs > 0 ? " (batch axis first)" : ""}; streaming feeds windows [batch, n_ifo, kernel] = [${o.batch}, ${o.nIfo ?? "n_ifo"}, ${o.kernel}]: ` +
        `export the model to take a 3-dimensional input [batch, detectors, samples]`,
    );
  const nIfo = o.nIfo ?? (full[1] > 0 ? full[1] : undefined);
  if (nIfo === undefined) throw new Error(`${model} input '${input.name}' has a dynamic detector axis ${fmt(full)}: pass --ifos N`);
  if (full[1] > 0 && full[1] !== nIfo) throw new Error(`${model} input '${input.name}' takes ${full[1]} detectors (shape ${fmt(full)}), not ${nIfo}`);
  if (full[2] > 0 && full[2] !== o.kernel)
    throw new Error(
      `${model} input '${input.name}' takes windows of ${full[2]} samples (shape ${fmt(full)}), but the kernel is ${o.kernel} samples (--kernel-length × --sample-rate): use the kernel the model was trained with`,
    );
  if (mbs > 0 && mbs < o.batch)
    throw new Error(`${model} has max_batch_size ${mbs}, below the ${o.batch} windows per update (--batch-size): lower --batch-size or raise max_batch_size (add --max-batch-size)`);
  if (mbs === 0 && full[0] > 0 && full[0] !== o.batch)
    throw new Error(
      `${model} input '${input.name}' takes exactly ${full[0]} windows per request (shape ${fmt(full)}, no dynamic batch axis), but the ensemble sends ${o.batch} (--batch-size): ` +
        `use --batch-size ${full[0]} (and inference.batch_size ${full[0]} in the campaign), or re-export with dynamic_axes={'${input.name}': {0: 'batch'}}`,
    );
  const outFull = mbs > 0 ? [o.batch, ...output.dims.map(Number)] : output.dims.map((d, i) => (i === 0 && d === -1 ? o.batch : Number(d)));
  if (output.data_type !== "TYPE_FP32" && output.data_type !== "TYPE_FP64")
    throw new Error(`${model} output '${output.name}' is ${output.data_type}; timeslide reads the detection statistic as TYPE_FP32 or TYPE_FP64`);
  const snap: SnapshotterOptions = { nIfo, kernel: o.kernel, stride: o.stride, batch: o.batch };
  const snapCfg = snapshotterConfig(snapName, snap, o.sequenceIdleMicroseconds ?? 60_000_000);
  // Triton gives a Direct sequence model with max_batch_size 0 one sequence
  // slot per instance: as many instances as streams the server carries.
  const streams = o.streams ?? DEFAULT_STREAMS;
  if (!Number.isInteger(streams) || streams < 1) throw new Error(`stream: streams ${streams}: expected a whole number >= 1`);
  snapCfg.instance_group = [{ count: streams, kind: o.kind ?? "KIND_CPU" }];
  const ensemble: ModelConfig = {
    name,
    platform: "ensemble",
    max_batch_size: 0,
    input: [{ name: "update", data_type: "TYPE_FP32", dims: [1, nIfo, o.stride * o.batch] }],
    output: [{ name: output.name, data_type: output.data_type, dims: outFull }],
    ensemble_scheduling: {
      step: [
        { model_name: snapName, model_version: -1, input_map: { update: "update" }, output_map: { windows: "windows" } },
        { model_name: o.model, model_version: -1, input_map: { [input.name]: "windows" }, output_map: { [output.name]: output.name } },
      ],
    },
  };
  const wiring = ensembleProblems(ensemble, (n) => (n === snapName ? { config: snapCfg } : lookup(n)));
  if (wiring.length) throw new Error(wiring.join("; "));
  mkdirSync(join(repository, snapName, "1"), { recursive: true });
  writeFileSync(join(repository, snapName, "1", "model.onnx"), buildSnapshotter(snap));
  writeModelConfig(repository, snapCfg);
  mkdirSync(join(repository, name, "1"), { recursive: true });
  writeModelConfig(repository, ensemble);
  return { ensemble: name, snapshotter: snapName, model: o.model, input: input.name, output: output.name, nIfo, updateSize: o.stride * o.batch, stateSize: snapshotSize(snap) };
}

/** Creates an empty repository folder (refuses a path that is a file). */
export function initRepository(repository: string): string {
  const dir = resolve(repository);
  if (existsSync(dir) && !existsSync(join(dir, "."))) throw new Error(`model repository ${dir}: exists and is not a directory`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export interface ListedTensor {
  name: string;
  data_type: string;
  dims: number[];
  reshape?: number[];
}

export interface ListedModel {
  name: string;
  platform: string;
  versions: number[];
  served: number[];
  max_batch_size: number;
  inputs: ListedTensor[];
  outputs: ListedTensor[];
  /** streaming state (a snapshotter) */
  state?: Array<{ input: string; output: string; dims: number[] }>;
  /** ensemble wiring: each step's model with its input_map and output_map */
  steps?: Array<{ model: string; input_map: Record<string, string>; output_map: Record<string, string> }>;
  /** a factorized pair's slides ensemble: what its parameters declare */
  pair?: { embedding_dim: number; detectors: number; encoders: Record<string, string>; head?: string; whole?: string };
  /** empty: the model passes every rule the server applies at load */
  problems: string[];
}

export interface RepositoryListing {
  repository: string;
  models: ListedModel[];
  skipped: SkippedFolder[];
}

/** Models, versions, inputs/outputs, ensemble wiring and each model's problems (the check's). */
export function listRepository(repository: string): RepositoryListing {
  const r = checkRepository(resolve(repository));
  const tensors = (ts: ModelTensorConfig[] | undefined): ListedTensor[] =>
    (ts ?? []).map((t) => ({ name: t.name, data_type: t.data_type, dims: t.dims.map(Number), ...(t.reshape ? { reshape: (t.reshape.shape ?? []).map(Number) } : {}) }));
  return {
    repository: r.repository,
    skipped: r.skipped,
    models: r.models.map((m) => {
      const c = m.config!;
      const out: ListedModel = {
        name: m.name,
        platform: c.platform || (c.backend === "onnxruntime" ? "onnxruntime_onnx" : c.backend || ""),
        versions: m.versions,
        served: m.served,
        max_batch_size: Number(c.max_batch_size ?? 0),
        inputs: tensors(c.input),
        outputs: tensors(c.output),
        problems: m.problems,
      };
      if (c.sequence_batching?.state?.length) out.state = c.sequence_batching.state.map((s) => ({ input: s.input_name, output: s.output_name, dims: (s.dims ?? []).map(Number) }));
      const pair = declaredPair(c);
      if (pair)
        out.pair = {
          embedding_dim: pair.embeddingDim,
          detectors: pair.detectors,
          encoders: { ...(pair.encoder ? { "*": pair.encoder } : {}), ...pair.perDetector },
          ...(pair.head ? { head: pair.head } : {}),
          ...(pair.whole ? { whole: pair.whole } : {}),
        };
      if (c.ensemble_scheduling) out.steps = c.ensemble_scheduling.step.map((s) => ({ model: s.model_name, input_map: s.input_map ?? {}, output_map: s.output_map ?? {} }));
      return out;
    }),
  };
}

/** Human-readable listing. */
export function formatListing(l: RepositoryListing): string {
  const lines = [`model repository ${l.repository}`];
  const t = (x: ListedTensor, mbs: number) => `${x.name} ${x.data_type.replace("TYPE_", "")} ${fmt(mbs > 0 ? [-1, ...x.dims] : x.dims)}${x.reshape ? ` (reshape ${fmt(x.reshape)})` : ""}`;
  for (const m of l.models) {
    lines.push(`  ${m.name}  ${m.platform}  versions ${m.versions.join(", ") || "none"}${m.served.length ? ` (serves ${m.served.join(", ")})` : ""}${m.max_batch_size ? `  max_batch_size ${m.max_batch_size}` : ""}`);
    for (const x of m.inputs) lines.push(`    input  ${t(x, m.max_batch_size)}`);
    for (const x of m.outputs) lines.push(`    output ${t(x, m.max_batch_size)}`);
    for (const s of m.state ?? []) lines.push(`    state  ${s.input} -> ${s.output} ${fmt(s.dims)}`);
    (m.steps ?? []).forEach((s, i) => {
      const ins = Object.entries(s.input_map).map(([k, v]) => `${v} -> ${k}`).join(", ");
      const outs = Object.entries(s.output_map).map(([k, v]) => `${k} -> ${v}`).join(", ");
      lines.push(`    step ${i + 1}: ${s.model} (${ins}) => (${outs})`);
    });
    if (m.pair) {
      const enc = Object.entries(m.pair.encoders).map(([ifo, e]) => (ifo === "*" ? `${e} (all detectors)` : `${ifo}: ${e}`)).join(", ");
      lines.push(`    factorized pair: ${m.pair.detectors} detectors, D = ${m.pair.embedding_dim}; encoders ${enc}; head ${m.pair.head ?? "?"}${m.pair.whole ? `; whole model ${m.pair.whole}` : ""}`);
    }
    for (const p of m.problems) lines.push(`    PROBLEM: ${p}`);
  }
  for (const s of l.skipped) lines.push(`  skipped ${s.folder}: ${s.reason}`);
  if (!l.models.length && !l.skipped.length) lines.push("  (empty: add a model with `timeslide model-repo add`)");
  return lines.join("\n");
}
