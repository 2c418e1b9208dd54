import { createHash } from "node:crypto";
import type { Redis } from "ioredis";
import { campaignKeys, campaignsKey, type CampaignKeys } from "./keys.js";
import type { JobFailure, JobKind, JobSummary } from "./jobs.js";

/**
 * The campaign's metadata and progress counters in Redis (beside BullMQ's
 * own keys). Livetime is counted in whole detection-statistic samples, so
 * sums over 10^5 jobs are exact; each job counts once however often its
 * result is recorded.
 */
export interface CampaignProgress {
  campaign: string;
  state: "submitting" | "submitted" | "cancelled";
  spec_hash: string;
  submitted_at: number;
  total_jobs: number;
  counts: Record<JobKind, number>;
  inference_sampling_rate: number;
  planned: Record<JobKind, number>; // seconds
  done: Record<JobKind, number>; // seconds
  lost_s: number;
  completed: number;
  failed: number;
  first_result_at?: number;
  last_result_at?: number;
  output: string;
  /** directory the campaign file's relative paths resolve against */
  base_dir: string;
}

export interface CampaignMeta extends CampaignProgress {
  /** data files per detector, as planned */
  files: Record<string, string[]>;
  spec: unknown;
  plan: unknown;
  shift_table: number[][];
}

const KINDS: JobKind[] = ["background", "foreground", "injection"];

export function specHash(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 16);
}

/** The metadata fields of CampaignProgress: what `status` and the dashboard read on every refresh. */
const PROGRESS_FIELDS = [
  "state",
  "spec_hash",
  "submitted_at",
  "total_jobs",
  "counts",
  "inference_sampling_rate",
  ...KINDS.flatMap((k) => [`planned_${k}_samples`, `done_${k}_samples`]),
  "lost_samples",
  "completed",
  "failed",
  "first_result_at",
  "last_result_at",
  "output",
  "base_dir",
];

function progressOf(campaign: string, h: Record<string, string | undefined>): CampaignProgress | undefined {
  if (!h.state) return undefined;
  const isr = Number(h.inference_sampling_rate);
  const num = (k: string) => (h[k] === undefined ? 0 : Number(h[k]));
  const byKind = (f: (k: JobKind) => number) => Object.fromEntries(KINDS.map((k) => [k, f(k)])) as Record<JobKind, number>;
  return {
    campaign,
    state: h.state as CampaignMeta["state"],
    spec_hash: h.spec_hash ?? "",
    submitted_at: num("submitted_at"),
    total_jobs: num("total_jobs"),
    counts: JSON.parse(h.counts ?? "{}"),
    inference_sampling_rate: isr,
    planned: byKind((k) => num(`planned_${k}_samples`) / isr),
    done: byKind((k) => num(`done_${k}_samples`) / isr),
    lost_s: num("lost_samples") / isr,
    completed: num("completed"),
    failed: num("failed"),
    first_result_at: h.first_result_at ? Number(h.first_result_at) : undefined,
    last_result_at: h.last_result_at ? Number(h.last_result_at) : undefined,
    output: h.output ?? "",
    base_dir: h.base_dir ?? "",
  };
}

/**
 * The counters alone: the whole hash holds the spec, plan and shift table
 * (megabytes at 10^3 years), which a refresh every few seconds must not read.
 */
export async function readProgress(redis: Redis, prefix: string, campaign: string): Promise<CampaignProgress | undefined> {
  const values = await redis.hmget(campaignKeys(prefix, campaign).meta, ...PROGRESS_FIELDS);
  return progressOf(campaign, Object.fromEntries(PROGRESS_FIELDS.map((f, i) => [f, values[i] ?? undefined])));
}

export async function readMeta(redis: Redis, prefix: string, campaign: string): Promise<CampaignMeta | undefined> {
  const h = await redis.hgetall(campaignKeys(prefix, campaign).meta);
  const progress = h && progressOf(campaign, h);
  if (!progress) return undefined;
  return {
    ...progress,
    files: JSON.parse(h.files ?? "{}"),
    spec: JSON.parse(h.spec ?? "null"),
    plan: JSON.parse(h.plan ?? "null"),
    shift_table: JSON.parse(h.shift_table ?? "[]"),
  };
}

export async function listCampaigns(redis: Redis, prefix: string): Promise<string[]> {
  return (await redis.smembers(campaignsKey(prefix))).sort();
}

// Atomic: the result is stored and counted only if this job has no result yet.
const RECORD_RESULT = `
local isNew = redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if isNew == 1 then
  redis.call('HINCRBY', KEYS[3], 'done_' .. ARGV[3] .. '_samples', ARGV[4])
  redis.call('HINCRBY', KEYS[3], 'completed', 1)
  redis.call('HSETNX', KEYS[3], 'first_result_at', ARGV[5])
  redis.call('HSET', KEYS[3], 'last_result_at', ARGV[5])
  local failed = redis.call('HGET', KEYS[2], ARGV[1])
  if failed then
    redis.call('HDEL', KEYS[2], ARGV[1])
    redis.call('HINCRBY', KEYS[3], 'failed', -1)
    redis.call('HINCRBY', KEYS[3], 'lost_samples', -tonumber(ARGV[6]))
  end
end
return isNew
`;

const RECORD_FAILURE = `
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 0 end
local isNew = redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
if isNew == 1 then
  redis.call('HINCRBY', KEYS[3], 'failed', 1)
  redis.call('HINCRBY', KEYS[3], 'lost_samples', ARGV[3])
end
return isNew
`;

function samples(seconds: number, isr: number): number {
  return Math.round(seconds * isr);
}

async function rate(redis: Redis, keys: CampaignKeys): Promise<number> {
  const isr = Number(await redis.hget(keys.meta, "inference_sampling_rate"));
  if (!(isr > 0)) throw new Error(`campaign metadata ${keys.meta} is missing (was the campaign submitted, or purged?)`);
  return isr;
}

/** Records a completed job; returns false when it had already been counted. */
export async function recordJobResult(redis: Redis, prefix: string, campaign: string, summary: JobSummary): Promise<boolean> {
  const keys = campaignKeys(prefix, campaign);
  const isr = await rate(redis, keys);
  const n = samples(summary.livetime, isr);
  const failure = await redis.hget(keys.failures, summary.job_id);
  const lost = failure ? samples((JSON.parse(failure) as JobFailure).livetime_lost, isr) : 0;
  const r = await redis.eval(RECORD_RESULT, 3, keys.results, keys.failures, keys.meta, summary.job_id, JSON.stringify(summary), summary.kind, n, Date.now(), lost);
  return r === 1;
}

/** Records a job that failed for good: its planned livetime is lost, not counted. */
export async function recordJobFailure(redis: Redis, prefix: string, campaign: string, failure: JobFailure): Promise<boolean> {
  const keys = campaignKeys(prefix, campaign);
  const isr = await rate(redis, keys);
  const r = await redis.eval(RECORD_FAILURE, 3, keys.results, keys.failures, keys.meta, failure.job_id, JSON.stringify(failure), samples(failure.livetime_lost, isr));
  return r === 1;
}
