import { resolve } from "node:path";
import type { Redis } from "ioredis";
import { campaignKeys, campaignPathProblems, plannedJobs, readStoredCampaign, storedExclusions, type Exclusions } from "@timeslide/campaign";
import { readInjections } from "@timeslide/strain";
import { PermanentJobError, type JobContext } from "./pipeline.js";

/** Campaign contexts read from Redis once per campaign and process. */
export class ContextCache {
  readonly #cache = new Map<string, Promise<JobContext>>();
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async get(campaign: string): Promise<JobContext> {
    // Keyed by the spec hash too: a campaign purged and submitted again under
    // the same name gets a fresh context (and plan), not the old one.
    const hash = await this.redis.hget(campaignKeys(this.prefix, campaign).meta, "spec_hash");
    const key = `${campaign}\n${hash}`;
    let c = this.#cache.get(key);
    if (!c) {
      for (const k of this.#cache.keys()) if (k.startsWith(`${campaign}\n`)) this.#cache.delete(k);
      c = this.#load(campaign);
      c.catch(() => this.#cache.delete(key)); // a failed load is retried by the next job
      this.#cache.set(key, c);
    }
    return c;
  }

  async #load(campaign: string): Promise<JobContext> {
    const { meta, spec } = await readStoredCampaign(this.redis, this.prefix, campaign);
    // The metadata can be edited in Redis: the worker reads data files and
    // writes results only where the campaign's spec says.
    const problems = campaignPathProblems(meta, spec);
    if (problems.length) throw new PermanentJobError(`${problems.join("; ")}: refused`);
    let ex: Exclusions;
    try {
      ex = storedExclusions(meta);
    } catch (e) {
      throw new PermanentJobError((e as Error).message);
    }
    const ctx: JobContext = { campaign, spec, shiftTable: meta.shift_table, edge: ex.edge, vetoes: ex.vetoes, files: meta.files, output: meta.output };
    if (spec.injections) ctx.injections = await readInjections(resolve(meta.base_dir, spec.injections.file), spec.ifos);
    try {
      ctx.planned = plannedJobs(meta, spec, ctx.injections?.times);
    } catch (e) {
      throw new PermanentJobError((e as Error).message);
    }
    return ctx;
  }
}
