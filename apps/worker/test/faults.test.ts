// Faults on real processes: workers and inference servers are `timeslide`
// child processes, killed with SIGKILL / SIGTERM mid-job; Redis is real. Every
// campaign must still account for its whole plan, and its events must equal
// an undisturbed in-process reference run (same data, onnxruntime-node
// directly, same post-processing): nothing lost, nothing counted twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import * as ort from "onnxruntime-node";
import h5wasm from "h5wasm/node";
import pino from "pino";
import type { Redis } from "ioredis";
import { Queue } from "bullmq";
import { campaignKeys, campaignStatus, connectRedis, deleteKeys, prepareCampaign, readMeta, submitCampaign, type JobFailure, type JobSummary, type Plan } from "@timeslide/campaign";
import { synthesize } from "@timeslide/strain";
import { writeDemoRepository } from "@timeslide/model-repo";
import { startServer, type RunningServer } from "@timeslide/server";
import { readEventsFile } from "@timeslide/stats";
import { ContextCache, runJob, startWorker } from "@timeslide/worker";
import { InProcessModel } from "./reference-model.js";

const CLI = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsfault-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-faults-"));
const log = pino({ level: "warn" }, pino.destination(2));
const FS = 256, KERNEL = 256, STRIDE = 64, BATCH = 16;
const LOCK_S = 2; // short job locks: a killed worker's job comes back within seconds

let redis: Redis;
let server: RunningServer; // in-process: never killed
let repo: string;
let injectionFile: string;
const plans = new Map<string, Plan>();
/** undisturbed events per job id (job ids do not depend on the campaign name) */
const reference = new Map<string, { time: Float64Array; detection_statistic: Float64Array; shift: Float64Array }>();


// ---- child processes --------------------------------------------------------

interface LogLine {
  msg?: string;
  job?: string;
  [k: string]: unknown;
}

const children = new Set<Proc>();

/** A `timeslide` child process whose JSON log lines (stdout and stderr) are kept and can be awaited. */
class Proc {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>;
  #waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  constructor(
    readonly name: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "debug", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.add(this);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        children.delete(this);
        resolve({ code, signal, at: Date.now() });
      }),
    );
    for (const s of [this.child.stdout!, this.child.stderr!])
      createInterface({ input: s }).on("line", (raw) => {
        let l: LogLine;
        try {
          l = JSON.parse(raw) as LogLine;
        } catch {
          l = { msg: raw };
        }
        this.lines.push(l);
        if (process.env.FAULTS_DEBUG) process.stderr.write(`[${this.name}] ${raw}\n`);
        this.#waiters = this.#waiters.filter((w) => (w.pred(l) ? (w.resolve(l), false) : true));
      });
  }

  /** The first log line (past or future) that satisfies `pred`. */
  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no "${what}" within ${timeoutMs} ms; last lines:\n${this.tail()}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
      void this.exited.then(() => reject(new Error(`${this.name} exited before "${what}"; last lines:\n${this.tail()}`)));
    });
  }

  tail(n = 15): string {
    return this.lines.slice(-n).map((l) => JSON.stringify(l)).join("\n");
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }
}

function startWorkerProcess(name: string, campaign: string, extra: string[] = []): Proc {
  return new Proc(name, ["worker", campaign, "--lock", String(LOCK_S), "--sequences", "4", ...extra], { TIMESLIDE_WORKER_NAME: name });
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startServerProcess(name: string): Promise<{ proc: Proc; endpoint: string }> {
  const port = await freePort();
  const proc = new Proc(name, ["serve", "--repo", repo, "--port", String(port), "--host", "127.0.0.1", "--threads", "1"]);
  await proc.waitFor((l) => l.msg === "inference server listening", "inference server listening", 30_000);
  return { proc, endpoint: `127.0.0.1:${port}` };
}

// ---- campaigns ----------------------------------------------------------------

async function submit(name: string, servers: string[], data = "data"): Promise<Plan> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
ifos: [H1, L1]
data: { files: ["${data}/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 64 } }
model: { name: detector-stream, servers: [${servers.map((s) => `"${s}"`).join(", ")}] }
inference: { kernel_length: 1, inference_sampling_rate: 4, batch_size: ${BATCH}, psd_length: 16, fduration: 1, highpass: 20 }
background: { shifts: 8, step: 2, max_job_duration: 200, job_livetime: 1600 }
injections: { file: ${injectionFile} }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-${name}
`,
  );
  const prepared = await prepareCampaign(file);
  await submitCampaign({ redis, prefix, campaign: prepared.campaign, plan: prepared.plan });
  plans.set(name, prepared.plan);
  return prepared.plan;
}

async function waitDone(campaign: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let s = await campaignStatus(redis, prefix, campaign);
  while (!s.done && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    s = await campaignStatus(redis, prefix, campaign);
  }
  if (!s.done) throw new Error(`campaign ${campaign} not done within ${timeoutMs} ms: ${JSON.stringify(s.jobs)}`);
  return s;
}

async function results(campaign: string): Promise<Map<string, JobSummary>> {
  const h = await redis.hgetall(campaignKeys(prefix, campaign).results);
  return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as JobSummary]));
}

async function failures(campaign: string): Promise<Map<string, JobFailure>> {
  const h = await redis.hgetall(campaignKeys(prefix, campaign).failures);
  return new Map(Object.entries(h).map(([k, v]) => [k, JSON.parse(v) as JobFailure]));
}

/** Every job of `ids` completed once, its events file equal to the undisturbed reference. */
async function expectReferenceEvents(campaign: string, ids: string[]) {
  const meta = (await readMeta(redis, prefix, campaign))!;
  const done = await results(campaign);
  let events = 0;
  for (const id of ids) {
    const r = done.get(id);
    expect(r, `${campaign}: ${id} has a result`).toBeDefined();
    const a = await readEventsFile(join(meta.output, "jobs", `${id}.h5`));
    const b = reference.get(id)!;
    expect(a.events.time, `${campaign}: ${id} time`).toEqual(b.time);
    expect(a.events.detection_statistic, `${campaign}: ${id} detection_statistic`).toEqual(b.detection_statistic);
    expect(a.events.shift, `${campaign}: ${id} shift`).toEqual(b.shift);
    expect(r!.events, `${campaign}: ${id} summary`).toBe(b.time.length);
    events += a.events.time.length;
  }
  expect(events).toBeGreaterThan(0);
}

/** Complete, with the planned livetime exactly: nothing lost, nothing counted twice. */
async function expectWholePlan(campaign: string) {
  const plan = plans.get(campaign)!;
  const s = await waitDone(campaign);
  expect(s.jobs.failed).toBe(0);
  expect(s.jobs.completed).toBe(plan.jobs.length);
  expect(s.livetime.background_s).toBe(plan.livetime.background_s);
  expect(s.livetime.foreground_s).toBe(plan.livetime.foreground_s);
  expect(s.livetime.injection_s).toBe(plan.livetime.injection_s);
  expect(s.livetime.lost_s).toBe(0);
  expect((await results(campaign)).size).toBe(plan.jobs.length);
  await expectReferenceEvents(
    campaign,
    plan.jobs.map((j) => j.id),
  );
}

/** SIGTERM, then the exit, within `withinMs` (else SIGKILL and fail). */
async function terminate(p: Proc, withinMs = 20_000) {
  const t0 = Date.now();
  p.kill("SIGTERM");
  const e = await Promise.race([p.exited, new Promise<null>((r) => setTimeout(() => r(null), withinMs))]);
  if (!e) {
    p.kill("SIGKILL");
    throw new Error(`${p.name} still running ${withinMs} ms after SIGTERM; last lines:\n${p.tail()}`);
  }
  expect(e.code, `${p.name} exit code; last lines:\n${p.tail()}`).toBe(0);
  return e.at - t0;
}

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  const syn = await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: 640, sampleRate: 512, fileDuration: 320, gaps: 1, injections: 6, snr: [20, 40], seed: 7 });
  injectionFile = syn.injectionFile!;
  cpSync(join(dir, "data"), join(dir, "data-bad"), { recursive: true });
  repo = join(dir, "models");
  writeDemoRepository(repo, { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, dynamicBatching: false });
  server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: 1 });

  // The undisturbed reference, once for all campaigns (same spec, same jobs).
  await submit("reference", [`127.0.0.1:${server.port}`]);
  const ctx = { ...(await new ContextCache(redis, prefix).get("reference")), output: join(dir, "reference") };
  const session = await ort.InferenceSession.create(join(repo, "detector", "1", "model.onnx"), { intraOpNumThreads: 1 });
  for (const job of plans.get("reference")!.jobs) {
    await runJob(job.id, job.payload, ctx, { model: new InProcessModel(session, { kernel: KERNEL, stride: STRIDE, batch: BATCH }) });
    const { events } = await readEventsFile(join(dir, "reference", "jobs", `${job.id}.h5`));
    reference.set(job.id, { time: events.time, detection_statistic: events.detection_statistic, shift: events.shift });
  }
  await session.release();
}, 120_000);

afterAll(async () => {
  for (const c of children) c.kill("SIGKILL");
  await server?.close();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("faults on real processes", { timeout: 90_000 }, () => {
  it("kill -9 of a worker mid-job: another worker takes the job over after its lock expires; the plan completes, events as undisturbed", async () => {
    const campaign = "kill-worker";
    await submit(campaign, [`127.0.0.1:${server.port}`]);
    const a = startWorkerProcess("worker-a", campaign);
    const b = startWorkerProcess("worker-b", campaign);
    try {
      // A job of worker-a in its streaming phase (sequences open, reading alongside).
      const started = await a.waitFor((l) => l.msg === "streaming shifts while reading", "a job streaming");
      const victim = started.job!;
      a.kill("SIGKILL");
      const killed = await a.exited;
      expect(killed.signal).toBe("SIGKILL");
      expect(a.lines.some((l) => l.msg === "job done" && l.job === victim), "the victim was not finished before the kill").toBe(false);

      await expectWholePlan(campaign);
      // The victim was redone by worker-b, once.
      const r = (await results(campaign)).get(victim)!;
      expect(r.worker).toBe("worker-b");
      expect(b.lines.filter((l) => l.msg === "job done" && l.job === victim)).toHaveLength(1);
    } finally {
      await terminate(b);
    }
  });

  it("kill -9 of an inference server mid-sequence: sequences fail over with their state rebuilt; the plan completes, events as undisturbed", async () => {
    const campaign = "kill-server";
    const other = await startServerProcess("server-b");
    await submit(campaign, [`127.0.0.1:${server.port}`, other.endpoint]);
    const w = startWorkerProcess("worker-c", campaign);
    try {
      // A job's sequences alternate between the two servers: kill one while a
      // background job (8 shifts, 4 sequences at a time) is well into its streams.
      await w.waitFor((l) => l.msg === "streaming shifts while reading" && Number(l.shifts) >= 8, "a background job streaming");
      await new Promise((r) => setTimeout(r, 150));
      other.proc.kill("SIGKILL");
      expect((await other.proc.exited).signal).toBe("SIGKILL");
      await w.waitFor((l) => l.msg === "sequence failed over", "sequence failed over", 20_000);
      await expectWholePlan(campaign);
      expect(w.lines.filter((l) => l.msg === "job failed")).toEqual([]);
      const moves = w.lines.filter((l) => l.msg === "sequence failed over");
      for (const m of moves) expect([m.from, m.to]).toEqual([other.endpoint, `127.0.0.1:${server.port}`]);
      // Mid-sequence: answered updates were replayed on the other server to rebuild the state.
      expect(moves.some((m) => Number(m.replayed) > 0), JSON.stringify(moves)).toBe(true);
    } finally {
      await terminate(w);
    }
  });

  it("a job that fails for good (NaN inside a good segment) fails with a clear reason, its livetime lost, and the worker carries on", async () => {
    const campaign = "bad-data";
    const plan = await submit(campaign, [`127.0.0.1:${server.port}`], "data-bad");
    // NaN in H1 in the middle of the first background job's output, after submit.
    const victim = plan.jobs.find((j) => j.payload.kind === "background")!;
    const nanAt = Math.floor((victim.payload.span[0] + victim.payload.span[1]) / 2);
    await h5wasm.ready;
    const file = plan.files.H1.find((f) => hasTime(f, nanAt));
    expect(file).toContain("data-bad");
    const h5 = new h5wasm.File(file!, "a");
    try {
      const ds = h5.get("strain/Strain") as InstanceType<typeof h5wasm.Dataset>;
      const x0 = Number(ds.attrs.Xstart.value);
      const i = Math.round((nanAt - x0) * 512);
      ds.write_slice([[i, i + 256]], new Float64Array(256).fill(NaN));
    } finally {
      h5.close();
    }

    const w = await startWorker({ redis, redisUrl: REDIS_URL, prefix, campaigns: [campaign], concurrency: 1, log });
    try {
      const s = await waitDone(campaign);
      const failed = await failures(campaign);
      expect(failed.has(victim.id)).toBe(true);
      const lost = [...failed.values()];
      for (const f of lost) {
        expect(f.reason).toMatch(/H1 has no valid data \(NaN or no file\) at \[\d+(\.\d+)?, \d+(\.\d+)?\) inside the good segment/);
        expect(f.attempts, "a permanent failure is not retried").toBe(1);
        const job = plan.jobs.find((j) => j.id === f.job_id)!;
        expect(f.livetime_lost).toBe(job.payload.livetime);
        expect(job.payload.span[0] - 10 < nanAt && nanAt < job.payload.span[1] + 10).toBe(true);
      }
      expect(s.jobs.failed).toBe(lost.length);
      expect(s.jobs.completed).toBe(plan.jobs.length - lost.length);
      expect(s.livetime.lost_s).toBeCloseTo(
        lost.reduce((a, f) => a + f.livetime_lost, 0),
        6,
      );
      const planned = plan.livetime.background_s + plan.livetime.foreground_s + plan.livetime.injection_s;
      expect(s.livetime.background_s + s.livetime.foreground_s + s.livetime.injection_s + s.livetime.lost_s).toBeCloseTo(planned, 6);
      // The worker went on to the next jobs, which completed as in the reference.
      const done = await results(campaign);
      const firstFailure = Math.min(...lost.map((f) => f.failed_at));
      expect([...done.values()].some((r) => (r.finished_at ?? 0) > firstFailure)).toBe(true);
      await expectReferenceEvents(campaign, [...done.keys()]);
    } finally {
      await w.close();
    }
  });

  it("SIGTERM to a worker with an active job: it finishes the job within the grace period, or hands it back past it, and exits; no job is lost", async () => {
    const campaign = "sigterm";
    await submit(campaign, [`127.0.0.1:${server.port}`]);
    const w = startWorkerProcess("worker-d", campaign, ["--grace", "30"]);
    const started = await w.waitFor((l) => l.msg === "streaming shifts while reading", "a job streaming");
    expect(await terminate(w, 30_000)).toBeLessThan(30_000);
    // The job it had finished before the exit, and nothing else was left half-done.
    const r = (await results(campaign)).get(started.job!);
    expect(r?.worker).toBe("worker-d");
    expect(w.lines.some((l) => l.msg === "job started" && l.job !== started.job && !w.lines.some((m) => m.msg === "job done" && m.job === l.job))).toBe(false);

    // With no grace, a running job is cancelled and handed back at once (no
    // attempt used, no lock to wait for); another worker finishes the campaign.
    const x = startWorkerProcess("worker-e", campaign, ["--grace", "0"]);
    const running = await x.waitFor((l) => l.msg === "job started", "a job started");
    expect(await terminate(x, 10_000)).toBeLessThan(10_000);
    expect(x.lines.some((l) => l.msg === "job handed back" && l.job === running.job), x.tail()).toBe(true);
    expect(x.lines.some((l) => l.msg === "job done" && l.job === running.job)).toBe(false);
    const queue = new Queue(campaign, { connection: redis, prefix });
    try {
      const job = await queue.getJob(running.job!);
      expect(await job!.getState()).toBe("waiting");
      expect(job!.attemptsMade).toBe(0);
    } finally {
      await queue.close();
    }
    const y = startWorkerProcess("worker-f", campaign);
    try {
      await expectWholePlan(campaign);
      expect((await results(campaign)).get(running.job!)?.worker).toBe("worker-f");
    } finally {
      await terminate(y);
    }
  });
});

/** Whether the strain file at `path` covers GPS `t` (its name holds start and duration, open-data style). */
function hasTime(path: string, t: number): boolean {
  const m = /-(\d+)-(\d+)\.hdf5$/.exec(path);
  return m ? Number(m[1]) <= t && t < Number(m[1]) + Number(m[2]) : false;
}
