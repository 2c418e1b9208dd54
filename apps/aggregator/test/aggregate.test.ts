import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { campaignKeys, recordJobFailure, recordJobResult } from "@timeslide/campaign";
import { JULIAN_YEAR_S, readBackground, readColumns, readEvents, writeEvents } from "@timeslide/stats";
import { ReportJson } from "@timeslide/report";
import { aggregateCampaign, aggregateIfComplete, claimAggregation } from "../src/index.js";
import { fixture } from "../../../test/fixtures.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tstest-agg-${randomBytes(4).toString("hex")}`;
const campaign = "agg-test";
const keys = campaignKeys(prefix, campaign);
const dir = mkdtempSync(join(tmpdir(), "ts-agg-"));
const logger = pino({ level: "silent" });
let redis: Redis;

function rng(seed: number) {
  return () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
}
const r = rng(42);

// 6 background jobs of 1000 s with quantised (tied) statistics, 1 foreground job, 1 injection job, 1 failed job
const bgJobs = Array.from({ length: 6 }, (_, j) => {
  const m = 40 + j;
  const st = Float64Array.from({ length: m }, () => Math.round(-Math.log(r()) * 20) / 10);
  return { id: `bg-${1187000000 + j * 1000}-k1`, livetime: 1000, st, time: Float64Array.from(st, (_, i) => 1187000000 + j * 1000 + i * 20), shift: j + 1 };
});
const fgStats = Float64Array.from([0.5, 3.2, 9.9, 100]); // 100: louder than every background event
const fgTimes = Float64Array.from([1187000300, 1187000100, 1187000200, 1187000400]);
const TOTAL_JOBS = bgJobs.length + 3;

async function record(kind: "background" | "foreground" | "injection", id: string, livetime: number, path: string, events: number) {
  return recordJobResult(redis, prefix, campaign, { job_id: id, kind, livetime, events, loudest: null, path, shifts: 1 });
}

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await redis.connect();
  const isr = 4;
  await redis.hset(keys.meta, {
    state: "submitted",
    total_jobs: TOTAL_JOBS,
    inference_sampling_rate: isr,
    planned_background_samples: 7 * 1000 * isr,
    planned_foreground_samples: 400 * isr,
    planned_injection_samples: 300 * isr,
    output: dir,
    spec: JSON.stringify({ name: campaign, ifos: ["H1", "L1"], injections: { file: fixture("injections.h5"), window: 1 } }),
    counts: JSON.stringify({ background: 7, foreground: 1, injection: 1 }),
    submitted_at: Date.now(),
  });
  for (const j of bgJobs) {
    await writeEvents(join(dir, "jobs", `${j.id}.h5`), {
      time: j.time,
      detection_statistic: j.st,
      shift: Float64Array.from({ length: 2 * j.st.length }, (_, i) => (i % 2 ? j.shift : 0)),
      nIfo: 2,
      livetime: j.livetime,
      ifos: ["H1", "L1"],
      kind: "background",
      job_id: j.id,
    });
  }
  await writeEvents(join(dir, "jobs", "fg-1187000000-k0.h5"), { time: fgTimes, detection_statistic: fgStats, shift: new Float64Array(8), nIfo: 2, livetime: 400, ifos: ["H1", "L1"], kind: "foreground", job_id: "fg-1187000000-k0" });
  // injection job: injection 0 matched with 12.5 and 0.1, injection 1 matched with 0.2 only, one unmatched event
  await writeEvents(
    join(dir, "jobs", "inj-1187008000-k0.h5"),
    { time: Float64Array.from([1187008070.3, 1187008071, 1187008150, 1187008200.6]), detection_statistic: Float64Array.from([12.5, 0.1, 50, 0.2]), shift: new Float64Array(8), nIfo: 2, injection_index: Int32Array.from([0, 0, -1, 1]), livetime: 300, ifos: ["H1", "L1"], kind: "injection", job_id: "inj-1187008000-k0" },
    {},
    { injections: { datasets: { index: BigInt64Array.from([0n, 1n]) } } },
  );
});

afterAll(async () => {
  const found = await redis.keys(`${prefix}:*`);
  if (found.length) await redis.del(...found);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("aggregator on real Redis", () => {
  it("writes a partial report while the campaign runs, with the livetime so far", async () => {
    for (const j of bgJobs.slice(0, 3)) await record("background", j.id, j.livetime, join(dir, "jobs", `${j.id}.h5`), j.st.length);
    expect(await claimAggregation(redis, prefix, campaign, "early")).toBe("incomplete");
    expect(await aggregateIfComplete({ redis, prefix, campaign, logger })).toBeNull();
    const res = await aggregateCampaign({ redis, prefix, campaign, out: join(dir, "partial"), logger });
    expect(res.partial).toBe(true);
    expect(res.report.livetime.background_s).toBe(3000);
    expect(res.report.jobs).toEqual({ total: TOTAL_JOBS, completed: 3, failed: 0, failed_ids: [] });
    expect(readFileSync(join(dir, "partial", "report.html"), "utf8")).toContain("Partial report");
    expect(await redis.exists(keys.aggregated)).toBe(0);
  });

  it("aggregates exactly once when the last job is accounted for; duplicates count once", async () => {
    for (const j of bgJobs.slice(3)) await record("background", j.id, j.livetime, join(dir, "jobs", `${j.id}.h5`), j.st.length);
    // a result written twice (a retried job) must not count twice
    expect(await record("background", bgJobs[0].id, 1000, join(dir, "jobs", `${bgJobs[0].id}.h5`), bgJobs[0].st.length)).toBe(false);
    await record("foreground", "fg-1187000000-k0", 400, "jobs/fg-1187000000-k0.h5", 4); // relative path: under the output
    await recordJobFailure(redis, prefix, campaign, { job_id: "bg-1187009000-k1", kind: "background", reason: "NaN in <segment> & good time", livetime_lost: 1000, attempts: 3, failed_at: Date.now() });
    expect(await claimAggregation(redis, prefix, campaign, "almost")).toBe("incomplete");
    await record("injection", "inj-1187008000-k0", 300, join(dir, "jobs", "inj-1187008000-k0.h5"), 4);

    // several workers finish at once: one aggregates
    const outcomes = await Promise.all([0, 1, 2, 3].map((i) => aggregateIfComplete({ redis, prefix, campaign, logger, owner: `w${i}` })));
    const winners = outcomes.filter((o) => o !== null);
    expect(winners).toHaveLength(1);
    expect(await claimAggregation(redis, prefix, campaign, "late")).toBe("taken");
    const res = winners[0]!;
    expect(res.partial).toBe(false);
    expect(res.out).toBe(dir);
    for (const f of ["background.h5", "foreground.h5", "injections.h5", "report.json", "report.html"]) expect(existsSync(join(dir, f)), f).toBe(true);

    const report = ReportJson.parse(JSON.parse(readFileSync(join(dir, "report.json"), "utf8")));
    expect(report.campaign).toBe(campaign);
    expect(report.ifos).toEqual(["H1", "L1"]);
    expect(report.jobs).toEqual({ total: TOTAL_JOBS, completed: 8, failed: 1, failed_ids: ["bg-1187009000-k1"] });
    expect(report.livetime).toEqual({ background_s: 6000, background_years: 6000 / JULIAN_YEAR_S, foreground_s: 400 });

    // significance computed independently from the raw job arrays
    const all = bgJobs.flatMap((j) => Array.from(j.st));
    const byTime = Array.from(fgTimes.keys()).sort((a, b) => fgTimes[a] - fgTimes[b]);
    expect(report.foreground.map((c) => c.time)).toEqual(byTime.map((i) => fgTimes[i]));
    for (const c of report.foreground) {
      const n = all.filter((y) => y >= c.detection_statistic).length;
      expect(c.far_per_year).toBe(((n + 1) * JULIAN_YEAR_S) / 6000);
      expect(c.ifar_years).toBe(1 / (((n + 1) * JULIAN_YEAR_S) / 6000));
      expect(c.p_value).toBeCloseTo(1 - Math.exp((-400 * (n + 1)) / 6000), 14);
      expect(c.saturated).toBe(n === 0);
    }
    expect(report.foreground.find((c) => c.detection_statistic === 100)!.saturated).toBe(true);
    const distinct = [...new Set(all)].sort((a, b) => b - a);
    expect(report.far_curve).toEqual(distinct.map((x) => ({ detection_statistic: x, far_per_year: (all.filter((y) => y >= x).length * JULIAN_YEAR_S) / 6000 })));

    // injections: 2 injected; injection 0 at 12.5, injection 1 at 0.2
    expect(report.injections.injected).toBe(2);
    const far0 = ((all.filter((y) => y >= 12.5).length + 1) * JULIAN_YEAR_S) / 6000;
    const far1 = ((all.filter((y) => y >= 0.2).length + 1) * JULIAN_YEAR_S) / 6000;
    for (const p of report.injections.found) {
      const expected = (far0 <= p.far_per_year! ? 1 : 0) + (far1 <= p.far_per_year! ? 1 : 0);
      expect(p.found).toBe(expected);
      expect(p.efficiency).toBe(expected / 2);
    }
    for (const v of report.injections.sensitive_volume) {
      const f = report.injections.found.find((p) => p.far_per_year === v.far_per_year)!;
      expect(v.volume).toBe(f.found / 2); // equal weights, V0 = 1
    }

    // the merged files read back
    const bg = await readBackground(join(dir, "background.h5"));
    expect(bg.livetime).toBe(6000);
    expect(bg.events).toBe(all.length);
    expect(bg.farCurve()).toEqual(report.far_curve);
    const fg = await readEvents(join(dir, "foreground.h5"));
    expect(Array.from(fg.time)).toEqual(report.foreground.map((c) => c.time));
    expect(fg.livetime).toBe(400);
    const sig = await readColumns(join(dir, "foreground.h5"), "significance");
    expect(Array.from(sig!.columns.far_per_year)).toEqual(report.foreground.map((c) => c.far_per_year));
    const inj = await readEvents(join(dir, "injections.h5"));
    expect(Array.from(inj.injection_index!)).toEqual([0, 0, -1, 1]);
    const params = await readColumns(join(dir, "injections.h5"), "parameters");
    expect(Array.from(params!.columns.snr)).toEqual([9, 18]);
    const injCols = await readColumns(join(dir, "injections.h5"), "injections");
    expect(Array.from(injCols!.columns.index)).toEqual([0, 1]);
    expect(Array.from(injCols!.columns.time)).toEqual([1187008070.25, 1187008200.5]);

    const html = readFileSync(join(dir, "report.html"), "utf8");
    expect(html).toContain("NaN in &#60;segment&#62; &#38; good time");
    expect(html).not.toContain("Partial report");
    expect(html).toContain('id="plot-efficiency"');
  });

  it("a failed aggregation releases its claim, so a later call can retry", async () => {
    const other = "agg-test-missing";
    const k = campaignKeys(prefix, other);
    await redis.hset(k.meta, { state: "submitted", total_jobs: 1, inference_sampling_rate: 4, output: join(dir, "missing"), spec: JSON.stringify({ ifos: ["H1", "L1"] }) });
    await recordJobResult(redis, prefix, other, { job_id: "bg-1-k1", kind: "background", livetime: 10, events: 0, loudest: null, path: "/nonexistent/bg-1-k1.h5", shifts: 1 });
    await expect(aggregateIfComplete({ redis, prefix, campaign: other, logger, owner: "w-a" })).rejects.toThrow(/bg-1-k1\.h5: no such file/);
    expect(await redis.exists(k.aggregated)).toBe(0);
    expect(await claimAggregation(redis, prefix, other, "w-b")).toBe("claimed");
    await redis.hset(k.meta, "state", "cancelled");
    expect(await claimAggregation(redis, prefix, "agg-test-missing", "w-c")).toBe("not-submitted");
  });

  it("refuses an unknown campaign and a malformed result, naming them", async () => {
    await expect(aggregateCampaign({ redis, prefix, campaign: "nope", logger })).rejects.toThrow(/no campaign nope/);
    await redis.hset(keys.results, "bg-bad", JSON.stringify({ job_id: "bg-bad", kind: "background" }));
    await expect(aggregateCampaign({ redis, prefix, campaign, out: join(dir, "bad"), logger })).rejects.toThrow(/results bg-bad: livetime/);
    await redis.hdel(keys.results, "bg-bad");
  });
});
