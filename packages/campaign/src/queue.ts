import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { campaignKeys, campaignsKey, queueName } from "./keys.js";
import type { LoadedCampaign } from "./load.js";
import { planSummary, type Plan } from "./plan.js";
import { readMeta, readProgress, specHash, type CampaignMeta } from "./store.js";
import { checkEvictionPolicy } from "./redis.js";
import { JOB_TAG, type JobPayload } from "./jobs.js";

/**
 * Options stored with every job: only what BullMQ needs per job. Retention
 * is the workers' setting (RETENTION), so it is not repeated in each job.
 */
export function jobOptions(attempts: number) {
  return { attempts, backoff: { type: "exponential" as const, delay: 5_000 } };
}

/**
 * Retention, applied by workers: completed jobs are removed at once (their
 * summary lives in the campaign's results hash); failed ones are kept a week
 * for inspection, at most 10^4.
 */
export const RETENTION = {
  removeOnComplete: { count: 0 },
  removeOnFail: { age: 7 * 86_400, count: 10_000 },
} as const;

/** BullMQ's event stream is capped: with 10^5 jobs its default would hold 10^4 events. */
const EVENTS_MAX_LEN = 1000;

export function openQueue(redis: Redis, prefix: string, campaign: string): Queue<JobPayload> {
  return new Queue<JobPayload>(queueName(campaign), { connection: redis, prefix, streams: { events: { maxLen: EVENTS_MAX_LEN } } });
}

export interface SubmitResult {
  campaign: string;
  added: number;
  /** jobs already queued or already completed, not added again */
  existing: number;
  total: number;
  alreadySubmitted: boolean;
  warnings: string[];
}

export interface SubmitOptions {
  redis: Redis;
  prefix: string;
  campaign: LoadedCampaign;
  plan: Plan;
  /** jobs per addBulk call */
  chunkSize?: number;
  onProgress?: (done: number, total: number) => void;
}

/**
 * Puts a planned campaign on its queue. Idempotent: job ids are
 * deterministic, so a second submit of the same campaign adds nothing, and a
 * submit that was interrupted adds only what is missing. A campaign name
 * already used by a different spec or data is refused.
 */
export async function submitCampaign(o: SubmitOptions): Promise<SubmitResult> {
  const { redis, prefix, plan } = o;
  const name = plan.campaign;
  const keys = campaignKeys(prefix, name);
  const warnings: string[] = [];
  const eviction = await checkEvictionPolicy(redis);
  if (eviction) warnings.push(eviction);

  const summary = planSummary(plan);
  // Jobs are a function of these three, so the hash names the work exactly.
  const hash = specHash({ spec: o.campaign.spec, segments: summary.segments, shifts: plan.shiftTable });
  const existing = await readMeta(redis, prefix, name);
  if (existing && existing.spec_hash !== hash)
    throw new Error(
      `campaign ${name} was already submitted with a different spec or data (hash ${existing.spec_hash}, now ${hash}); ` +
        `cancel it with \`timeslide cancel ${name} --purge\` or give the campaign another name`,
    );
  if (existing && existing.state === "submitted")
    return { campaign: name, added: 0, existing: plan.jobs.length, total: plan.jobs.length, alreadySubmitted: true, warnings };
  if (existing && existing.state === "cancelled") throw new Error(`campaign ${name} was cancelled; purge it (\`timeslide cancel ${name} --purge\`) before submitting it again`);

  const isr = o.campaign.spec.inference.inference_sampling_rate;
  if (!existing) {
    await redis
      .multi()
      .hset(keys.meta, {
        state: "submitting",
        spec_hash: hash,
        submitted_at: Date.now(),
        total_jobs: plan.jobs.length,
        counts: JSON.stringify(plan.counts),
        inference_sampling_rate: isr,
        planned_background_samples: Math.round(plan.livetime.background_s * isr),
        planned_foreground_samples: Math.round(plan.livetime.foreground_s * isr),
        planned_injection_samples: Math.round(plan.livetime.injection_s * isr),
        completed: 0,
        failed: 0,
        output: o.campaign.output,
        base_dir: o.campaign.baseDir,
        files: JSON.stringify(plan.files),
        spec: JSON.stringify(o.campaign.spec),
        plan: JSON.stringify({ ...summary, shifts: undefined, n_shifts: summary.shifts.length }),
        shift_table: JSON.stringify(plan.shiftTable),
      })
      .sadd(campaignsKey(prefix), name)
      .exec();
  }

  const queue = openQueue(redis, prefix, name);
  const opts = jobOptions(o.campaign.spec.queue.attempts);
  const chunkSize = o.chunkSize ?? 2_000;
  let added = 0;
  let skipped = 0;
  try {
    for (let i = 0; i < plan.jobs.length; i += chunkSize) {
      const chunk = plan.jobs.slice(i, i + chunkSize);
      // Skip what is queued (job hash exists) or already done (result recorded):
      // a completed job's hash is removed, its result is not.
      const pipe = redis.pipeline();
      for (const j of chunk) pipe.exists(`${prefix}:${queue.name}:${j.id}`);
      for (const j of chunk) pipe.hexists(keys.results, j.id);
      const r = (await pipe.exec()) ?? [];
      const present = chunk.map((_, k) => Number(r[k]?.[1]) === 1 || Number(r[k + chunk.length]?.[1]) === 1);
      const fresh = chunk.filter((_, k) => !present[k]);
      skipped += chunk.length - fresh.length;
      if (fresh.length) {
        await queue.addBulk(fresh.map((j) => ({ name: JOB_TAG[j.payload.kind], data: j.payload, opts: { ...opts, jobId: j.id } })));
        added += fresh.length;
      }
      o.onProgress?.(Math.min(i + chunkSize, plan.jobs.length), plan.jobs.length);
    }
    await redis.hset(keys.meta, "state", "submitted");
  } finally {
    await queue.close();
  }
  return { campaign: name, added, existing: skipped, total: plan.jobs.length, alreadySubmitted: false, warnings };
}

export interface CampaignStatus {
  campaign: string;
  state: CampaignMeta["state"] | "done";
  submitted_at: number;
  jobs: { total: number; waiting: number; active: number; delayed: number; completed: number; failed: number; retrying: number };
  livetime: {
    background_s: number;
    background_planned_s: number;
    foreground_s: number;
    foreground_planned_s: number;
    injection_s: number;
    injection_planned_s: number;
    lost_s: number;
  };
  /** background seconds analysed per wall-clock second since the first result */
  rate: number | null;
  /** seconds until the planned background is done at that rate */
  eta_s: number | null;
  done: boolean;
}

export async function campaignStatus(redis: Redis, prefix: string, campaign: string): Promise<CampaignStatus> {
  const meta = await readProgress(redis, prefix, campaign);
  if (!meta) throw new Error(`no campaign ${campaign} under prefix ${prefix} (submitted campaigns: \`timeslide status --list\`)`);
  const queue = openQueue(redis, prefix, campaign);
  let counts: Record<string, number>;
  try {
    counts = await queue.getJobCounts("waiting", "prioritized", "active", "delayed", "failed");
  } finally {
    await queue.close();
  }
  const now = Date.now();
  const done = meta.completed + meta.failed >= meta.total_jobs;
  // Seconds from the first result to now, or to the last result once done (the rate then stays put).
  const until = done && meta.last_result_at ? meta.last_result_at : now;
  const elapsed = meta.first_result_at ? (until - meta.first_result_at) / 1000 : 0;
  const rate = elapsed > 0 ? meta.done.background / elapsed : null;
  const remaining = meta.planned.background - meta.done.background;
  return {
    campaign,
    // A finished campaign says so in its state too (not "submitted" beside done: true); cancelled stays cancelled.
    state: done && meta.state === "submitted" ? "done" : meta.state,
    submitted_at: meta.submitted_at,
    jobs: {
      total: meta.total_jobs,
      waiting: (counts.waiting ?? 0) + (counts.prioritized ?? 0),
      active: counts.active ?? 0,
      delayed: counts.delayed ?? 0,
      completed: meta.completed,
      failed: meta.failed,
      // BullMQ's failed set also holds jobs that are out of attempts but not yet recorded
      retrying: Math.max(0, (counts.failed ?? 0) - meta.failed),
    },
    livetime: {
      background_s: meta.done.background,
      background_planned_s: meta.planned.background,
      foreground_s: meta.done.foreground,
      foreground_planned_s: meta.planned.foreground,
      injection_s: meta.done.injection,
      injection_planned_s: meta.planned.injection,
      lost_s: meta.lost_s,
    },
    rate,
    eta_s: done ? 0 : rate && rate > 0 ? remaining / rate : null,
    done,
  };
}

export interface CancelResult {
  campaign: string;
  removed: number;
  purged: boolean;
}

/**
 * Cancels a campaign: its waiting and delayed jobs are removed and the queue
 * paused; jobs already running finish and their results are kept. With
 * `purge`, everything of the campaign in Redis goes (queue, metadata,
 * results); result files on disk are never touched.
 */
export async function cancelCampaign(redis: Redis, prefix: string, campaign: string, purge = false): Promise<CancelResult> {
  const meta = await readMeta(redis, prefix, campaign);
  const queue = openQueue(redis, prefix, campaign);
  try {
    if (!meta && !purge) throw new Error(`no campaign ${campaign} under prefix ${prefix}`);
    const before = await queue.getJobCounts("waiting", "prioritized", "delayed");
    const removed = Object.values(before).reduce((a, b) => a + b, 0);
    if (purge) {
      await queue.obliterate({ force: true });
      const keys = campaignKeys(prefix, campaign);
      await redis.multi().del(keys.meta, keys.results, keys.failures, keys.aggregated).srem(campaignsKey(prefix), campaign).exec();
      return { campaign, removed, purged: true };
    }
    await redis.hset(campaignKeys(prefix, campaign).meta, "state", "cancelled");
    await queue.pause();
    await queue.drain(true);
    return { campaign, removed, purged: false };
  } finally {
    await queue.close();
  }
}
