// The job processor, run by BullMQ in a worker thread (a sandboxed
// processor), so reading, whitening and post-processing never block the
// event loop that renews job locks. One module instance per thread: its
// Redis connection, server pool, campaign contexts and model descriptions
// are shared by the jobs that thread runs.
import type { SandboxedJob } from "bullmq";
import pino from "pino";
import { createRedis, JOB_ID_PATTERN, LOG_REDACT, parseJobPayload, payloadMismatch, recordJobResult, type JobSummary } from "@timeslide/campaign";
import { grpcTlsFromEnv, ServerPool } from "@timeslide/kserve";
import { ContextCache } from "./context.js";
import { resolveModel, sequencesPerJob } from "./model.js";
import { PermanentJobError, runJob } from "./pipeline.js";
import { StreamingModel, type DetectionModel } from "./inference.js";
import { FactorizedModel } from "./factorized.js";
import { readWorkerEnv } from "./env.js";

const env = readWorkerEnv();
const log = pino({ base: { worker: env.workerName, thread: "processor" }, level: process.env.LOG_LEVEL ?? "info", redact: LOG_REDACT }, pino.destination(2));
// createRedis: the same TLS settings (rediss://, TIMESLIDE_REDIS_CA) as the
// worker's own connection. maxRetriesPerRequest null: while Redis restarts,
// recording a finished job's result waits for it to come back instead of
// failing the attempt and throwing the job's work away (recording is idempotent).
const redis = createRedis(env.redisUrl, { maxRetriesPerRequest: null, lazyConnect: false });
redis.on("error", (e) => log.warn({ err: e.message }, "redis error"));
const contexts = new ContextCache(redis, env.prefix);
const pools = new Map<string, { pool: ServerPool; started: Promise<void>; endpoint: () => string }>();
const models = new Map<string, Promise<DetectionModel | FactorizedModel>>();

function poolFor(campaign: string, servers: string[] | "registry") {
  const key = env.servers ?? (servers === "registry" ? "registry" : servers.join(","));
  let p = pools.get(key);
  if (!p) {
    // TLS to the inference servers when TIMESLIDE_GRPC_CA / TIMESLIDE_GRPC_TLS say so (the worker checked them at start).
    const client = { tls: grpcTlsFromEnv() };
    // slotLeases: the workers of the fleet share each server's sequence slots
    // through Redis, so together they open no more sequences on it than its
    // slots (a sequence beyond them waits in its worker, not in the server's
    // backlog where its requests' deadlines would run).
    const slotLeases = { redis, prefix: env.prefix };
    const pool =
      key === "registry"
        ? new ServerPool({ discovery: { redis, prefix: env.prefix }, logger: log, client, slotLeases })
        : new ServerPool({ endpoints: key, logger: log, client, slotLeases }); // health changes and failovers show in the logs
    const started = pool.start();
    p = {
      pool,
      started,
      endpoint: () => {
        const healthy = pool.servers().filter((s) => s.healthy);
        const any = healthy[0] ?? pool.servers()[0];
        if (!any) throw new Error(`campaign ${campaign}: no inference server (${key})`);
        return any.endpoint;
      },
    };
    pools.set(key, p);
  }
  return p;
}

function encoderName(m: FactorizedModel): string {
  const e = m.encoders[0];
  return e instanceof StreamingModel ? e.name : "";
}

function isPermanent(e: unknown): boolean {
  const name = (e as Error)?.name;
  return e instanceof PermanentJobError || name === "BadSegmentError" || name === "StrainFileError" || name === "ZodError" || name === "InvalidPayloadError";
}

/**
 * `signal` aborts when the worker shuts down past its grace period
 * (Worker.cancelAllJobs): the job stops and goes back to the queue.
 */
export default async function processJob(job: SandboxedJob, token?: string, signal?: AbortSignal): Promise<JobSummary> {
  const jlog = log.child({ job: job.id, campaign: job.data?.campaign });
  try {
    const payload = parseJobPayload(job.id, job.data);
    // A job's data can be edited in Redis: its id (it names the result file),
    // its campaign (whose context, results and counters it touches) and every
    // field must be the planned job's, else it is refused for good.
    if (!job.id || !JOB_ID_PATTERN.test(job.id))
      throw new PermanentJobError(`job ${JSON.stringify(job.id)}: not a job id timeslide plans (kind-GPS-kN; it names the result file): refused`);
    if (payload.campaign !== job.queueName)
      throw new PermanentJobError(`job ${job.id}: payload field campaign is ${JSON.stringify(payload.campaign)}, but the job is on campaign ${job.queueName}'s queue: refused`);
    const ctx = await contexts.get(payload.campaign);
    const mismatch = ctx.planned && payloadMismatch(job.id, payload, ctx.planned);
    if (mismatch) throw new PermanentJobError(mismatch);
    const { pool, started, endpoint } = poolFor(payload.campaign, ctx.spec.model.servers);
    await started;
    let model = models.get(payload.campaign);
    if (!model) {
      model = resolveModel(pool, endpoint(), ctx.spec, env.deadlineMs, { wholeModel: env.wholeModel });
      model.catch(() => models.delete(payload.campaign));
      models.set(payload.campaign, model);
    }
    jlog.info({ kind: payload.kind, span: payload.span, shifts: payload.shifts }, "job started");
    const detection = await model;
    // Streaming: as many sequences as this job's share of the servers' sequence slots.
    // (factorized: the encoder streams' slots; the first detector's stands for all)
    const slots =
      env.sequences
        ? Infinity
        : detection instanceof StreamingModel
          ? await pool.sequenceSlots(ctx.spec.model.name, ctx.spec.model.version === "latest" ? undefined : String(ctx.spec.model.version))
          : detection instanceof FactorizedModel
            ? await pool.sequenceSlots(encoderName(detection))
            : Infinity;
    const sequences = sequencesPerJob(slots, env.jobs, env.sequences);
    jlog.debug({ sequences, slots: Number.isFinite(slots) ? slots : undefined, told: env.sequences }, "sequences per job");
    let lastReport = 0;
    const summary = await runJob(job.id!, payload, ctx, {
      model: detection,
      log: jlog,
      concurrency: sequences,
      embeddingMemoryBytes: env.embeddingMemoryBytes,
      signal,
      onProgress: (p) => {
        const now = Date.now();
        if (now - lastReport > 1000 || p.shiftsDone === p.shifts) {
          lastReport = now;
          void job.updateProgress(p).catch(() => {});
        }
      },
    });
    summary.worker = env.workerName;
    await recordJobResult(redis, env.prefix, payload.campaign, summary);
    jlog.info({ livetime: summary.livetime, events: summary.events, timings: summary.timings }, "job done");
    return summary;
  } catch (e) {
    const err = e as Error;
    if (signal?.aborted) {
      // Handed back as it was: waiting again at once, no attempt used (a
      // "WaitingError" tells BullMQ the job has been moved already).
      jlog.warn({ reason: String(signal.reason) }, "job handed back");
      if (token) await job.moveToWait(token);
      const w = new Error(`job ${job.id}: handed back (${String(signal.reason)})`);
      w.name = "WaitingError";
      throw w;
    }
    jlog.error({ err: err.message, permanent: isPermanent(e) }, "job failed");
    if (isPermanent(e)) {
      const u = new Error(err.message);
      u.name = "UnrecoverableError"; // BullMQ: no more attempts
      throw u;
    }
    throw err;
  }
}
