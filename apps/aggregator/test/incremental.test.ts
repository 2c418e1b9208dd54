// Incremental aggregation: a partial report folds the background jobs it
// reads into a checkpoint, and the next aggregation reads only the jobs
// recorded since. The reports must equal a from-scratch aggregation exactly.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { campaignKeys, recordJobResult } from "@timeslide/campaign";
import { readBackground, writeEvents } from "@timeslide/stats";
import { aggregateCampaign } from "../src/index.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tstest-inc-${randomBytes(4).toString("hex")}`;
const campaign = "inc-test";
const keys = campaignKeys(prefix, campaign);
const dir = mkdtempSync(join(tmpdir(), "ts-inc-"));
let redis: Redis;

let seed = 11;
const r = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
const N_BG = 60;
// a small capacity so the bulk (histogram) and the exact region both matter
const CAPACITY = 50;
const bg = Array.from({ length: N_BG }, (_, j) => {
  const m = 10 + (j % 7);
  const st = Float64Array.from({ length: m }, () => Math.round(-Math.log(r()) * 30) / 10); // ties
  return { id: `bg-${1187000000 + (j % 10) * 1000}-k${1 + Math.floor(j / 10)}`, st, time: Float64Array.from(st, (_, i) => 1187000000 + (j % 10) * 1000 + i * 37) };
});
const fgStats = Float64Array.from([0.4, 2.5, 6.1, 50]);

/** A logger that keeps what "aggregated" said. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: "info" }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, aggregated: () => lines.find((l) => l.msg === "aggregated")! };
}
const record = (kind: "background" | "foreground", id: string, livetime: number, events: number) =>
  recordJobResult(redis, prefix, campaign, { job_id: id, kind, livetime, events, loudest: null, path: `jobs/${id}.h5`, shifts: 1 });
const strip = (path: string) => {
  const j = JSON.parse(readFileSync(path, "utf8"));
  delete j.generated_at;
  return j;
};

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  await redis.hset(keys.meta, {
    state: "submitted",
    spec_hash: "h1",
    total_jobs: N_BG + 1,
    inference_sampling_rate: 4,
    planned_background_samples: N_BG * 1000 * 4,
    planned_foreground_samples: 800 * 4,
    planned_injection_samples: 0,
    output: dir,
    spec: JSON.stringify({ name: campaign, ifos: ["H1", "L1"] }),
    counts: JSON.stringify({ background: N_BG, foreground: 1, injection: 0 }),
    submitted_at: Date.now(),
  });
  for (const j of bg)
    await writeEvents(join(dir, "jobs", `${j.id}.h5`), {
      time: j.time, detection_statistic: j.st, shift: Float64Array.from({ length: 2 * j.st.length }, (_, i) => (i % 2 ? 3 : 0)),
      nIfo: 2, livetime: 1000, ifos: ["H1", "L1"], kind: "background", job_id: j.id,
    });
  await writeEvents(join(dir, "jobs", "fg-1187000000-k0.h5"), {
    time: Float64Array.from([1187000100, 1187000200, 1187000300, 1187000400]), detection_statistic: fgStats, shift: new Float64Array(8),
    nIfo: 2, livetime: 800, ifos: ["H1", "L1"], kind: "foreground", job_id: "fg-1187000000-k0",
  });
});

afterAll(async () => {
  const found = await redis.keys(`${prefix}:*`);
  if (found.length) await redis.del(...found);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("incremental aggregation", () => {
  it("a partial report, then the rest: only new job files are read, and the reports equal a from-scratch aggregation", async () => {
    const out = join(dir, "inc");
    await record("foreground", "fg-1187000000-k0", 800, 4);
    for (const j of bg.slice(0, 25)) await record("background", j.id, 1000, j.st.length);
    const a = capture();
    const first = await aggregateCampaign({ redis, prefix, campaign, out, capacity: CAPACITY, logger: a.logger });
    expect(first.partial).toBe(true);
    expect(a.aggregated().jobs_read).toBe(26); // 25 background + the foreground job
    expect(existsSync(join(out, ".aggregate", "background.h5"))).toBe(true);

    for (const j of bg.slice(25, 40)) await record("background", j.id, 1000, j.st.length);
    const b = capture();
    await aggregateCampaign({ redis, prefix, campaign, out, capacity: CAPACITY, logger: b.logger });
    expect(b.aggregated().jobs_read).toBe(15 + 1); // the new background jobs (+ foreground, always read whole)

    for (const j of bg.slice(40)) await record("background", j.id, 1000, j.st.length);
    const c = capture();
    const last = await aggregateCampaign({ redis, prefix, campaign, out, capacity: CAPACITY, logger: c.logger });
    expect(last.partial).toBe(false);
    expect(c.aggregated().jobs_read).toBe(20 + 1);

    const scratchOut = join(dir, "scratch");
    const scratch = await aggregateCampaign({ redis, prefix, campaign, out: scratchOut, capacity: CAPACITY, fromScratch: true, logger: pino({ level: "silent" }) });
    expect(strip(join(out, "report.json"))).toEqual(strip(join(scratchOut, "report.json")));
    expect(last.report).toEqual(scratch.report);
    // the bulk mattered: events beyond the exact region were counted through the histogram
    const all = bg.flatMap((j) => Array.from(j.st));
    expect(all.length).toBeGreaterThan(CAPACITY);
    const s = await readBackground(join(out, "background.h5"));
    expect(s.events).toBe(all.length);
    expect(s.livetime).toBe(N_BG * 1000);
    expect(s.exactAbove).toBeGreaterThan(-Infinity);
  });

  it("starts from scratch when the checkpoint was built for another spec or holds a job with no result", async () => {
    const out = join(dir, "inc");
    // another spec under the same name (purged and resubmitted): the checkpoint is not used
    const state = JSON.parse(readFileSync(join(out, ".aggregate", "state.json"), "utf8"));
    writeFileSync(join(out, ".aggregate", "state.json"), JSON.stringify({ ...state, spec_hash: "other" }));
    const a = capture();
    await aggregateCampaign({ redis, prefix, campaign, out, capacity: CAPACITY, logger: a.logger });
    expect(a.aggregated().jobs_read).toBe(N_BG + 1);

    // a result removed from Redis since the checkpoint: its job must not stay counted
    await redis.hdel(keys.results, bg[0].id);
    const b = capture();
    const res = await aggregateCampaign({ redis, prefix, campaign, out, capacity: CAPACITY, logger: b.logger });
    expect(b.aggregated().jobs_read).toBe(N_BG);
    expect(res.report.livetime.background_s).toBe((N_BG - 1) * 1000);
  });
});
