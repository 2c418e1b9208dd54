// The rules a model must pass to be served, in one place: the embedded
// server applies them when it loads a model (apps/server) and
// `timeslide model-repo check` applies them to a repository on disk. They
// follow what Triton checks at load (config against the ONNX graph:
// names, data types, ranks, a dynamic batch axis when max_batch_size > 0;
// ensemble wiring), and each problem names the model, the tensor, what was
// expected and what to do.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ModelConfig, ModelTensorConfig } from "./config.js";
import { readOnnxSignature, type OnnxSignature, type TensorSignature } from "./onnx.js";
import { listVersions, readModel, selectVersions, type ModelEntry } from "./repository.js";

const fmt = (d: readonly number[]) => `[${d.join(", ")}]`;

/** True for `platform: "ensemble"`. */
export const isEnsemble = (c: ModelConfig): boolean => c.platform === "ensemble";
/** True for an ONNX Runtime model (platform onnxruntime_onnx or backend onnxruntime). */
export const isOnnx = (c: ModelConfig): boolean => c.platform === "onnxruntime_onnx" || c.backend === "onnxruntime";

/** Names fed by the server rather than by a request: implicit state inputs and control inputs. */
function serverFed(config: ModelConfig): { inputs: Set<string>; outputs: Set<string> } {
  const sb = config.sequence_batching;
  return {
    inputs: new Set([...(sb?.state ?? []).map((s) => s.input_name), ...(sb?.control_input ?? []).map((c) => c.name)]),
    outputs: new Set((sb?.state ?? []).map((s) => s.output_name)),
  };
}

/**
 * Triton's auto-complete: a config without inputs (or outputs) takes them
 * from the graph (less the state and control tensors the server feeds).
 * Returns a completed copy.
 */
export function completeConfig(config: ModelConfig, sig: OnnxSignature): ModelConfig {
  const out = structuredClone(config);
  if (out.input?.length && out.output?.length) return out;
  const mbs = out.max_batch_size ?? 0;
  const strip = (t: TensorSignature): ModelTensorConfig => ({ name: t.name, data_type: t.data_type as ModelTensorConfig["data_type"], dims: mbs > 0 ? t.dims.slice(1) : t.dims });
  const fed = serverFed(out);
  if (!out.input?.length) out.input = sig.inputs.filter((t) => !fed.inputs.has(t.name)).map(strip);
  if (!out.output?.length) out.output = sig.outputs.filter((t) => !fed.outputs.has(t.name)).map(strip);
  return out;
}

/** The shape the graph must have for a config tensor: the batch axis (-1) first when max_batch_size > 0, reshape's shape when given. */
function graphShapeFor(t: { dims: number[]; reshape?: { shape?: number[] } }, maxBatchSize: number): number[] {
  const inner = (t.reshape ? (t.reshape.shape ?? []) : t.dims).map(Number);
  return maxBatchSize > 0 ? [-1, ...inner] : inner;
}

const controlType = (c: NonNullable<NonNullable<ModelConfig["sequence_batching"]>["control_input"]>[number]["control"][number]): string =>
  c.int32_false_true?.length ? "TYPE_INT32" : c.fp32_false_true?.length ? "TYPE_FP32" : c.bool_false_true?.length ? "TYPE_BOOL" : (c.data_type ?? "TYPE_UINT64");

/**
 * What does not match between an ONNX model's config and its graph (one
 * version's file): every problem names the model, the tensor, what the
 * config says and what the graph has. Empty when the model can be served.
 */
export function onnxConfigProblems(config: ModelConfig, sig: OnnxSignature, file: string): string[] {
  const model = `model '${config.name}'`;
  const problems: string[] = [];
  const mbs = Number(config.max_batch_size ?? 0);
  const graphIn = new Map(sig.inputs.map((t) => [t.name, t]));
  const graphOut = new Map(sig.outputs.map((t) => [t.name, t]));
  const fed = serverFed(config);
  const names = (m: Map<string, TensorSignature>) => [...m.keys()].map((n) => `'${n}'`).join(", ") || "none";
  const fix = "re-export the model, or write the config from the graph with `timeslide model-repo add`";

  const compare = (io: "input" | "output", want: { name: string; data_type: string; shape: number[] }, g: TensorSignature, batchAxis: boolean) => {
    const at = `${model} ${io} '${want.name}'`;
    if (g.data_type !== want.data_type) problems.push(`${at}: config.pbtxt says ${want.data_type}, the graph ${file} has ${g.data_type} (${fix})`);
    if (g.dims.length !== want.shape.length) {
      problems.push(
        `${at}: config.pbtxt gives ${want.shape.length} dimensions ${fmt(want.shape)}${batchAxis ? " (the batch axis first, max_batch_size " + mbs + ")" : ""}, ` +
          `the graph ${file} has ${g.dims.length}: ${fmt(g.dims)} (${fix})`,
      );
      return;
    }
    if (batchAxis && g.dims[0] !== -1) {
      problems.push(
        `${at}: max_batch_size ${mbs} needs a dynamic first (batch) axis, but the graph ${file} has a fixed first axis of ${g.dims[0]} (shape ${fmt(g.dims)}): ` +
          `re-export with a dynamic batch axis (torch.onnx.export(..., dynamic_axes={'${want.name}': {0: 'batch'}})), ` +
          `or set max_batch_size: 0 and dims: ${fmt(g.dims)} in config.pbtxt (the model then takes exactly ${g.dims[0]} per request)`,
      );
    }
    for (let i = batchAxis ? 1 : 0; i < g.dims.length; i++) {
      const w = want.shape[i];
      if (w !== -1 && g.dims[i] !== -1 && w !== g.dims[i]) {
        problems.push(`${at}: config.pbtxt gives shape ${fmt(want.shape)}, the graph ${file} has ${fmt(g.dims)} (axis ${i}: ${w} vs ${g.dims[i]}; ${fix})`);
        break;
      }
    }
  };

  for (const [io, tensors, graph] of [
    ["input", config.input, graphIn],
    ["output", config.output, graphOut],
  ] as const) {
    for (const t of tensors ?? []) {
      const g = graph.get(t.name);
      if (!g) {
        problems.push(`${model} ${io} '${t.name}': not an ${io} of the graph ${file} (its ${io}s: ${names(graph)}); name it as the graph does in config.pbtxt, or ${fix.replace("re-export the model, or ", "")}`);
        continue;
      }
      compare(io, { name: t.name, data_type: t.data_type, shape: graphShapeFor(t, mbs) }, g, mbs > 0);
    }
  }
  const declared = new Set([...(config.input ?? []).map((t) => t.name), ...fed.inputs]);
  for (const name of graphIn.keys()) {
    if (!declared.has(name)) problems.push(`${model}: the graph ${file} has input '${name}', which config.pbtxt does not declare (Triton feeds only declared inputs): add it to config.pbtxt`);
  }
  const sb = config.sequence_batching;
  for (const s of sb?.state ?? []) {
    const dims = (s.dims ?? []).map(Number);
    const shape = mbs > 0 ? [-1, ...dims] : dims;
    for (const [io, name, map] of [
      ["input", s.input_name, graphIn],
      ["output", s.output_name, graphOut],
    ] as const) {
      const g = map.get(name);
      if (!g) problems.push(`${model} state ${io} '${name}': not an ${io} of the graph ${file} (its ${io}s: ${names(map)})`);
      else compare(io, { name, data_type: s.data_type, shape }, { ...g, dims: mbs > 0 && g.dims[0] === 1 ? [-1, ...g.dims.slice(1)] : g.dims }, false);
    }
  }
  for (const ci of sb?.control_input ?? []) {
    const g = graphIn.get(ci.name);
    if (!g) {
      problems.push(`${model} control input '${ci.name}': not an input of the graph ${file} (its inputs: ${names(graphIn)})`);
      continue;
    }
    for (const c of ci.control ?? []) {
      const want = controlType(c);
      if (g.data_type !== want) problems.push(`${model} control input '${ci.name}': config.pbtxt makes it ${want}, the graph ${file} has ${g.data_type}`);
    }
  }
  return problems;
}

/** A model's config as the check needs it: read from the repository (null when it has none or it does not parse). */
export type ConfigLookup = (name: string) => { config?: ModelConfig; error?: string };

/**
 * An ensemble's wiring against its steps' configs: every step model exists,
 * every input it needs is mapped from an ensemble input or an earlier
 * step's output, mapped names are the step model's own tensor names, the
 * ensemble's outputs are produced, and data types agree along the way.
 */
export function ensembleProblems(config: ModelConfig, lookup: ConfigLookup): string[] {
  const model = `ensemble '${config.name}'`;
  const problems: string[] = [];
  const steps = config.ensemble_scheduling?.step ?? [];
  // tensor name → data type, as produced so far (the ensemble's inputs first)
  const produced = new Map<string, string>((config.input ?? []).map((t) => [t.name, t.data_type]));
  const producedBy = new Map<string, string>((config.input ?? []).map((t) => [t.name, "the ensemble's input"]));
  const consumed = new Set<string>();
  const stepConfigs = steps.map((s) => lookup(s.model_name));
  // Steps run when their inputs are there; check them in that order.
  const pending = steps.map((s, i) => ({ s, i }));
  let progress = true;
  while (pending.length && progress) {
    progress = false;
    for (let k = 0; k < pending.length; k++) {
      const { s, i } = pending[k];
      if (!Object.values(s.input_map ?? {}).every((t) => produced.has(t))) continue;
      pending.splice(k--, 1);
      progress = true;
      const at = `${model} step ${i + 1} (model '${s.model_name}')`;
      const sub = stepConfigs[i];
      for (const t of Object.values(s.input_map ?? {})) consumed.add(t);
      if (s.model_name === config.name) {
        problems.push(`${at}: an ensemble cannot run itself`);
        continue;
      }
      if (!sub.config) {
        problems.push(`${at}: ${sub.error ?? `no model '${s.model_name}' in the repository`}`);
        for (const t of Object.values(s.output_map ?? {})) produced.set(t, "?");
        continue;
      }
      const c = sub.config;
      const fed = serverFed(c);
      const ins = new Map((c.input ?? []).map((t) => [t.name, t]));
      const outs = new Map((c.output ?? []).map((t) => [t.name, t]));
      for (const [modelInput, tensor] of Object.entries(s.input_map ?? {})) {
        const want = ins.get(modelInput);
        if (!want) {
          problems.push(
            `${at}: input_map maps '${tensor}' to '${modelInput}', but model '${s.model_name}' has no input '${modelInput}' (its inputs: ${[...ins.keys()].map((n) => `'${n}'`).join(", ") || "none"}); ` +
              `map it to the model's own input name (\`timeslide model-repo stream\` writes the wiring from the model's config)`,
          );
          continue;
        }
        const got = produced.get(tensor);
        if (got && got !== "?" && got !== want.data_type)
          problems.push(`${at}: input '${modelInput}' is ${want.data_type}, but '${tensor}' (from ${producedBy.get(tensor)}) is ${got}`);
      }
      const mapped = new Set(Object.keys(s.input_map ?? {}));
      for (const t of c.input ?? []) {
        if (!t.optional && !fed.inputs.has(t.name) && !mapped.has(t.name))
          problems.push(`${at}: model '${s.model_name}' needs input '${t.name}', which input_map does not feed (input_map: ${JSON.stringify(s.input_map ?? {})})`);
      }
      for (const [modelOutput, tensor] of Object.entries(s.output_map ?? {})) {
        const o = outs.get(modelOutput);
        if (!o) {
          problems.push(
            `${at}: output_map reads '${modelOutput}', but model '${s.model_name}' has no output '${modelOutput}' (its outputs: ${[...outs.keys()].map((n) => `'${n}'`).join(", ") || "none"})`,
          );
          produced.set(tensor, "?");
        } else produced.set(tensor, o.data_type);
        producedBy.set(tensor, `step ${i + 1} (model '${s.model_name}' output '${modelOutput}')`);
      }
    }
  }
  for (const { s, i } of pending) {
    const missing = Object.values(s.input_map ?? {}).filter((t) => !produced.has(t));
    problems.push(`${model} step ${i + 1} (model '${s.model_name}'): waits for ${missing.map((t) => `'${t}'`).join(", ")}, which neither the ensemble's inputs nor any step's output_map provide`);
  }
  for (const t of config.input ?? []) {
    if (!consumed.has(t.name)) problems.push(`${model} input '${t.name}': no step's input_map reads it`);
  }
  for (const t of config.output ?? []) {
    const got = produced.get(t.name);
    if (!got) problems.push(`${model} output '${t.name}': no step's output_map produces it`);
    else if (got !== "?" && got !== t.data_type) problems.push(`${model} output '${t.name}': config.pbtxt says ${t.data_type}, ${producedBy.get(t.name)} gives ${got}`);
  }
  return problems;
}

/** Keys of a slides ensemble's `parameters` that declare a factorized pair (factorized.ts re-exports them). */
export const PAIR_PARAMETERS = {
  /** the encoder's streaming ensemble, shared by all detectors */
  encoder: "factorized_encoder",
  /** prefix of per-detector encoders' streaming ensembles: factorized_encoder_H1, ... */
  encoderPrefix: "factorized_encoder_",
  /** D, floats per embedding */
  embeddingDim: "factorized_embedding_dim",
  /** n_ifo the head fuses */
  detectors: "factorized_detectors",
  /** the head model (informational: the ensemble's second step) */
  head: "factorized_head",
  /** the equivalent whole model's streaming ensemble, where there is one */
  whole: "factorized_whole_model",
} as const;

/** A pair as its parameters declare it (no campaign needed): undefined when the config declares none. */
export interface DeclaredPair {
  embeddingDim: number;
  detectors: number;
  /** the shared encoder stream, if any */
  encoder?: string;
  /** per-detector encoder streams by detector name */
  perDetector: Record<string, string>;
  head?: string;
  whole?: string;
}

export function declaredPair(config: ModelConfig): DeclaredPair | undefined {
  const p = config.parameters ?? {};
  if (!Object.keys(p).some((k) => k.startsWith("factorized_"))) return undefined;
  const K = PAIR_PARAMETERS;
  const get = (k: string) => p[k]?.string_value;
  const perDetector: Record<string, string> = {};
  for (const k of Object.keys(p)) if (k.startsWith(K.encoderPrefix) && k !== K.encoder) perDetector[k.slice(K.encoderPrefix.length)] = get(k) ?? "";
  return { embeddingDim: Number(get(K.embeddingDim)), detectors: Number(get(K.detectors)), encoder: get(K.encoder), perDetector, head: get(K.head), whole: get(K.whole) };
}

/**
 * A factorized pair's declaration against the models it names (DESIGN.md,
 * "Factorized models"): D and the detector count are whole numbers, there
 * is an encoder for every detector, each encoder stream takes one detector
 * and gives [batch, D], the head takes [n_ifo, D] and gives one statistic,
 * the whole model (when declared) takes n_ifo detectors with the encoders'
 * update size. Each problem names the model, the tensor and the shapes.
 */
export function pairProblems(config: ModelConfig, lookup: ConfigLookup): string[] {
  const pair = declaredPair(config);
  if (!pair) return [];
  const K = PAIR_PARAMETERS;
  const at = `factorized pair '${config.name}'`;
  const problems: string[] = [];
  const D = pair.embeddingDim;
  const n = pair.detectors;
  if (!(Number.isInteger(D) && D >= 1)) problems.push(`${at}: parameter ${K.embeddingDim} "${config.parameters?.[K.embeddingDim]?.string_value ?? ""}" is not a whole number >= 1`);
  if (!(Number.isInteger(n) && n >= 1)) problems.push(`${at}: parameter ${K.detectors} "${config.parameters?.[K.detectors]?.string_value ?? ""}" is not a whole number >= 1`);
  const per = Object.entries(pair.perDetector);
  if (!pair.encoder && !per.length) problems.push(`${at}: declares no encoder: set ${K.encoder} (one for all detectors) or ${K.encoderPrefix}<IFO> for each detector`);
  else if (!pair.encoder && Number.isInteger(n) && per.length !== n)
    problems.push(
      `${at}: per-detector encoders for ${per.map(([i]) => i).join(", ")} (${per.length}) but the head fuses ${n} detectors: ` +
        `a detector without ${K.encoderPrefix}<IFO> has no encoder (add one, or a shared ${K.encoder})`,
    );
  const mbsShape = (c: ModelConfig, dims: number[]) => (Number(c.max_batch_size ?? 0) > 0 ? [-1, ...dims] : dims);
  const encoders: Array<[string, string]> = [...(pair.encoder ? [["all detectors", pair.encoder] as [string, string]] : []), ...per];
  let update: { size: number; from: string } | undefined;
  for (const [ifo, name] of encoders) {
    const e = lookup(name);
    const what = `${at}: encoder stream '${name}' (${ifo})`;
    if (!e.config) {
      problems.push(`${what}: ${e.error ?? "no such model in the repository"}`);
      continue;
    }
    const inp = e.config.input?.[0];
    const out = e.config.output?.[0];
    const inDims = inp ? mbsShape(e.config, inp.dims.map(Number)) : [];
    if (!inp || inDims.length !== 3 || inDims[1] !== 1)
      problems.push(`${what}: input ${inp ? `'${inp.name}' ${fmt(inDims)}` : "missing"}; an encoder stream takes one detector's update [1, 1, stride·batch]`);
    else if (update && inDims[2] !== update.size)
      problems.push(`${what}: input '${inp.name}' ${fmt(inDims)} takes ${inDims[2]} samples per update, ${update.from} takes ${update.size}: the encoders must stream the same geometry`);
    else update ??= { size: inDims[2], from: `encoder stream '${name}'` };
    const outDims = out ? mbsShape(e.config, out.dims.map(Number)) : [];
    if (!out || outDims.length !== 2) problems.push(`${what}: output ${out ? `'${out.name}' ${fmt(outDims)}` : "missing"}; expected embeddings [batch, ${D}]`);
    else if (outDims[1] !== D && outDims[1] !== -1) problems.push(`${what}: output '${out.name}' ${fmt(outDims)} gives D = ${outDims[1]}; the pair declares ${K.embeddingDim} ${D} (encoder and head must agree)`);
  }
  if (pair.head) {
    const h = lookup(pair.head);
    if (!h.config) problems.push(`${at}: head '${pair.head}': ${h.error ?? "no such model in the repository"}`);
    else {
      const inp = h.config.input?.[0];
      const dims = inp ? mbsShape(h.config, inp.dims.map(Number)) : [];
      if (!inp || dims.length !== 3) problems.push(`${at}: head '${pair.head}' input ${inp ? `'${inp.name}' ${fmt(dims)}` : "missing"}; expected [batch, ${n}, ${D}]`);
      else {
        if (dims[1] !== n && dims[1] !== -1) problems.push(`${at}: head '${pair.head}' input '${inp.name}' ${fmt(dims)} fuses ${dims[1]} detectors; the pair declares ${K.detectors} ${n}`);
        if (dims[2] !== D && dims[2] !== -1) problems.push(`${at}: head '${pair.head}' input '${inp.name}' ${fmt(dims)} takes D = ${dims[2]}; the encoders give ${K.embeddingDim} ${D}`);
      }
    }
  }
  if (pair.whole) {
    const w = lookup(pair.whole);
    if (!w.config) problems.push(`${at}: whole model '${pair.whole}': ${w.error ?? "no such model in the repository"}`);
    else {
      const inp = w.config.input?.[0];
      const dims = inp ? mbsShape(w.config, inp.dims.map(Number)) : [];
      if (!inp || dims.length !== 3) problems.push(`${at}: whole model '${pair.whole}' input ${inp ? `'${inp.name}' ${fmt(dims)}` : "missing"}; expected a streaming update [1, ${n}, stride·batch]`);
      else {
        if (dims[1] !== n) problems.push(`${at}: whole model '${pair.whole}' input '${inp.name}' ${fmt(dims)} takes ${dims[1]} detectors; the head fuses ${n}`);
        if (update && dims[2] !== update.size)
          problems.push(`${at}: whole model '${pair.whole}' input '${inp.name}' ${fmt(dims)} takes ${dims[2]} samples per update, ${update.from} ${update.size}: the pair and its whole model must stream the same geometry`);
      }
    }
  }
  return problems;
}

/** One model folder as the check and the server see it. */
export interface ModelCheck {
  name: string;
  dir: string;
  /** the config as served (completed from the graph where it lacked inputs/outputs) */
  config?: ModelConfig;
  /** version folders present */
  versions: number[];
  /** versions the version policy serves */
  served: number[];
  /** graph signature of each served ONNX version */
  signatures: Map<number, OnnxSignature>;
  problems: string[];
}

/** A repository lookup that reads (and caches) configs, for ensemble wiring. */
export function repositoryLookup(repository: string): ConfigLookup {
  const cache = new Map<string, { config?: ModelConfig; error?: string }>();
  return (name) => {
    let r = cache.get(name);
    if (!r) {
      try {
        const e = readModel(repository, name);
        let config = e.config;
        // Complete from the graph as the server does, so wiring sees the served tensors.
        if (isOnnx(config) && !(config.input?.length && config.output?.length)) {
          const v = selectVersions(config.version_policy, e.versions).at(-1);
          const file = v !== undefined ? join(e.dir, String(v), config.default_model_filename || "model.onnx") : undefined;
          if (file && existsSync(file)) config = completeConfig(config, readOnnxSignature(readFileSync(file), file));
        }
        r = { config };
      } catch (err) {
        r = { error: (err as Error).message };
      }
      cache.set(name, r);
    }
    return r;
  };
}

/**
 * Checks one model folder with the rules the server applies at load: the
 * config parses and names the folder, a version folder exists for the
 * version policy, each served version's model file is there and its graph
 * matches the config; an ensemble's wiring matches its steps' configs.
 */
export interface CheckOptions {
  /**
   * Platforms served besides ONNX Runtime models and ensembles (a server's
   * registered backends): such a model is checked for its version folders
   * only; its files are its backend's to judge at load.
   */
  otherPlatform?: (config: ModelConfig) => boolean;
}

export function checkModelEntry(entry: ModelEntry, lookup: ConfigLookup, o: CheckOptions = {}): ModelCheck {
  const config = entry.config;
  const r: ModelCheck = { name: entry.name, dir: entry.dir, config, versions: entry.versions, served: [], signatures: new Map(), problems: [] };
  const model = `model '${entry.name}'`;
  if (isEnsemble(config)) {
    r.served = selectVersions(config.version_policy, entry.versions.length ? entry.versions : [1]);
    r.problems.push(...ensembleProblems(config, lookup), ...pairProblems(config, lookup));
    return r;
  }
  const other = !isOnnx(config) && o.otherPlatform?.(config);
  if (!isOnnx(config) && !other) {
    r.problems.push(`${model}: platform '${config.platform || config.backend}' is not served here (timeslide serve runs ONNX Runtime models and ensembles; Triton may serve it)`);
    return r;
  }
  if (!entry.versions.length) {
    r.problems.push(`${model}: no version folder in ${entry.dir} (expected ${join(entry.dir, "1", config.default_model_filename || "model.onnx")}; \`timeslide model-repo add\` creates it)`);
    return r;
  }
  r.served = selectVersions(config.version_policy, entry.versions);
  if (!r.served.length) {
    r.problems.push(`${model}: no version folder (${entry.versions.join(", ")}) matches the version_policy ${JSON.stringify(config.version_policy)}`);
    return r;
  }
  if (other) return r;
  const fileName = config.default_model_filename || "model.onnx";
  let completed: ModelConfig | undefined;
  for (const v of r.served) {
    const file = join(entry.dir, String(v), fileName);
    if (!existsSync(file)) {
      r.problems.push(`${model} version ${v}: missing model file ${file}`);
      continue;
    }
    let sig: OnnxSignature;
    try {
      sig = readOnnxSignature(readFileSync(file), file);
    } catch (e) {
      r.problems.push(`${model} version ${v}: ${(e as Error).message}`);
      continue;
    }
    r.signatures.set(v, sig);
    completed ??= completeConfig(config, sig);
    r.problems.push(...onnxConfigProblems(completed, sig, file));
  }
  if (completed) r.config = completed;
  return r;
}

/** A folder of the repository that is not served, and why. */
export interface SkippedFolder {
  folder: string;
  reason: string;
}

export interface RepositoryCheck {
  repository: string;
  models: ModelCheck[];
  /** folders that are no model: no config.pbtxt, or one that does not parse or name the folder */
  skipped: SkippedFolder[];
}

/**
 * Checks every folder of a repository. A folder without config.pbtxt, or
 * whose config does not parse, is skipped with the reason; every model is
 * checked with `checkModelEntry`.
 */
export function checkRepository(repository: string): RepositoryCheck {
  if (!existsSync(repository) || !statSync(repository).isDirectory()) throw new Error(`model repository ${repository}: not a directory`);
  const out: RepositoryCheck = { repository, models: [], skipped: [] };
  const lookup = repositoryLookup(repository);
  for (const d of readdirSync(repository, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!d.isDirectory() || d.name.startsWith(".")) continue;
    const reason = folderSkipReason(repository, d.name);
    if (reason) {
      out.skipped.push({ folder: d.name, reason });
      continue;
    }
    let entry: ModelEntry;
    try {
      entry = readModel(repository, d.name);
    } catch (e) {
      out.skipped.push({ folder: d.name, reason: `config.pbtxt does not parse: ${(e as Error).message}` });
      continue;
    }
    out.models.push(checkModelEntry(entry, lookup));
  }
  return out;
}

/** Why a repository folder is no model at all (no config.pbtxt), or undefined. */
export function folderSkipReason(repository: string, folder: string): string | undefined {
  const dir = join(repository, folder);
  if (existsSync(join(dir, "config.pbtxt"))) return undefined;
  const versions = listVersions(dir);
  const onnx = versions.map((v) => join(dir, String(v), "model.onnx")).find((f) => existsSync(f));
  return (
    `no config.pbtxt in ${dir}` +
    (onnx ? ` (it holds ${onnx}: write the config from the graph with \`timeslide model-repo add ${repository} ${folder} ${onnx}\`)` : ": a model folder needs config.pbtxt and a version folder (1/model.onnx)")
  );
}
