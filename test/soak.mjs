// The soak: a campaign of many tiny jobs (10^4 by default; SOAK_JOBS to
// change it) through the real pipeline — synthetic data, a model repository
// and `timeslide serve`, `timeslide submit`, two `timeslide worker`
// processes — while a bounded loop SIGKILLs a random worker every few
// seconds and starts it again. Prints one JSON line every few seconds
// (progress, retries and stalls, failures and livetime lost, Redis memory),
// stops when the campaign completes or the time limit passes (said so),
// checks the accounting (background livetime = plan − reported losses, no
// result recorded twice, one job file per result), prints a summary,
// records it (test/outcomes.ts recordSoak) and removes its Redis keys and
// temp files.
//
//   npm run soak                      # 10^4 jobs
//   SOAK_JOBS=500 npm run soak        # a quick check
//
// Settings (env): SOAK_JOBS (10000), SOAK_KILLS (most SIGKILLs, 20),
// SOAK_KILL_EVERY_S (mean seconds between kills, 30), SOAK_LIMIT_S (time
// limit, 2400), SOAK_INTERVAL_S (progress line period, 5), SOAK_CONCURRENCY
// (jobs at once per worker, 3), REDIS_URL (default redis://127.0.0.1:6379).
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { QueueEvents } from "bullmq";
import ts from "typescript";
import { campaignKeys, campaignStatus, connectRedis, deleteKeys, freePort, queueName, redactRedisUrl } from "@timeslide/campaign";

const env0 = process.env;
const N = Math.max(10, Number(env0.SOAK_JOBS) || 10_000);
const MAX_KILLS = Math.max(0, Number(env0.SOAK_KILLS ?? 20));
const KILL_EVERY_S = Math.max(1, Number(env0.SOAK_KILL_EVERY_S) || 30);
const LIMIT_S = Math.max(30, Number(env0.SOAK_LIMIT_S) || 2400);
const INTERVAL_S = Math.max(1, Number(env0.SOAK_INTERVAL_S) || 5);
const CONCURRENCY = Math.max(1, Number(env0.SOAK_CONCURRENCY) || 3);
const REDIS_URL = env0.REDIS_URL || "redis://127.0.0.1:6379";
const CLI = join(import.meta.dirname, "../apps/cli/dist/main.js");
const prefix = `tssoak-${randomBytes(4).toString("hex")}`;
const CAMPAIGN = "soak";
const dir = mkdtempSync(join(tmpdir(), "timeslide-soak-"));
const env = { ...env0, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };
const t0 = Date.now();
const elapsed = () => Math.round((Date.now() - t0) / 100) / 10;
const line = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function cli(args) {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env, cwd: dir, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`timeslide ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

const procs = new Set();
function start(args, tag) {
  const c = spawn(process.execPath, [CLI, ...args], { env, cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  c.stderr.on("data", (d) => (err = (err + d).slice(-3000)));
  c.tag = tag;
  c.lastErr = () => err;
  procs.add(c);
  c.on("exit", () => procs.delete(c));
  return c;
}

function campaignYaml(shifts, port) {
  // Tiny jobs: 24 s read, 8 s burn-in, 16 s of output (32 detection-statistic
  // samples); job_livetime = one chunk's output, so each background job
  // carries one shift. Non-circular: a job reads only its chunk (a circular
  // job reads its whole segment per detector), the largest shift is lost at the end.
  return `name: ${CAMPAIGN}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: 128, segments: { flags: [DATA], min_duration: 60 } }
model: { name: detector-stream, servers: ["127.0.0.1:${port}"] }
inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 8, fduration: 1, highpass: 20 }
background: { shifts: ${shifts}, step: 1, circular: false, max_job_duration: 24, job_livetime: 16 }
queue: { attempts: 3 }
output: results
`;
}

/** recordSoak from test/outcomes.ts (TypeScript), transpiled beside it so its paths stay the same. */
async function recordSoak(figures) {
  const src = readFileSync(join(import.meta.dirname, "outcomes.ts"), "utf8");
  const js = ts.transpileModule(src, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
  const tmp = join(import.meta.dirname, `.outcomes-${process.pid}.mjs`);
  writeFileSync(tmp, js);
  try {
    (await import(pathToFileURL(tmp).href)).recordSoak(figures);
  } finally {
    unlinkSync(tmp);
  }
}

let redis;
let events;
let exitCode = 0;
const workers = [];
try {
  redis = await connectRedis(REDIS_URL);
  line({ soak: "setup", jobs_target: N, redis: redactRedisUrl(REDIS_URL), prefix, dir });
  // enough data that the shifts stay short against it (non-circular: a shift longer than a segment gives nothing)
  const minutes = Math.max(20, Math.ceil(N / 700));
  cli(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", `${minutes}m`, "--sample-rate", "256", "--file-duration", "600", "--gaps", "0", "--injections", "0", "--seed", "7"]);
  cli(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"]);
  const port = await freePort();
  const server = start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1"], "server");

  // Shifts for at least N jobs: one plan with one shift gives the jobs per shift.
  writeFileSync(join(dir, "campaign.yaml"), campaignYaml(1, port));
  const one = JSON.parse(cli(["plan", "campaign.yaml", "--json"]));
  const perShift = one.jobs.background;
  let shifts = Math.max(1, Math.ceil((N - one.jobs.foreground) / perShift));
  let plan;
  for (;;) {
    writeFileSync(join(dir, "campaign.yaml"), campaignYaml(shifts, port));
    plan = JSON.parse(cli(["plan", "campaign.yaml", "--json"]));
    if (plan.jobs.total >= N) break;
    shifts += Math.max(1, Math.ceil((N - plan.jobs.total) / Math.max(1, plan.jobs.background / shifts)));
  }
  const submitted = JSON.parse(cli(["submit", "campaign.yaml", "--json"]));
  line({ soak: "submitted", elapsed_s: elapsed(), jobs: plan.jobs, shifts, background_planned_s: plan.livetime.background_s, added: submitted.added });

  // Stalls and attempt failures, as BullMQ announces them.
  let stalled = 0;
  let attemptFailures = 0;
  events = new QueueEvents(queueName(CAMPAIGN), { connection: redis.duplicate(), prefix });
  events.on("stalled", () => stalled++);
  events.on("failed", () => attemptFailures++);
  await events.waitUntilReady();

  const workerArgs = ["worker", CAMPAIGN, "--concurrency", String(CONCURRENCY), "--lock", "5", "--grace", "5"];
  workers.push(start(workerArgs, "worker-0"), start(workerArgs, "worker-1"));

  // The bounded kill loop: a random worker, SIGKILL, started again a moment later.
  let kills = 0;
  let stopKilling = false;
  const killer = (async () => {
    while (!stopKilling && kills < MAX_KILLS) {
      await sleep(KILL_EVERY_S * 1000 * (0.5 + Math.random()));
      if (stopKilling) break;
      const i = Math.floor(Math.random() * workers.length);
      const w = workers[i];
      if (w.exitCode !== null) continue;
      w.kill("SIGKILL");
      kills++;
      await new Promise((r) => (w.exitCode !== null || w.signalCode !== null ? r() : w.once("exit", r)));
      await sleep(500);
      if (!stopKilling) workers[i] = start(workerArgs, `worker-${i}`);
    }
  })();

  let status;
  let timedOut = false;
  let peakMemory = 0;
  const memory = async () => {
    const info = await redis.info("memory");
    const used = Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    peakMemory = Math.max(peakMemory, used);
    return used;
  };
  const progress = async () => {
    status = await campaignStatus(redis, prefix, CAMPAIGN);
    const s = status;
    line({
      elapsed_s: elapsed(),
      done: s.jobs.completed,
      total: s.jobs.total,
      active: s.jobs.active,
      waiting: s.jobs.waiting,
      delayed: s.jobs.delayed,
      retrying: s.jobs.retrying,
      stalled,
      attempt_failures: attemptFailures,
      failed: s.jobs.failed,
      lost_s: s.livetime.lost_s,
      background_s: s.livetime.background_s,
      kills,
      workers_up: workers.filter((w) => w.exitCode === null && w.signalCode === null).length,
      redis_used_memory: await memory(),
    });
  };
  for (;;) {
    await progress();
    if (status.done) break;
    if (elapsed() > LIMIT_S) {
      timedOut = true;
      break;
    }
    if (server.exitCode !== null) throw new Error(`the inference server exited: ${server.lastErr()}`);
    await sleep(INTERVAL_S * 1000);
  }
  stopKilling = true;
  const runS = elapsed();

  // The last job's worker aggregates (reads every job file): wait for the report, within reason.
  const reportPath = join(dir, "results", "report.json");
  let aggregateS = null;
  if (!timedOut) {
    const a0 = Date.now();
    while (!existsSync(join(dir, "results", "report.html")) && Date.now() - a0 < 180_000) await sleep(500);
    if (existsSync(reportPath)) aggregateS = Math.round((Date.now() - a0) / 100) / 10;
    else cli(["report", CAMPAIGN]); // the aggregating worker was killed: on demand instead
  }
  await Promise.race([killer, sleep(KILL_EVERY_S * 2000)]);
  await Promise.all(
    [...procs].map((p) => new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : (p.once("exit", r), p.kill("SIGTERM"))))),
  );

  // Accounting.
  const k = campaignKeys(prefix, CAMPAIGN);
  const results = Object.entries(await redis.hgetall(k.results)).map(([id, v]) => ({ id, ...JSON.parse(v) }));
  const resultIds = results.map((r) => r.id);
  const median = (xs) => {
    const a = xs.filter((x) => Number.isFinite(x)).sort((p, q) => p - q);
    return a.length ? Math.round(a[Math.floor(a.length / 2)] * 1000) / 1000 : null;
  };
  const jobTimings = {
    total_s: median(results.map((r) => r.timings?.total_s)),
    read_whiten_s: median(results.map((r) => r.timings?.read_whiten_s)),
    infer_s: median(results.map((r) => r.timings?.infer_s)),
  };
  const failures = Object.values(await redis.hgetall(k.failures)).map((v) => JSON.parse(v));
  const failureIds = new Set(failures.map((f) => f.job_id));
  const both = resultIds.filter((id) => failureIds.has(id));
  const bgLost = failures.filter((f) => f.kind === "background").reduce((a, f) => a + f.livetime_lost, 0);
  const final = await campaignStatus(redis, prefix, CAMPAIGN);
  const jobFiles = existsSync(join(dir, "results", "jobs")) ? readdirSync(join(dir, "results", "jobs")).filter((f) => f.endsWith(".h5")).length : 0;
  const report = existsSync(reportPath) ? JSON.parse(readFileSync(reportPath, "utf8")) : null;
  const tol = 1e-6 * Math.max(1, final.livetime.background_planned_s);
  const checks = {
    complete: final.done,
    // every job accounted for exactly once: a result or a failure, never both
    each_job_once: resultIds.length + failures.length === final.jobs.total && both.length === 0,
    // the meta counters agree with the hashes: nothing counted twice
    counters_agree: final.jobs.completed === resultIds.length && final.jobs.failed === failures.length,
    one_file_per_result: jobFiles === resultIds.length,
    background_livetime_equals_plan_minus_losses: Math.abs(final.livetime.background_s - (final.livetime.background_planned_s - bgLost)) <= tol,
    report_agrees: report ? Math.abs(report.livetime.background_s - final.livetime.background_s) <= tol && report.jobs.completed === resultIds.length : null,
  };
  const ok = !timedOut && Object.values(checks).every((v) => v !== false);
  const summary = {
    soak: timedOut ? "time limit reached" : "complete",
    ok,
    jobs: final.jobs.total,
    completed: final.jobs.completed,
    failed: final.jobs.failed,
    run_s: runS,
    jobs_per_s: Math.round((final.jobs.completed / runS) * 10) / 10,
    aggregate_s: aggregateS,
    kills,
    stalled,
    attempt_failures: attemptFailures,
    background_planned_s: final.livetime.background_planned_s,
    background_s: final.livetime.background_s,
    background_lost_s: bgLost,
    lost_s: final.livetime.lost_s,
    redis_peak_used_memory: peakMemory,
    median_job_s: jobTimings,
    load_average: (await import("node:os")).loadavg().map((x) => Math.round(x * 10) / 10),
    checks,
  };
  line(summary);
  if (!ok) exitCode = 1;
  await recordSoak({
    result: timedOut ? `time limit (${LIMIT_S} s) reached: ${final.jobs.completed} of ${final.jobs.total} jobs` : ok ? "complete, accounting exact" : "complete, accounting check failed",
    jobs: final.jobs.total,
    "workers (concurrency each)": `2 (${CONCURRENCY})`,
    "SIGKILLs (worker restarted each time)": kills,
    "stalled jobs (BullMQ events)": stalled,
    "attempt failures (retried)": attemptFailures,
    "jobs failed for good": final.jobs.failed,
    "background livetime lost (s)": bgLost,
    "background livetime (s): done / planned": `${final.livetime.background_s} / ${final.livetime.background_planned_s}`,
    "run time (s)": runS,
    "jobs per second": summary.jobs_per_s,
    "aggregation of the report (s)": aggregateS ?? "—",
    "median job (s): total / read+whiten / inference": `${jobTimings.total_s} / ${jobTimings.read_whiten_s} / ${jobTimings.infer_s}`,
    "machine load average at the end (1/5/15 min, 2 cores)": summary.load_average.join(" / "),
    "Redis used_memory, peak (MiB)": Math.round((peakMemory / 2 ** 20) * 10) / 10,
    checks: Object.entries(checks)
      .map(([c, v]) => `${c}: ${v === null ? "n/a" : v ? "yes" : "NO"}`)
      .join("; "),
  });
} catch (e) {
  line({ soak: "error", elapsed_s: elapsed(), error: e.message });
  exitCode = 1;
} finally {
  for (const p of procs) if (p.exitCode === null) p.kill("SIGKILL");
  await events?.close().catch(() => {});
  if (redis) {
    const n = await deleteKeys(redis, `${prefix}:*`).catch(() => 0);
    line({ soak: "cleaned", redis_keys_removed: n });
    redis.disconnect();
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
