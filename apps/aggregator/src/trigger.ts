// When a campaign's last job is accounted for, exactly one process aggregates.
//
// Completion counter, not a BullMQ parent/child flow: a flow parent with 10^5
// children means one huge dependency set written at submit and a parent that
// never runs if a child fails for good. Here every job already lands in
// exactly one of two hashes keyed by job id (results, or failures when it
// failed for good; recordJobResult/recordJobFailure keep them disjoint), so
// HLEN(results) + HLEN(failures) == total_jobs is an O(1), retry-proof test: a
// job recorded twice overwrites its own field and is not counted twice. The
// test and the claim (SET NX on the `aggregated` key) run in one Lua script,
// so of all the workers finishing at once exactly one wins.
import { hostname } from "node:os";
import type { Redis } from "ioredis";
import { campaignKeys } from "@timeslide/campaign";
import { aggregateCampaign, type AggregateOptions, type AggregateResult } from "./aggregate.js";

const CLAIM = `
if redis.call('HGET', KEYS[1], 'state') ~= 'submitted' then return -2 end
local total = tonumber(redis.call('HGET', KEYS[1], 'total_jobs') or '0')
if not total or total <= 0 then return -2 end
local accounted = redis.call('HLEN', KEYS[2]) + redis.call('HLEN', KEYS[3])
if accounted < total then return -1 end
if redis.call('SET', KEYS[4], ARGV[1], 'NX') then return 1 end
return 0
`;

// release only our own claim (an aggregation that failed), so another can retry
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;

export type ClaimOutcome = "claimed" | "incomplete" | "taken" | "not-submitted";

/** Claim the campaign's aggregation if every planned job is accounted for. */
export async function claimAggregation(redis: Redis, prefix: string, campaign: string, owner: string): Promise<ClaimOutcome> {
  const k = campaignKeys(prefix, campaign);
  const r = Number(await redis.eval(CLAIM, 4, k.meta, k.results, k.failures, k.aggregated, owner));
  return r === 1 ? "claimed" : r === -1 ? "incomplete" : r === 0 ? "taken" : "not-submitted";
}

export async function releaseAggregation(redis: Redis, prefix: string, campaign: string, owner: string): Promise<boolean> {
  return Number(await redis.eval(RELEASE, 1, campaignKeys(prefix, campaign).aggregated, owner)) === 1;
}

/**
 * Call after recording each job's result or failure: aggregates once, in the
 * caller that completes the campaign, and returns the result there (null
 * everywhere else). On failure the claim is released and the error rethrown.
 */
export async function aggregateIfComplete(o: AggregateOptions & { owner?: string }): Promise<AggregateResult | null> {
  const owner = o.owner ?? `${hostname()}:${process.pid}:${Date.now()}`;
  if ((await claimAggregation(o.redis, o.prefix, o.campaign, owner)) !== "claimed") return null;
  try {
    const result = await aggregateCampaign(o);
    await o.redis.set(campaignKeys(o.prefix, o.campaign).aggregated, JSON.stringify({ owner, at: Date.now(), out: result.out }));
    return result;
  } catch (e) {
    await releaseAggregation(o.redis, o.prefix, o.campaign, owner);
    throw e;
  }
}
