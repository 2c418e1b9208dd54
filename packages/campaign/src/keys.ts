// Redis names shared by the coordinator, workers and the aggregator.
// BullMQ owns `${prefix}:${queue}:*` for its own structures; timeslide's own
// keys live beside them under `${prefix}:${campaign}:ts:*`, so one SCAN of the
// campaign prefix finds (and `cancel --purge` removes) everything.

export const DEFAULT_PREFIX = "timeslide";

/** Key prefix for this process: TIMESLIDE_PREFIX, else "timeslide" (tests set their own). */
export function redisPrefix(env: NodeJS.ProcessEnv = process.env): string {
  return env.TIMESLIDE_PREFIX || DEFAULT_PREFIX;
}

/** The BullMQ queue of a campaign: one queue per campaign, named after it. */
export function queueName(campaign: string): string {
  return campaign;
}

export interface CampaignKeys {
  /** hash: spec (JSON), spec_hash, plan summary (JSON), totals, state, submitted_at */
  meta: string;
  /** hash: job id -> JobSummary JSON, written by the worker when a job completes */
  results: string;
  /** hash: job id -> JobFailure JSON, written when a job fails for good */
  failures: string;
  /** string: set once, by whoever first sees every job accounted for (aggregation trigger) */
  aggregated: string;
}

export function campaignKeys(prefix: string, campaign: string): CampaignKeys {
  const base = `${prefix}:${campaign}:ts`;
  return {
    meta: `${base}:meta`,
    results: `${base}:results`,
    failures: `${base}:failures`,
    aggregated: `${base}:aggregated`,
  };
}

/** Set of the campaigns submitted under a prefix. */
export function campaignsKey(prefix: string): string {
  return `${prefix}:campaigns`;
}
