import { grpcTlsFromEnv, InferenceClient, isServerFailure, KServeError, type ServerPool } from "@timeslide/kserve";
import type { CampaignSpec } from "@timeslide/campaign";
import { readFactorized, type FactorizedPair, type ModelConfig } from "@timeslide/model-repo";
import { StreamingModel, WindowModel, type DetectionModel, type Geometry } from "./inference.js";
import { FactorizedModel } from "./factorized.js";
import { PermanentJobError } from "./pipeline.js";

const DEADLINE_MS = 10_000;

/** A tensor as a server's metadata lists it (-1: variable). */
export interface TensorDescription {
  name: string;
  shape: number[];
  datatype?: string;
}

/** The campaign's model as one server describes it (metadata and config over gRPC). */
export interface ModelDescription {
  endpoint: string;
  name: string;
  /** a step is stateful (sequence batching): fed stride·batch new samples per request */
  streaming: boolean;
  /** the model's inputs as its metadata lists them (-1: variable) */
  inputs: TensorDescription[];
  /** the model's outputs as its metadata lists them */
  outputs?: TensorDescription[];
  /** @deprecated the first output's name; `pickTensors` chooses */
  output?: string;
  /**
   * For a streaming ensemble, the model proper (the step after the stateful
   * one) that sees the windows: its input shape, batch dimension first when
   * max_batch_size > 0.
   */
  windows?: { model: string; input: string; shape: number[]; maxBatchSize: number; datatype?: string };
  /**
   * The model is ready but the server is not (another model failed to load:
   * Triton's strict readiness), so workers' pools will not use it: the
   * models not READY with their reasons.
   */
  serverNotReady?: string;
  /** the factorized pair its config declares (model.factorized campaigns); factorizedError: why the declaration does not fit */
  factorized?: FactorizedPair;
  factorizedError?: string;
  /** max_batch_size of each ensemble step's model */
  stepMaxBatch?: Record<string, number>;
}

/**
 * A server answered, but the model is not served there: not in its
 * repository, or there but not loaded (its load failed: the server's
 * reason, from RepositoryIndex, as Triton reports it).
 */
export class ModelNotServedError extends Error {
  override name = "ModelNotServedError";
  constructor(
    readonly endpoint: string,
    readonly model: string,
    readonly state: string,
    readonly reason: string,
  ) {
    super(
      state === "MISSING"
        ? `server ${endpoint} has no model ${model}${reason ? ` (${reason})` : ""}`
        : `server ${endpoint} has model ${model} but it is not ready (state ${state}${reason ? `: ${reason}` : ""})`,
    );
  }
}

/** The campaign's geometry in samples, as the worker feeds the model. */
export function campaignGeometry(spec: CampaignSpec): Geometry {
  const fs = spec.data.sample_rate;
  return {
    kernel: Math.round(spec.inference.kernel_length * fs),
    stride: Math.round(fs / spec.inference.inference_sampling_rate),
    batch: spec.inference.batch_size,
  };
}

const versionOf = (spec: CampaignSpec) => (spec.model.version === "latest" ? "" : String(spec.model.version));
const dims = (shape: ReadonlyArray<string | number>) => shape.map((d) => Number(d));

/** Why a server that answered does not serve `name`: its RepositoryIndex entry (state, reason), or that it has none. */
async function notServed(client: InferenceClient, endpoint: string, name: string, version: string, cause: Error, deadlineMs: number): Promise<Error> {
  let index;
  try {
    index = await client.repositoryIndex({ deadlineMs });
  } catch {
    return cause; // the server did not answer: not a statement about the model
  }
  const entries = index.filter((m) => m.name === name && (!version || !m.version || m.version === version));
  const ready = entries.find((m) => m.state === "READY");
  if (!entries.length) {
    const names = [...new Set(index.map((m) => m.name))].sort();
    return new ModelNotServedError(endpoint, name, "MISSING", names.length ? `its models: ${names.join(", ")}` : "its repository is empty");
  }
  if (ready) return cause;
  const e = entries[0];
  return new ModelNotServedError(endpoint, name, e.state || "UNAVAILABLE", e.reason || (cause as KServeError).details || cause.message);
}

/** Asks one server for the campaign's model: readiness, metadata, config, and the configs of ensemble steps. */
export async function describeModel(endpoint: string, spec: CampaignSpec, deadlineMs = DEADLINE_MS): Promise<ModelDescription> {
  const name = spec.model.name;
  const version = versionOf(spec);
  const client = new InferenceClient({ endpoint, tls: grpcTlsFromEnv() }); // as the pool's clients
  try {
    let config, meta;
    try {
      if (!(await client.modelReady(name, version, { deadlineMs }))) throw new KServeError({ code: 14, details: `model '${name}' is not ready`, endpoint, method: "ModelReady" });
      config = await client.modelConfig(name, version, { deadlineMs });
      meta = await client.modelMetadata(name, version, { deadlineMs });
    } catch (e) {
      if (e instanceof KServeError && (e.code === 5 /* NOT_FOUND */ || e.code === 14 /* UNAVAILABLE */ || e.code === 3)) throw await notServed(client, endpoint, name, version, e, deadlineMs);
      throw e;
    }
    const tensors = (ts: Array<{ name: string; shape?: ReadonlyArray<string | number>; datatype?: string }> | undefined) =>
      (ts ?? []).map((t) => ({ name: t.name, shape: dims(t.shape ?? []), datatype: t.datatype }));
    const d: ModelDescription = {
      endpoint,
      name,
      streaming: Boolean(config.sequence_batching),
      inputs: tensors(meta.inputs),
      outputs: tensors(meta.outputs),
      output: meta.outputs?.[0]?.name,
    };
    if (spec.model.factorized) {
      try {
        d.factorized = readFactorized({ name, parameters: config.parameters } as ModelConfig, spec.ifos);
      } catch (e) {
        d.factorizedError = (e as Error).message;
      }
    }
    let afterState = false;
    let windowsTensor: string | undefined;
    for (const step of config.ensemble_scheduling?.step ?? []) {
      const sub = await client.modelConfig(step.model_name, "", { deadlineMs });
      (d.stepMaxBatch ??= {})[step.model_name] = Number(sub.max_batch_size ?? 0);
      if (sub.sequence_batching) {
        d.streaming = afterState = true;
        windowsTensor = Object.values(step.output_map ?? {})[0];
        continue;
      }
      // The first stateless step after the snapshotter takes its windows.
      if (afterState && !d.windows) {
        const subMeta = await client.modelMetadata(step.model_name, "", { deadlineMs });
        const mapped = Object.entries(step.input_map ?? {});
        const inputName = (mapped.find(([, t]) => t === windowsTensor) ?? mapped[0])?.[0] ?? subMeta.inputs?.[0]?.name ?? "";
        const t = subMeta.inputs?.find((x) => x.name === inputName) ?? subMeta.inputs?.[0];
        if (t) d.windows = { model: step.model_name, input: t.name, shape: dims(t.shape ?? []), maxBatchSize: Number(sub.max_batch_size ?? 0), datatype: t.datatype };
      }
    }
    if (!(await client.serverReady({ deadlineMs }))) {
      const failed = (await client.repositoryIndex({ deadlineMs }).catch(() => [])).filter((m) => m.state !== "READY" && m.reason && m.reason !== "unloaded");
      // Only models that failed, with a reason, are a refusal; a server still loading others is not.
      d.serverNotReady = failed.map((m) => `model ${m.name} ${m.state}: ${m.reason}`).join("; ") || "";
    }
    return d;
  } finally {
    client.close();
  }
}

/**
 * The model's strain input and statistic output: the one input and output,
 * or `model.input` / `model.output` of the campaign when there are several.
 * A problem names the candidates and the field to set.
 */
export function pickTensors(spec: CampaignSpec, d: ModelDescription): { input?: TensorDescription; output?: TensorDescription; problems: string[] } {
  const where = `model ${d.name} on ${d.endpoint}`;
  const problems: string[] = [];
  const choose = (list: TensorDescription[], wanted: string | undefined, io: "input" | "output", what: string) => {
    const names = list.map((t) => t.name).join(", ") || "none";
    if (wanted !== undefined) {
      const t = list.find((x) => x.name === wanted);
      if (!t) problems.push(`model.${io}: ${where} has no ${io} "${wanted}" (its ${io}s: ${names})`);
      return t;
    }
    if (list.length === 1) return list[0];
    problems.push(`${where}: expected one ${io} (${what}), got ${list.length}: ${names}${list.length > 1 ? `; set model.${io} in the campaign to the one that ${io === "input" ? "takes the strain" : "is the detection statistic"}` : ""}`);
    return undefined;
  };
  const input = choose(d.inputs, spec.model.input, "input", "the strain");
  const outputs = d.outputs ?? (d.output ? [{ name: d.output, shape: [] }] : []);
  const output = outputs.length || spec.model.output !== undefined ? choose(outputs, spec.model.output, "output", "the detection statistic") : undefined;
  return { input, output, problems };
}

const fmt = (shape: readonly number[]) => `[${shape.join(", ")}]`;
const fits = (got: number, want: number) => got === -1 || got === want;

/**
 * What does not match between the campaign and the model as served: the
 * number of detectors, the kernel (kernel_length · sample_rate samples) and,
 * for a streaming ensemble, the update (stride · batch_size samples, stride =
 * sample_rate / inference_sampling_rate). The worker feeds the model exactly
 * this geometry (`resolveModel`), so a mismatch here is a job that cannot run.
 */
export function modelProblems(spec: CampaignSpec, d: ModelDescription): string[] {
  if (spec.model.factorized) return slidesProblems(spec, d);
  const g = campaignGeometry(spec);
  const nIfo = spec.ifos.length;
  const where = `model ${d.name} on ${d.endpoint}`;
  const fs = spec.data.sample_rate;
  const kernelWhy = `inference.kernel_length ${spec.inference.kernel_length} s × data.sample_rate ${fs} Hz`;
  const ifoWhy = `ifos ${spec.ifos.join(", ")}`;
  const picked = pickTensors(spec, d);
  const problems: string[] = [...picked.problems];
  const input = picked.input;
  if (!input) return problems;
  if (input.datatype && input.datatype !== "FP32")
    problems.push(`${where}: input "${input.name}" is ${input.datatype}, the campaign sends FP32 strain: export the model in float32 (model.float())`);
  const output = picked.output;
  if (output?.datatype && output.datatype !== "FP32" && output.datatype !== "FP64")
    problems.push(`${where}: output "${output.name}" is ${output.datatype}; the detection statistic is read as FP32 or FP64`);
  if (d.streaming) {
    const U = g.stride * g.batch;
    const want = [1, nIfo, U];
    if (input.shape.length !== 3 || !want.every((w, i) => fits(input.shape[i], w)))
      problems.push(
        `${where}: streaming input "${input.name}" has shape ${fmt(input.shape)}, the campaign sends ${fmt(want)} ` +
          `(${nIfo} detectors from ${ifoWhy}; update = stride ${g.stride} × inference.batch_size ${g.batch} samples, ` +
          `stride = data.sample_rate ${fs} Hz / inference.inference_sampling_rate ${spec.inference.inference_sampling_rate} Hz)`,
      );
    const w = d.windows;
    if (w) {
      const [c, k] = w.shape.slice(-2);
      if (w.shape.length < 2 || !fits(c, nIfo) || !fits(k, g.kernel))
        problems.push(
          `${where}: step ${w.model} input "${w.input}" takes windows of shape ${fmt(w.shape)}, the campaign's windows are [${nIfo}, ${g.kernel}] ` +
            `(${nIfo} detectors from ${ifoWhy}; kernel ${g.kernel} samples = ${kernelWhy})`,
        );
      if (w.maxBatchSize > 0 && w.maxBatchSize < g.batch)
        problems.push(`${where}: step ${w.model} has max_batch_size ${w.maxBatchSize}, below inference.batch_size ${g.batch} windows per update`);
      if (w.maxBatchSize === 0 && w.shape.length === 3 && w.shape[0] > 0 && w.shape[0] !== g.batch)
        problems.push(
          `${where}: step ${w.model} input "${w.input}" takes exactly ${w.shape[0]} windows per request (shape ${fmt(w.shape)}, no batch axis), the campaign sends inference.batch_size ${g.batch}: ` +
            `set inference.batch_size ${w.shape[0]}, or re-export the model with a dynamic batch axis`,
        );
    }
  } else {
    const [c, k] = input.shape.slice(-2);
    if (input.shape.length !== 3 || !fits(c, nIfo) || !fits(k, g.kernel))
      problems.push(
        `${where}: input "${input.name}" has shape ${fmt(input.shape)}, the campaign sends windows [batch, ${nIfo}, ${g.kernel}] ` +
          `(${nIfo} detectors from ${ifoWhy}; kernel ${g.kernel} samples = ${kernelWhy})`,
      );
    else if (input.shape[0] > 0 && input.shape[0] !== g.batch)
      problems.push(
        `${where}: input "${input.name}" takes exactly ${input.shape[0]} windows per request (shape ${fmt(input.shape)}, no batch axis), the campaign sends up to inference.batch_size ${g.batch}: ` +
          `set inference.batch_size ${input.shape[0]}, or re-export the model with a dynamic batch axis`,
      );
  }
  return problems;
}

/** What is wrong with a factorized campaign's model (its slides ensemble) as served. */
function slidesProblems(spec: CampaignSpec, d: ModelDescription): string[] {
  const where = `model ${d.name} on ${d.endpoint}`;
  if (d.factorizedError) return [`model.factorized: ${d.factorizedError}`];
  if (!d.factorized)
    return [
      `model.factorized: the campaign is factorized but ${where} declares no factorized pair (no factorized_* parameters in its config; it is ${d.streaming ? "a streaming model" : "a model"} with inputs ${d.inputs.map((t) => `${t.name} ${fmt(t.shape)}`).join(", ") || "none"}): ` +
        `set model.name to the pair's slides ensemble (<name>-slides, timeslide model-repo add), or model.factorized: false`,
    ];
  return [];
}

/** The campaign as one of its encoder streams sees it: one detector, the encoder's name, not factorized. */
function encoderSpec(spec: CampaignSpec, ifo: string, encoder: string): CampaignSpec {
  return { ...spec, ifos: [ifo], model: { ...spec.model, name: encoder, version: "latest", factorized: false, input: undefined, output: undefined } };
}

/** A factorized campaign's encoder streams, described, and what does not fit the campaign in each. */
async function encoderProblems(spec: CampaignSpec, pair: FactorizedPair, endpoint: string, deadlineMs?: number): Promise<{ problems: string[]; encoders: ModelDescription[] }> {
  const problems: string[] = [];
  const encoders: ModelDescription[] = [];
  for (const [i, ifo] of spec.ifos.entries()) {
    const es = encoderSpec(spec, ifo, pair.encoders[i]);
    const d = await describeModel(endpoint, es, deadlineMs);
    encoders.push(d);
    for (const p of modelProblems(es, d)) problems.push(`model.factorized: ${ifo}'s encoder: ${p}`);
    if (!d.streaming) problems.push(`model.factorized: ${ifo}'s encoder ${d.name} on ${endpoint} is not a streaming ensemble (snapshotter + encoder)`);
  }
  return { problems, encoders };
}

export interface ModelCheck {
  /** the model does not fit the campaign, or a server that answered does not have it */
  problems: string[];
  /** servers that could not be asked */
  warnings: string[];
  /** endpoints whose model was compared */
  checked: string[];
}

/**
 * Submit's check: asks every server for the campaign's model and compares
 * its shapes with the campaign. A server that answers without the model, or
 * with other shapes, is a problem; one that can't be reached is a warning
 * (servers often start after the campaign is queued; workers check again).
 */
export async function checkModelOnServers(spec: CampaignSpec, endpoints: readonly string[], deadlineMs = 5_000): Promise<ModelCheck> {
  const out: ModelCheck = { problems: [], warnings: [], checked: [] };
  const results = await Promise.all(
    endpoints.map(async (endpoint) => {
      try {
        return { endpoint, d: await describeModel(endpoint, spec, deadlineMs) };
      } catch (e) {
        return { endpoint, e: e as Error };
      }
    }),
  );
  for (const r of results) {
    if (r.d) {
      out.checked.push(r.endpoint);
      out.problems.push(...modelProblems(spec, r.d));
      if (spec.model.factorized && r.d.factorized) {
        try {
          out.problems.push(...(await encoderProblems(spec, r.d.factorized, r.endpoint, deadlineMs)).problems);
        } catch (e) {
          out.problems.push(`model.factorized: ${(e as Error).message}`);
        }
      }
      if (r.d.serverNotReady === "")
        out.warnings.push(`model.servers: server ${r.endpoint} has model ${spec.model.name} ready but is itself not ready yet (ServerReady false, no model failed): workers wait for it`);
      else if (r.d.serverNotReady)
        out.problems.push(
          `model.servers: server ${r.endpoint} has model ${spec.model.name} ready but is itself not ready, so workers will not use it (a server with a model that failed to load is not ready, as Triton with strict readiness): ` +
            `${r.d.serverNotReady}; fix those models (timeslide model-repo check REPO) or unload them`,
        );
    } else if (r.e instanceof ModelNotServedError) {
      out.problems.push(
        `model.name: ${r.e.message}${spec.model.version === "latest" ? "" : ` (version ${spec.model.version})`}` +
          (r.e.state === "MISSING" ? "" : `: fix the model (timeslide model-repo check REPO) and load it again, or restart the server`),
      );
    } else if (r.e instanceof KServeError && r.e.code === 5 /* NOT_FOUND */) {
      out.problems.push(`model.name: server ${r.endpoint} has no model ${spec.model.name}${spec.model.version === "latest" ? "" : ` version ${spec.model.version}`} (${r.e.details})`);
    } else {
      out.warnings.push(`model.servers: could not ask ${r.endpoint} for model ${spec.model.name}, so its shapes were not checked (${r.e?.message.split("\n")[0]})`);
    }
  }
  return out;
}

/**
 * The campaign's model as the servers describe it: a streaming ensemble
 * (some step is stateful: sequence batching) is fed stride·batch new samples
 * per request; a plain model gets full windows. A model whose shapes do not
 * fit the campaign is a permanent job error (the same check as submit's).
 * `deadlineMs` bounds each inference request.
 */
export async function resolveModel(pool: ServerPool, endpoint: string, spec: CampaignSpec, deadlineMs?: number, o: { wholeModel?: boolean } = {}): Promise<DetectionModel | FactorizedModel> {
  if (spec.model.factorized) return resolveFactorized(pool, endpoint, spec, deadlineMs, o.wholeModel ?? false);
  const g = campaignGeometry(spec);
  const version = versionOf(spec);
  const d = await describeWithRetries(endpoint, spec);
  const problems = modelProblems(spec, d);
  if (problems.length) throw new PermanentJobError(`campaign ${spec.name}: the model does not fit the campaign: ${problems.join("; ")}`);
  const { input, output } = pickTensors(spec, d);
  const model = d.streaming
    ? new StreamingModel(pool, spec.model.name, g, { version, input: input!.name, output: output?.name, deadlineMs })
    : new WindowModel(pool, spec.model.name, g, { version, input: input!.name, output: output?.name, deadlineMs, fixedBatch: input!.shape[0] > 0 });
  return refusalsArePermanent(model, spec, d, input!.name);
}

/**
 * A factorized campaign's pair as the servers declare it: each detector's
 * encoder stream and the slides ensemble (requests sized by the head's
 * max_batch_size); or, `wholeModel`, the pair's declared whole model (for
 * comparisons and mixed campaigns).
 */
async function resolveFactorized(pool: ServerPool, endpoint: string, spec: CampaignSpec, deadlineMs: number | undefined, wholeModel: boolean): Promise<DetectionModel | FactorizedModel> {
  const d = await describeWithRetries(endpoint, spec);
  const problems = slidesProblems(spec, d);
  if (problems.length) throw new PermanentJobError(`campaign ${spec.name}: ${problems.join("; ")}`);
  const pair = d.factorized!;
  if (wholeModel) {
    if (!pair.whole)
      throw new PermanentJobError(`campaign ${spec.name}: the worker runs the whole model (--whole-model), but model ${d.name} on ${endpoint} declares none (no factorized_whole_model parameter)`);
    return resolveModel(pool, endpoint, { ...spec, model: { ...spec.model, name: pair.whole, version: "latest", factorized: false, input: undefined, output: undefined } }, deadlineMs);
  }
  const { problems: encoderIssues, encoders } = await encoderProblems(spec, pair, endpoint);
  if (encoderIssues.length) throw new PermanentJobError(`campaign ${spec.name}: the factorized pair does not fit the campaign: ${encoderIssues.join("; ")}`);
  const g = campaignGeometry(spec);
  const streams = encoders.map((e, i) => {
    const { input, output } = pickTensors(encoderSpec(spec, spec.ifos[i], e.name), e);
    return new StreamingModel(pool, e.name, g, { input: input!.name, output: output?.name, deadlineMs, width: pair.embeddingDim });
  });
  // The ensemble hands the head all S·W pairs as one batch: the head's max_batch_size bounds them.
  const steps = d.stepMaxBatch ?? {};
  const head = pair.head !== undefined && steps[pair.head] !== undefined ? steps[pair.head] : Object.values(steps).at(-1);
  if (!head || head < 1)
    throw new PermanentJobError(`campaign ${spec.name}: model ${d.name} on ${endpoint}: its head (${pair.head ?? "the ensemble's last step"}) has no max_batch_size, so a slides request cannot be sized`);
  return new FactorizedModel(pool, d.name, streams, pair.embeddingDim, head, { version: versionOf(spec) || undefined, deadlineMs });
}

/** The server refused a request's tensors: INVALID_ARGUMENT, or the same refusal in-band on a stream (Triton's and our wording). */
export function isInvalidInput(e: unknown): e is KServeError {
  if (!(e instanceof KServeError)) return false;
  if (e.code === 3 /* INVALID_ARGUMENT */) return true;
  return (
    e.inBand &&
    /unexpected shape for input|data-type is|unexpected inference input|missing required input|batch-size must be|ONNX Runtime refused the input|cannot be reshaped|expected \d+ inputs but got/i.test(e.details)
  );
}

/**
 * A request the server refuses as invalid (INVALID_ARGUMENT: a tensor's
 * name, data type or shape; ONNX Runtime refusing the input) fails the
 * same way on every attempt and every server: the job fails for good, its
 * error naming the tensor, the shape sent and what the server expected.
 */
function refusalsArePermanent(model: DetectionModel, spec: CampaignSpec, d: ModelDescription, input: string): DetectionModel {
  return {
    kernel: model.kernel,
    stride: model.stride,
    batch: model.batch,
    run: (channels, first, count, signal) =>
      model.run(channels, first, count, signal).catch((e: unknown) => {
        if (isInvalidInput(e)) {
          const nIfo = channels.length;
          const sent = d.streaming ? `update [1, ${nIfo}, ${model.stride * model.batch}] FP32` : `windows [≤${model.batch}, ${nIfo}, ${model.kernel}] FP32`;
          throw new PermanentJobError(
            `campaign ${spec.name}: model ${spec.model.name} refused input "${input}" (${sent}; kernel ${model.kernel}, stride ${model.stride}, ${model.batch} windows per request): ${e.details}`,
          );
        }
        throw e;
      }),
  };
}

/** A connection reset or a restarting server while asking is no reason to fail the job's attempt: ask again a few times. */
async function describeWithRetries(endpoint: string, spec: CampaignSpec): Promise<ModelDescription> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await describeModel(endpoint, spec);
    } catch (e) {
      if (attempt >= 4 || !isServerFailure(e)) throw e;
      await new Promise((r) => setTimeout(r, 1000 * attempt));
    }
  }
}

/** Sequences per job when neither the servers limit them nor the worker is told. */
export const DEFAULT_SEQUENCES = 4;
/** At most this many sequences per job from the slot count (each extra one streams a part of a shift, with its own warm-up). */
export const MAX_SEQUENCES_PER_JOB = 16;

/**
 * Sequences one job streams at once. Told (`--sequences`): that. Otherwise
 * from the servers' sequence slots for the model (Triton: one per
 * snapshotter instance, `model-repo --streams`): the worker's `jobs` share
 * them, so each job gets floor(slots / jobs) (at least 1, at most
 * MAX_SEQUENCES_PER_JOB); no limit known: DEFAULT_SEQUENCES. The pool never
 * opens more sequences on a server than its slots, so a sequence beyond them
 * waits in the worker, before its first request (no deadline runs), never in
 * the server's backlog.
 */
export function sequencesPerJob(slots: number, jobs: number, told?: number): number {
  if (told && told >= 1) return told;
  if (!Number.isFinite(slots) || slots <= 0) return DEFAULT_SEQUENCES;
  return Math.max(1, Math.min(MAX_SEQUENCES_PER_JOB, Math.floor(slots / Math.max(1, jobs))));
}
