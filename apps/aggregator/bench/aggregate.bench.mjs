// Benchmark: the aggregator at a thousand years' size. J background job
// results (default 2·10^5, as 1000 y over 30 days plans) plus foreground
// jobs, aggregated as a partial report while 10 % of the jobs are still to
// come, then again once they are in (incremental: only the new job files are
// read), then from scratch (the checkpoint removed) as the baseline. Prints
// wall time and peak memory of each, the ratio incremental / from scratch
// (target ≈ the share of new jobs), and checks the two final reports agree.
// Job files are cached in $TMPDIR between runs (writing them is not measured).
// Usage: node apps/aggregator/bench/aggregate.bench.mjs [jobs=200000] [eventsPerJob=8]
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { pino } from "pino";
import { campaignKeys, connectRedis, recordJobResult } from "@timeslide/campaign";
import { writeEvents } from "@timeslide/stats";
import { aggregateCampaign } from "@timeslide/aggregator";

const JOBS = Number(process.argv[2] ?? 200_000);
const PER_JOB = Number(process.argv[3] ?? 8);
const FG_JOBS = 900;
const NEW = Math.round(JOBS * 0.1);
const TOTAL = JOBS + NEW + FG_JOBS;
const LIVETIME = 3 * 86400 / 2; // 1.5 d of background per job: 2·10^5 jobs ≈ 820 y
const dir = join(tmpdir(), `timeslide-bench-agg-v1-${JOBS}-${PER_JOB}`);
const out = join(dir, "out");

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const bgId = (j) => `bg-${1238166018 + (j % 700) * 4096}-k${1 + Math.floor(j / 700) * 12}`;
const fgId = (j) => `fg-${1238166018 + j * 4096}-k0`;

async function writeJobs() {
  if (existsSync(join(dir, "done"))) return false;
  mkdirSync(join(out, "jobs"), { recursive: true });
  const r = rng(7);
  for (let j = 0; j < JOBS + NEW; j++) {
    const stat = Float64Array.from({ length: PER_JOB }, () => Math.round(-Math.log(1 - r()) * 1000) / 1000 + 5);
    const time = Float64Array.from({ length: PER_JOB }, (_, i) => 1238166018 + (j % 700) * 4096 + 64 + i * 400);
    const shift = Float64Array.from({ length: 2 * PER_JOB }, (_, i) => (i % 2 ? 1 + Math.floor(j / 700) * 12 : 0));
    await writeEvents(join(out, "jobs", `${bgId(j)}.h5`), { time, detection_statistic: stat, shift, nIfo: 2, livetime: LIVETIME, ifos: ["H1", "L1"], kind: "background", job_id: bgId(j) });
    if (j % 20000 === 0) console.log(`writing job files: ${j} / ${JOBS + NEW}`);
  }
  for (let j = 0; j < FG_JOBS; j++) {
    const stat = Float64Array.from({ length: 40 }, () => Math.round(-Math.log(1 - r()) * 1000) / 1000 + 5);
    const time = Float64Array.from({ length: 40 }, (_, i) => 1238166018 + j * 4096 + 64 + i * 100);
    await writeEvents(join(out, "jobs", `${fgId(j)}.h5`), { time, detection_statistic: stat, shift: new Float64Array(80), nIfo: 2, livetime: 4000, ifos: ["H1", "L1"], kind: "foreground", job_id: fgId(j) });
  }
  writeFileSync(join(dir, "done"), "");
  return true;
}

const wrote = await writeJobs();
const redis = await connectRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const prefix = `tsbench-agg-${randomBytes(3).toString("hex")}`;
const campaign = "bench-agg";
const keys = campaignKeys(prefix, campaign);
const logger = pino({ level: process.env.BENCH_LOG ?? "silent" }, pino.destination(2));
const record = async (ids, kind, livetime) => {
  for (let i = 0; i < ids.length; i += 2000)
    await Promise.all(ids.slice(i, i + 2000).map((id) => recordJobResult(redis, prefix, campaign, { job_id: id, kind, livetime, events: PER_JOB, loudest: null, path: `jobs/${id}.h5`, shifts: 12 })));
};
const timed = async (label) => {
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const t0 = performance.now();
  const r = await aggregateCampaign({ redis, prefix, campaign, out, logger });
  const s = (performance.now() - t0) / 1000;
  console.log(`${label}: ${s.toFixed(1)} s, ${r.report.jobs.completed} jobs in the report, rss +${((process.memoryUsage().rss - rss0) / 2 ** 20).toFixed(0)} MiB, partial ${r.partial}`);
  return { s, report: r.report };
};
try {
  await redis.hset(keys.meta, {
    state: "submitted",
    spec_hash: "bench",
    total_jobs: TOTAL,
    inference_sampling_rate: 4,
    planned_background_samples: (JOBS + NEW) * LIVETIME * 4,
    planned_foreground_samples: FG_JOBS * 4000 * 4,
    planned_injection_samples: 0,
    output: out,
    spec: JSON.stringify({ name: campaign, ifos: ["H1", "L1"] }),
    counts: JSON.stringify({ background: JOBS + NEW, foreground: FG_JOBS, injection: 0 }),
    submitted_at: Date.now(),
  });
  rmSync(join(out, ".aggregate"), { recursive: true, force: true });
  console.log(`${JOBS} + ${NEW} background job files of ${PER_JOB} events, ${FG_JOBS} foreground${wrote ? " (written this run)" : " (cached)"}`);
  await record(Array.from({ length: FG_JOBS }, (_, j) => fgId(j)), "foreground", 4000);
  await record(Array.from({ length: JOBS }, (_, j) => bgId(j)), "background", LIVETIME);
  const first = await timed(`partial report, ${JOBS} background jobs (first aggregation: reads every job file)`);
  await record(Array.from({ length: NEW }, (_, j) => bgId(JOBS + j)), "background", LIVETIME);
  const inc = await timed(`final report after ${NEW} more jobs (incremental)`);
  rmSync(join(out, ".aggregate"), { recursive: true, force: true });
  const scratch = await timed(`final report from scratch (baseline)`);
  const strip = (r) => JSON.stringify({ ...r, generated_at: undefined });
  console.log(`incremental / from scratch: ${(inc.s / scratch.s).toFixed(3)} (new jobs are ${(NEW / (JOBS + NEW)).toFixed(3)} of all); ` +
    `first / from scratch ${(first.s / scratch.s).toFixed(2)}; reports ${strip(inc.report) === strip(scratch.report) ? "identical" : "DIFFER"}`);
} finally {
  const found = await redis.keys(`${prefix}:*`);
  if (found.length) await redis.del(...found);
  redis.disconnect();
}
