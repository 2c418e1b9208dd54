import { fileURLToPath } from "node:url";
import { Worker as Thread } from "node:worker_threads";
import { Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { Logger } from "pino";
import {
  JobPayload,
  campaignKeys,
  listCampaigns,
  plannedJobs,
  PlannedJobs,
  queueName,
  readMeta,
  readStoredCampaign,
  recordJobFailure,
  RETENTION,
  type JobSummary,
} from "@timeslide/campaign";
import { WorkerMetrics } from "./metrics.js";
import { readWorkerEnv } from "./env.js";

export interface WorkerOptions {
  redis: Redis;
  redisUrl: string;
  prefix: string;
  /** campaigns to work on; empty: every submitted campaign (new ones found as they appear) */
  campaigns?: string[];
  /** jobs run at once (each in its own thread) */
  concurrency?: number;
  /** shifts streamed at once per job; default: the servers' sequence slots for the model ÷ concurrency (see sequencesPerJob) */
  sequences?: number;
  /** "host:port,..." or "registry": overrides each campaign's model.servers */
  servers?: string;
  /** Prometheus port; undefined: no metrics server */
  metricsPort?: number;
  /** how long shutdown waits for running jobs before handing them back */
  shutdownGraceMs?: number;
  /** client deadline of one inference request (ms); default 60 s */
  requestDeadlineMs?: number;
  /** factorized campaigns: run the pair's declared whole model instead (comparisons, mixed campaigns) */
  wholeModel?: boolean;
  /** factorized campaigns: bytes of a job's embeddings kept in memory before they spill to a scratch file under the output */
  embeddingMemoryBytes?: number;
  /** BullMQ lock duration (ms) */
  lockDuration?: number;
  log: Logger;
}

export interface RunningWorker {
  metricsPort?: number;
  metrics: WorkerMetrics;
  /** Finish running jobs (or hand them back after the grace period) and stop. */
  close(): Promise<void>;
}

/** How long cancelled jobs get to go back to the queue at shutdown. */
const HAND_BACK_MS = 5_000;

/** Whether `p` settles within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let t: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((r) => (t = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    clearTimeout(t);
  }
}

/** How often the worker looks for new (or not yet submitted) campaigns. */
const REFRESH_MS = 2000;

const PROCESSOR = fileURLToPath(new URL("./processor.js", import.meta.url));
const AGGREGATE = fileURLToPath(new URL("./aggregate-thread.js", import.meta.url));

/**
 * Consumes campaign queues. Each job runs in a worker thread (BullMQ's
 * sandboxed processor) so CPU-heavy work never starves lock renewal. A job
 * that fails for good (no attempts left, or unrecoverable) is recorded with
 * its lost livetime; the worker carries on.
 */
export async function startWorker(o: WorkerOptions): Promise<RunningWorker> {
  // The processor threads read their settings from the environment.
  process.env.REDIS_URL = o.redisUrl;
  process.env.TIMESLIDE_PREFIX = o.prefix;
  if (o.servers) process.env.TIMESLIDE_SERVERS = o.servers;
  if (o.sequences) process.env.TIMESLIDE_SEQUENCES = String(o.sequences);
  else delete process.env.TIMESLIDE_SEQUENCES;
  process.env.TIMESLIDE_JOBS = String(o.concurrency ?? 1);
  if (o.requestDeadlineMs) process.env.TIMESLIDE_DEADLINE_MS = String(o.requestDeadlineMs);
  if (o.wholeModel) process.env.TIMESLIDE_WHOLE_MODEL = "1";
  else delete process.env.TIMESLIDE_WHOLE_MODEL;
  if (o.embeddingMemoryBytes) process.env.TIMESLIDE_EMBEDDING_MEMORY = String(o.embeddingMemoryBytes);
  else delete process.env.TIMESLIDE_EMBEDDING_MEMORY;

  const metrics = new WorkerMetrics();
  const metricsPort = o.metricsPort !== undefined ? await metrics.listen(o.metricsPort) : undefined;
  const workers = new Map<string, Worker<JobPayload, JobSummary>>();
  const connections: Redis[] = [];

  // When every job of a campaign is accounted for, aggregate in a thread of
  // its own; the claim inside makes it happen once, campaign-wide.
  const aggregations = new Set<Promise<void>>();
  const maybeAggregate = async (campaign: string) => {
    const k = campaignKeys(o.prefix, campaign);
    const [total, done, failed] = await Promise.all([o.redis.hget(k.meta, "total_jobs"), o.redis.hlen(k.results), o.redis.hlen(k.failures)]);
    if (done + failed < Number(total) || (await o.redis.exists(k.aggregated))) return;
    const run = new Promise<void>((resolve) => {
      const t = new Thread(AGGREGATE, { workerData: { redisUrl: o.redisUrl, prefix: o.prefix, campaign } });
      t.on("message", (m: { aggregated: boolean; out?: string; error?: string }) => {
        if (m.aggregated) o.log.info({ campaign, out: m.out }, "campaign complete: report written");
        else if (m.error) o.log.error({ campaign, err: m.error }, "aggregation failed");
      });
      t.on("error", (e) => o.log.error({ campaign, err: e.message }, "aggregation thread failed"));
      t.on("exit", () => resolve());
    });
    aggregations.add(run);
    void run.finally(() => aggregations.delete(run));
  };

  // The planned jobs of each campaign, rebuilt from its metadata on the first
  // failure: the livetime a failed job loses is the plan's, never what its
  // (possibly edited) payload in Redis says.
  const plans = new Map<string, Promise<PlannedJobs>>();
  const plannedJob = async (campaign: string, id: string): Promise<JobPayload | undefined> => {
    const key = `${campaign}\n${await o.redis.hget(campaignKeys(o.prefix, campaign).meta, "spec_hash")}`; // resubmitted: a new plan
    let p = plans.get(key);
    if (!p) {
      p = readStoredCampaign(o.redis, o.prefix, campaign).then(({ meta, spec }) => plannedJobs(meta, spec));
      p.catch(() => plans.delete(key));
      plans.set(key, p);
    }
    return (await p).get(id);
  };

  const attach = (campaign: string) => {
    if (workers.has(campaign)) return;
    // BullMQ never closes a connection it was given: ours to close (see close()).
    const connection = o.redis.duplicate();
    connections.push(connection);
    const w = new Worker<JobPayload, JobSummary>(queueName(campaign), PROCESSOR, {
      connection,
      prefix: o.prefix,
      // Names the BullMQ connection (CLIENT SETNAME allows no spaces) and each
      // job's processedBy: how `timeslide dashboard` lists workers and their jobs.
      name: readWorkerEnv().workerName.replace(/[^!-~]/g, "_"),
      concurrency: o.concurrency ?? 1,
      useWorkerThreads: true,
      lockDuration: o.lockDuration ?? 60_000,
      // Stalled jobs are found one to two check periods after their lock
      // expired: a short lock must come with frequent checks to matter.
      stalledInterval: Math.min(30_000, o.lockDuration ?? 60_000),
      maxStalledCount: 2,
      removeOnComplete: RETENTION.removeOnComplete,
      removeOnFail: RETENTION.removeOnFail,
    });
    w.on("active", () => metrics.active.inc());
    w.on("completed", (job: Job<JobPayload, JobSummary>, r: JobSummary) => {
      metrics.active.dec();
      metrics.jobs.inc({ campaign, kind: r.kind, outcome: "completed" });
      metrics.livetime.inc({ campaign, kind: r.kind }, r.livetime);
      metrics.strain.inc({ campaign }, r.strain_s ?? 0);
      const inf = Number(r.timings?.inferences ?? 0);
      metrics.inferences.inc({ campaign }, inf);
      if (r.timings?.infer_s) metrics.rate.set(inf / r.timings.infer_s);
      if (r.timings?.total_s) metrics.duration.observe(r.timings.total_s);
      o.log.info({ job: job.id, campaign, livetime: r.livetime, events: r.events }, "completed");
      void maybeAggregate(campaign).catch((e) => o.log.error({ campaign, err: (e as Error).message }, "completion check failed"));
    });
    w.on("failed", (job: Job<JobPayload, JobSummary> | undefined, err: Error) => {
      metrics.active.dec();
      if (!job) return;
      const final = err.name === "UnrecoverableError" || job.attemptsMade >= (job.opts.attempts ?? 1);
      metrics.errors.inc({ campaign, reason: err.name === "UnrecoverableError" ? "permanent" : "transient" });
      o.log.warn({ job: job.id, campaign, err: err.message, attempt: job.attemptsMade, final }, "job failed");
      if (!final) return;
      void (async () => {
        let planned: JobPayload | undefined;
        try {
          planned = await plannedJob(campaign, job.id!);
        } catch (e) {
          // Metadata unusable: fall back on the payload, if it still validates.
          o.log.error({ job: job.id, campaign, err: (e as Error).message }, "could not rebuild the plan");
          const r = JobPayload.safeParse(job.data);
          planned = r.success ? r.data : undefined;
        }
        if (!planned) {
          // Not a job of the plan (added to the queue by hand): nothing planned is lost, and
          // counting it would make the campaign look complete before its jobs are.
          o.log.warn({ job: job.id, campaign }, "a job that is not in the campaign's plan failed: not counted");
          return;
        }
        metrics.jobs.inc({ campaign, kind: planned.kind, outcome: "failed" });
        await recordJobFailure(o.redis, o.prefix, campaign, {
          job_id: job.id!,
          kind: planned.kind,
          reason: err.message,
          livetime_lost: planned.livetime,
          attempts: job.attemptsMade,
          failed_at: Date.now(),
        });
        await maybeAggregate(campaign);
      })().catch((e) => o.log.error({ job: job.id, err: (e as Error).message }, "could not record the failure"));
    });
    w.on("error", (err) => o.log.error({ campaign, err: err.message }, "worker error"));
    workers.set(campaign, w);
    o.log.info({ campaign, concurrency: o.concurrency ?? 1 }, "consuming");
  };

  // Campaigns named on the command line may not be submitted yet (a batch
  // system can start workers before the coordinator runs): they are looked
  // for again, like new campaigns in the registry, until they appear.
  const awaited = new Set<string>();
  const refresh = async () => {
    const names = o.campaigns?.length ? o.campaigns : await listCampaigns(o.redis, o.prefix);
    for (const name of names) {
      if (workers.has(name)) continue;
      const meta = await readMeta(o.redis, o.prefix, name);
      if (meta && meta.state !== "cancelled") attach(name);
      else if (o.campaigns?.length && !awaited.has(name)) {
        awaited.add(name);
        o.log.info({ campaign: name }, meta ? "campaign is cancelled: waiting for a resubmission" : "campaign not submitted yet: waiting for it");
      }
    }
  };
  await refresh();
  const timer = setInterval(() => void refresh().catch(() => {}), REFRESH_MS);

  let closing: Promise<void> | undefined;
  return {
    metricsPort,
    metrics,
    close() {
      closing ??= (async () => {
        if (timer) clearInterval(timer);
        const grace = o.shutdownGraceMs ?? 30_000;
        const all = [...workers.values()];
        // No new jobs; running ones may finish within the grace period.
        const finished = Promise.all(all.map((w) => w.pause()));
        if (!(await within(finished, grace))) {
          // Past it, running jobs are cancelled: each processor puts its job
          // back on the queue (no attempt used) and stops. One that does not
          // stop in time is left to its lock: another worker takes it when
          // the lock expires.
          o.log.warn({ graceMs: grace }, "running jobs did not finish in time: handing them back");
          for (const w of all) w.cancelAllJobs("worker shutdown");
          if (!(await within(finished, HAND_BACK_MS))) o.log.warn({ waitMs: HAND_BACK_MS }, "a job did not stop when cancelled: left for its lock to expire");
        }
        // Force: nothing is waited for any more (a plain close() would wait for
        // running jobs without a bound).
        await Promise.all(all.map((w) => w.close(true)));
        metrics.active.set(0); // handed-back jobs end without a completed/failed event
        await Promise.all(aggregations);
        await metrics.close();
        // Left open, these would keep a `timeslide worker` process alive after SIGTERM.
        for (const c of connections) c.disconnect();
      })();
      return closing;
    },
  };
}
