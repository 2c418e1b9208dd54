import { grpcTlsFromEnv, InferenceClient, isServerFailure, KServeError, type ServerPool } from "@timeslide/kserve";
import type { CampaignSpec } from "@timeslide/campaign";
import { StreamingModel, WindowModel, type DetectionModel, type Geometry } from "./inference.js";
import { PermanentJobError } from "./pipeline.js";

const DEADLINE_MS = 10_000;

/** The campaign's model as one server describes it (metadata and config over gRPC). */
export interface ModelDescription {
  endpoint: string;
  name: string;
  /** a step is stateful (sequence batching): fed stride·batch new samples per request */
  streaming: boolean;
  /** the model's inputs as its metadata lists them (-1: variable) */
  inputs: Array<{ name: string; shape: number[] }>;
  output?: string;
  /**
   * For a streaming ensemble, the model proper (the step after the stateful
   * one) that sees the windows: its input shape, batch dimension first when
   * max_batch_size > 0.
   */
  windows?: { model: string; input: string; shape: number[]; maxBatchSize: number };
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

/** Asks one server for the campaign's model: metadata, config, and the configs of ensemble steps. */
export async function describeModel(endpoint: string, spec: CampaignSpec, deadlineMs = DEADLINE_MS): Promise<ModelDescription> {
  const name = spec.model.name;
  const version = versionOf(spec);
  const client = new InferenceClient({ endpoint, tls: grpcTlsFromEnv() }); // as the pool's clients
  try {
    const config = await client.modelConfig(name, version, { deadlineMs });
    const meta = await client.modelMetadata(name, version, { deadlineMs });
    const d: ModelDescription = {
      endpoint,
      name,
      streaming: Boolean(config.sequence_batching),
      inputs: (meta.inputs ?? []).map((t) => ({ name: t.name, shape: dims(t.shape ?? []) })),
      output: meta.outputs?.[0]?.name,
    };
    let afterState = false;
    for (const step of config.ensemble_scheduling?.step ?? []) {
      const sub = await client.modelConfig(step.model_name, "", { deadlineMs });
      if (sub.sequence_batching) {
        d.streaming = afterState = true;
        continue;
      }
      // The first stateless step after the snapshotter takes its windows.
      if (afterState && !d.windows) {
        const subMeta = await client.modelMetadata(step.model_name, "", { deadlineMs });
        const inputName = Object.keys(step.input_map ?? {})[0] ?? subMeta.inputs?.[0]?.name ?? "";
        const t = subMeta.inputs?.find((x) => x.name === inputName) ?? subMeta.inputs?.[0];
        if (t) d.windows = { model: step.model_name, input: t.name, shape: dims(t.shape ?? []), maxBatchSize: Number(sub.max_batch_size ?? 0) };
      }
    }
    return d;
  } finally {
    client.close();
  }
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
  const g = campaignGeometry(spec);
  const nIfo = spec.ifos.length;
  const where = `model ${d.name} on ${d.endpoint}`;
  const fs = spec.data.sample_rate;
  const kernelWhy = `inference.kernel_length ${spec.inference.kernel_length} s × data.sample_rate ${fs} Hz`;
  const ifoWhy = `ifos ${spec.ifos.join(", ")}`;
  const problems: string[] = [];
  if (d.inputs.length !== 1) {
    problems.push(`${where}: expected one input (the strain), got ${d.inputs.length}: ${d.inputs.map((i) => i.name).join(", ") || "none"}`);
    return problems;
  }
  const input = d.inputs[0];
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
    }
  } else {
    const [c, k] = input.shape.slice(-2);
    if (input.shape.length !== 3 || !fits(c, nIfo) || !fits(k, g.kernel))
      problems.push(
        `${where}: input "${input.name}" has shape ${fmt(input.shape)}, the campaign sends windows [batch, ${nIfo}, ${g.kernel}] ` +
          `(${nIfo} detectors from ${ifoWhy}; kernel ${g.kernel} samples = ${kernelWhy})`,
      );
  }
  return problems;
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
export async function resolveModel(pool: ServerPool, endpoint: string, spec: CampaignSpec, deadlineMs?: number): Promise<DetectionModel> {
  const g = campaignGeometry(spec);
  const version = versionOf(spec);
  const d = await describeWithRetries(endpoint, spec);
  const problems = modelProblems(spec, d);
  if (problems.length) throw new PermanentJobError(`campaign ${spec.name}: the model does not fit the campaign: ${problems.join("; ")}`);
  return d.streaming
    ? new StreamingModel(pool, spec.model.name, g, { version, output: d.output, deadlineMs })
    : new WindowModel(pool, spec.model.name, g, { version, input: d.inputs[0]?.name, output: d.output, deadlineMs });
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
