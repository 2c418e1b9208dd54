// Faults injected into a small real campaign run as separate processes: the
// embedded inference server (`timeslide serve`, real ONNX models), `timeslide
// worker` processes and a real Redis, on HDF5 written by `timeslide synth`.
// Every disturbed campaign must account for its whole plan: each job either
// completed once, its events equal to an undisturbed reference run of the
// same campaign (same data, same model), or failed for good with a reason and
// exactly its planned livetime reported lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createServer, connect, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { readEventsFile } from "@timeslide/stats";
import { recordOutcome } from "./outcomes.js";

const CLI = join(import.meta.dirname, "../apps/cli/dist/main.js");
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsfaults-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-faults-"));
const LOCK_S = 3; // short job locks: a killed worker's job comes back within seconds
const DEADLINE_S = 4; // per-request deadline given to the workers (--deadline)

// ---- processes ------------------------------------------------------------------

interface LogLine {
  msg?: string;
  job?: string;
  [k: string]: unknown;
}

const procs = new Set<Proc>();

/** A `timeslide` child process whose JSON log lines are kept and can be awaited. */
class Proc {
  readonly child: ChildProcess;
  readonly lines: LogLine[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];

  constructor(
    readonly name: string,
    args: string[],
    env: Record<string, string> = {},
  ) {
    this.child = spawn(process.execPath, [CLI, ...args], {
      cwd: dir,
      env: { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "debug", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.add(this);
    this.exited = new Promise((resolve) =>
      this.child.once("exit", (code, signal) => {
        procs.delete(this);
        resolve({ code, signal });
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

  waitFor(pred: (l: LogLine) => boolean, what: string, timeoutMs = 60_000): Promise<LogLine> {
    const seen = this.lines.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name}: no "${what}" within ${timeoutMs} ms; last lines:\n${this.tail()}`)), timeoutMs);
      this.#waiters.push({ pred, resolve: (l) => (clearTimeout(t), resolve(l)) });
      void this.exited.then(() => reject(new Error(`${this.name} exited before "${what}"; last lines:\n${this.tail()}`)));
    });
  }

  count(msg: string): number {
    return this.lines.filter((l) => l.msg === msg).length;
  }

  tail(n = 15): string {
    return this.lines
      .slice(-n)
      .map((l) => JSON.stringify(l))
      .join("\n");
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill("SIGTERM");
    const t = setTimeout(() => this.child.kill("SIGKILL"), 15_000);
    await this.exited;
    clearTimeout(t);
  }
}

/** Runs a `timeslide` command to its end (asynchronously: the cases run concurrently, and the proxies live in this process). */
function cli(args: string[], env: Record<string, string> = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn", ...env } });
    let out = "";
    let err = "";
    c.stdout.on("data", (d) => (out += d));
    c.stderr.on("data", (d) => (err += d));
    c.on("error", reject);
    c.on("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`timeslide ${args.join(" ")} exited ${code}: ${err}`))));
  });
}

async function freePort(): Promise<number> {
  return new Promise((ok) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => ok(p));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startServer(name: string, port?: number): Promise<{ proc: Proc; port: number; endpoint: string }> {
  port ??= await freePort();
  const proc = new Proc(name, ["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1"]);
  await proc.waitFor((l) => l.msg === "inference server listening", "inference server listening", 60_000);
  return { proc, port, endpoint: `127.0.0.1:${port}` };
}

let workerSeq = 0;
function startWorker(campaign: string, env: Record<string, string> = {}): Proc {
  const name = `w${++workerSeq}`;
  return new Proc(name, ["worker", campaign, "--lock", String(LOCK_S), "--sequences", "2", "--deadline", String(DEADLINE_S)], { TIMESLIDE_WORKER_NAME: name, ...env });
}

/** A TCP proxy: `delayMs` on every chunk both ways; `resetEveryMs` destroys every open connection that often. */
async function startProxy(target: number, o: { delayMs?: number; resetEveryMs?: number } = {}) {
  const sockets = new Set<Socket>();
  let resets = 0;
  const server: Server = createServer((client) => {
    const upstream = connect(target, "127.0.0.1");
    sockets.add(client);
    const pipe = (from: Socket, to: Socket) =>
      from.on("data", (d) => {
        // equal delays keep the order: timers of one duration fire first in, first out
        if (o.delayMs) setTimeout(() => to.destroyed || to.write(d), o.delayMs);
        else to.write(d);
      });
    pipe(client, upstream);
    pipe(upstream, client);
    const close = () => {
      sockets.delete(client);
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) s.on("error", close).on("close", close);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const timer = o.resetEveryMs
    ? setInterval(() => {
        for (const s of sockets) {
          resets++;
          s.resetAndDestroy();
        }
      }, o.resetEveryMs)
    : undefined;
  return {
    endpoint: `127.0.0.1:${(server.address() as { port: number }).port}`,
    get resets() {
      return resets;
    },
    close() {
      clearInterval(timer);
      for (const s of sockets) s.destroy();
      server.close();
    },
  };
}

// ---- campaigns ------------------------------------------------------------------

interface Plan {
  jobs: { total: number };
  livetime: { background_s: number; foreground_s: number; injection_s: number };
}

function writeCampaign(name: string, servers: string[], attempts = 3): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(
    file,
    `name: ${name}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: 128, segments: { flags: [DATA], min_duration: 120 } }
model: { name: detector-stream, servers: [${servers.map((s) => `"${s}"`).join(", ")}] }
inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20 }
background: { shifts: 30, step: 2, max_job_duration: 300, job_livetime: 3000 }
injections: { file: data/injections.h5 }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-${name}
queue: { attempts: ${attempts} }
`,
  );
  return file;
}

async function submit(name: string, servers: string[], env: Record<string, string> = {}, attempts = 3): Promise<Plan> {
  writeCampaign(name, servers, attempts);
  const plan = JSON.parse(await cli(["plan", `${name}.yaml`, "--json"], env)) as Plan;
  const s = JSON.parse(await cli(["submit", `${name}.yaml`, "--json"], env));
  expect(s.added).toBe(plan.jobs.total);
  return plan;
}

interface Meta {
  completed: number;
  failed: number;
  total: number;
}
async function meta(redis: Redis, campaign: string): Promise<Meta> {
  const h = await redis.hgetall(`${prefix}:${campaign}:ts:meta`);
  return { completed: Number(h.completed ?? 0), failed: Number(h.failed ?? 0), total: Number(h.total_jobs ?? -1) };
}

async function waitDone(redis: Redis, campaign: string, timeoutMs = 150_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const m = await meta(redis, campaign).catch(() => undefined);
    if (m && m.completed + m.failed >= m.total) return;
    if (Date.now() > until) throw new Error(`campaign ${campaign} not done within ${timeoutMs} ms: ${JSON.stringify(m)}`);
    await sleep(500);
  }
}

/** Waits until `n` jobs of the campaign have results. */
async function waitCompleted(redis: Redis, campaign: string, n: number, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await meta(redis, campaign)).completed < n) {
    if (Date.now() > until) throw new Error(`campaign ${campaign}: fewer than ${n} jobs completed within ${timeoutMs} ms`);
    await sleep(200);
  }
}

interface Summary {
  job_id: string;
  kind: "background" | "foreground" | "injection";
  livetime: number;
  events: number;
  worker?: string;
}
interface Failure {
  job_id: string;
  kind: Summary["kind"];
  reason: string;
  livetime_lost: number;
  attempts: number;
}

const hash = async <T>(redis: Redis, key: string) =>
  new Map(Object.entries(await redis.hgetall(key)).map(([k, v]) => [k, JSON.parse(v) as T]));

type Events = { time: Float64Array; detection_statistic: Float64Array; shift: Float64Array };
/** The undisturbed run: events and livetime per job id (ids depend on the data and spec, not the campaign name). */
const reference = new Map<string, { events: Events; livetime: number; kind: Summary["kind"] }>();
let refPlan: Plan;

interface Accounting {
  completed: number;
  failures: Failure[];
  lost_s: number;
  events: number;
}

/**
 * The checks every disturbed campaign must pass: done; every planned job
 * either completed once with the reference's events or failed with a reason
 * and its whole planned livetime lost; livetime = plan − losses, by kind;
 * status and the report agree.
 */
async function expectAccounted(redis: Redis, campaign: string, env: Record<string, string> = {}): Promise<Accounting> {
  await waitDone(redis, campaign);
  const results = await hash<Summary>(redis, `${prefix}:${campaign}:ts:results`);
  const failures = await hash<Failure>(redis, `${prefix}:${campaign}:ts:failures`);
  expect(results.size + failures.size).toBe(reference.size);
  const lost = { background: 0, foreground: 0, injection: 0 };
  let events = 0;
  for (const [id, ref] of reference) {
    const r = results.get(id);
    const f = failures.get(id);
    expect(Boolean(r) !== Boolean(f), `${campaign}: ${id} is either completed or failed, not both or neither`).toBe(true);
    if (f) {
      expect(f.reason.length, `${campaign}: ${id} failure reason`).toBeGreaterThan(10);
      expect(f.livetime_lost, `${campaign}: ${id} livetime lost`).toBe(ref.livetime);
      lost[f.kind] += f.livetime_lost;
      continue;
    }
    expect(r!.livetime, `${campaign}: ${id} livetime`).toBe(ref.livetime);
    const got = (await readEventsFile(join(dir, `out-${campaign}`, "jobs", `${id}.h5`))).events;
    expect(got.time, `${campaign}: ${id} time`).toEqual(ref.events.time);
    expect(got.detection_statistic, `${campaign}: ${id} detection_statistic`).toEqual(ref.events.detection_statistic);
    expect(got.shift, `${campaign}: ${id} shift`).toEqual(ref.events.shift);
    expect(r!.events, `${campaign}: ${id} summary event count`).toBe(ref.events.time.length);
    events += got.time.length;
  }
  const s = JSON.parse(await cli(["status", campaign, "--json"], env));
  expect(s.done).toBe(true);
  expect(s.jobs.completed).toBe(results.size);
  expect(s.jobs.failed).toBe(failures.size);
  const close = (a: number, b: number) => expect(Math.abs(a - b)).toBeLessThan(1e-6);
  close(s.livetime.background_s, refPlan.livetime.background_s - lost.background);
  close(s.livetime.foreground_s, refPlan.livetime.foreground_s - lost.foreground);
  close(s.livetime.injection_s, refPlan.livetime.injection_s - lost.injection);
  close(s.livetime.lost_s, lost.background + lost.foreground + lost.injection);
  // The report written when the last job was accounted for says the same.
  const html = join(dir, `out-${campaign}`, "report.html");
  for (let i = 0; i < 240 && !existsSync(html); i++) await sleep(250);
  const report = JSON.parse(readFileSync(join(dir, `out-${campaign}`, "report.json"), "utf8"));
  close(report.livetime.background_s, s.livetime.background_s);
  expect(report.jobs).toMatchObject({ total: reference.size, completed: results.size, failed: failures.size });
  expect([...report.jobs.failed_ids].sort()).toEqual([...failures.keys()].sort());
  return { completed: results.size, failures: [...failures.values()], lost_s: s.livetime.lost_s, events };
}

function outcomeOf(a: Accounting, evidence: string) {
  const failed = a.failures.map((f) => `${f.job_id} (${f.livetime_lost} s, ${f.attempts} attempts: ${f.reason.slice(0, 240)})`).join("; ");
  return {
    outcome: (a.failures.length ? "lost livetime" : "recovered") as "lost livetime" | "recovered",
    detail: (
      `${evidence}; ${a.completed}/${reference.size} jobs completed with events identical to the undisturbed run (${a.events} events), ` +
      (a.failures.length ? `${a.failures.length} failed, ${a.lost_s} s livetime reported lost: ${failed}` : "no livetime lost")
    ).split(dir).join("<dir>"),
  };
}

let redis: Redis;
let main: { proc: Proc; port: number; endpoint: string };

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  await cli(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "20m", "--sample-rate", "256", "--file-duration", "600", "--gaps", "1", "--injections", "6", "--snr", "15:40", "--seed", "11"]);
  // The cases below run at once on one server: about a dozen workers of 2
  // sequences each, plus the sequences of SIGKILLed workers, whose slots the
  // server keeps for the snapshotter's idle limit (60 s). As on Triton, one
  // snapshotter instance is one sequence slot: give this fleet 32.
  await cli(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32", "--streams", "32"]);
  main = await startServer("server-main");

  // The undisturbed reference run, shared by every case.
  refPlan = await submit("reference", [main.endpoint]);
  const w = [startWorker("reference"), startWorker("reference")];
  await waitDone(redis, "reference", 120_000);
  await Promise.all(w.map((p) => p.stop()));
  const results = await hash<Summary>(redis, `${prefix}:reference:ts:results`);
  expect((await meta(redis, "reference")).failed).toBe(0);
  expect(results.size).toBe(refPlan.jobs.total);
  for (const [id, r] of results) {
    const { events } = await readEventsFile(join(dir, "out-reference", "jobs", `${id}.h5`));
    reference.set(id, { events: { time: events.time, detection_statistic: events.detection_statistic, shift: events.shift }, livetime: r.livetime, kind: r.kind });
  }
  expect([...reference.values()].reduce((a, r) => a + r.events.time.length, 0)).toBeGreaterThan(0);
}, 180_000);

afterAll(async () => {
  for (const p of [...procs]) p.kill("SIGKILL");
  if (redis) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  if (!process.env.FAULTS_KEEP) rmSync(dir, { recursive: true, force: true });
});

describe.concurrent("faults injected into a real campaign", { timeout: 240_000 }, () => {
  it("SIGKILL of workers mid-job, three times, a new worker after each", async () => {
    const c = "kill-workers";
    await submit(c, [main.endpoint]);
    const victims: string[] = [];
    let w = startWorker(c);
    const all = [w];
    for (let k = 0; k < 3; k++) {
      // A job not killed before: each kill hits another job (a job whose
      // workers die more than maxStalledCount times fails for good).
      const streaming = await w.waitFor((l) => l.msg === "streaming shifts while reading" && Number(l.shifts) >= 8 && !victims.includes(l.job!), "a background job streaming");
      await sleep(100);
      w.kill("SIGKILL");
      expect((await w.exited).signal).toBe("SIGKILL");
      expect(w.lines.some((l) => l.msg === "job done" && l.job === streaming.job)).toBe(false);
      victims.push(streaming.job!);
      w = startWorker(c);
      all.push(w);
    }
    const a = await expectAccounted(redis, c);
    await w.stop();
    expect(a.failures).toEqual([]);
    // Each victim was redone by a later worker, exactly once.
    const results = await hash<Summary>(redis, `${prefix}:${c}:ts:results`);
    for (const v of victims) expect(all.flatMap((p) => p.lines).filter((l) => l.msg === "job done" && l.job === v).length, v).toBe(1);
    const o = outcomeOf(a, `3 workers killed with SIGKILL mid-job (jobs ${victims.join(", ")}), each job taken over after its ${LOCK_S} s lock expired (redone by ${victims.map((v) => results.get(v)?.worker).join(", ")})`);
    recordOutcome({ area: "fault", case: "SIGKILL of workers mid-job, 3 times", ...o });
  });

  it("SIGKILL of the worker of the same job three times: the job fails for good (stalled too often), its livetime reported lost exactly", async () => {
    const c = "kill-same-job";
    await submit(c, [main.endpoint]);
    let w = startWorker(c);
    const first = await w.waitFor((l) => l.msg === "streaming shifts while reading" && Number(l.shifts) >= 8, "a background job streaming");
    const victim = first.job!;
    const all = [w];
    for (let k = 0; k < 3; k++) {
      // The victim comes back to the queue once its lock expires and the new worker's stall check sees it.
      if (k > 0) await w.waitFor((l) => l.msg === "streaming shifts while reading" && l.job === victim, `the victim streaming again (${k + 1})`, 90_000);
      await sleep(100);
      w.kill("SIGKILL");
      await w.exited;
      expect(w.lines.some((l) => l.msg === "job done" && l.job === victim)).toBe(false);
      w = startWorker(c);
      all.push(w);
    }
    const a = await expectAccounted(redis, c);
    await w.stop();
    expect(a.failures.map((f) => [f.job_id, f.reason])).toEqual([[victim, "job stalled more than allowable limit"]]);
    const o = outcomeOf(a, `the worker running ${victim} SIGKILLed 3 times mid-job (maxStalledCount 2), the job failed for good on its next pick`);
    recordOutcome({ area: "fault", case: "SIGKILL of the worker of the same job, 3 times", ...o });
  });

  it("SIGKILL of the only inference server mid-sequence, restarted on the same port after 6 s", async () => {
    const c = "kill-server";
    const srv = await startServer("server-k");
    await submit(c, [srv.endpoint]);
    const w = startWorker(c);
    await w.waitFor((l) => l.msg === "streaming shifts while reading" && Number(l.shifts) >= 8, "a background job streaming");
    await sleep(150);
    srv.proc.kill("SIGKILL");
    await srv.proc.exited;
    const killedAt = Date.now();
    await sleep(6000);
    const again = await startServer("server-k2", srv.port);
    const a = await expectAccounted(redis, c);
    await w.stop();
    await again.proc.stop();
    // The worker waited for the server instead of burning the jobs' attempts.
    const failedAttempts = w.lines.filter((l) => l.msg === "job failed");
    const waited = w.count("waiting for an inference server");
    expect(waited).toBeGreaterThan(0);
    expect(failedAttempts.map((l) => l.err)).toEqual([]);
    expect(a.failures).toEqual([]);
    const o = outcomeOf(
      a,
      `the only server SIGKILLed mid-sequence, restarted on the same port 6 s later; campaign done ${((Date.now() - killedAt) / 1000).toFixed(0)} s after the kill; ` +
        `the worker logged "waiting for an inference server" ${waited} times and no failed attempt`,
    );
    recordOutcome({ area: "fault", case: "SIGKILL of the only inference server, restart on the same port after 6 s", ...o });
  });

  it("Redis (AOF, appendfsync always) killed with SIGKILL mid-campaign and restarted on the same port and dir", async () => {
    const c = "redis-restart";
    const rdir = mkdtempSync(join(tmpdir(), "timeslide-faults-redis-"));
    const rport = await freePort();
    const url = `redis://127.0.0.1:${rport}`;
    const startRedis = async () => {
      const p = spawn("redis-server", ["--bind", "127.0.0.1", "--port", String(rport), "--appendonly", "yes", "--appendfsync", "always", "--dir", rdir, "--save", ""], { stdio: "ignore" });
      const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => 100, maxRetriesPerRequest: null });
      probe.on("error", () => {});
      for (let i = 0; i < 100; i++) {
        try {
          if (probe.status !== "ready") await probe.connect().catch(() => {});
          if ((await probe.ping()) === "PONG") break;
        } catch {
          await sleep(100);
        }
      }
      probe.disconnect();
      return p;
    };
    let rs = await startRedis();
    const env = { REDIS_URL: url };
    const r2 = new Redis(url, { maxRetriesPerRequest: null, retryStrategy: () => 200 });
    r2.on("error", () => {});
    try {
      await submit(c, [main.endpoint], env);
      const w = [startWorker(c, env), startWorker(c, env)];
      await waitCompleted(r2, c, 3);
      await w[0].waitFor((l) => l.msg === "streaming shifts while reading" && !w[0].lines.some((m) => m.msg === "job done" && m.job === l.job), "a job streaming");
      rs.kill("SIGKILL");
      await new Promise((r) => rs.once("exit", r));
      await sleep(2000);
      rs = await startRedis();
      const a = await expectAccounted(r2, c, env);
      await Promise.all(w.map((p) => p.stop()));
      const lines = w.flatMap((p) => p.lines);
      // The processor threads waited for Redis rather than failing attempts of finished jobs.
      expect(lines.filter((l) => /max retries per request/i.test(String(l.err ?? ""))).map((l) => l.err)).toEqual([]);
      expect(a.failures).toEqual([]);
      const errs = lines.filter((l) => /redis|connection|ECONNREFUSED|Connection is closed/i.test(`${l.msg} ${l.err ?? ""}`)).length;
      const failed = lines.filter((l) => l.msg === "job failed").length;
      const o = outcomeOf(a, `Redis SIGKILLed after ${a.completed ? "3+" : 0} results and restarted 2 s later from its AOF; workers logged ${errs} Redis errors and ${failed} failed attempts, then recovered; each result counted once`);
      recordOutcome({ area: "fault", case: "Redis SIGKILL and restart with AOF", ...o });
    } finally {
      r2.disconnect();
      rs.kill("SIGKILL");
      rmSync(rdir, { recursive: true, force: true });
    }
  });

  it("a server that stops answering with its connection open (SIGSTOP), a second server to fail over to", async () => {
    const c = "sigstop";
    const a1 = await startServer("server-s1");
    const a2 = await startServer("server-s2");
    await submit(c, [a1.endpoint, a2.endpoint]);
    const w = startWorker(c);
    await w.waitFor((l) => l.msg === "streaming shifts while reading" && Number(l.shifts) >= 8, "a background job streaming");
    await sleep(150);
    a1.proc.kill("SIGSTOP");
    const stoppedAt = Date.now();
    const acc = await expectAccounted(redis, c);
    const took = (Date.now() - stoppedAt) / 1000;
    a1.proc.kill("SIGCONT");
    await w.stop();
    await Promise.all([a1.proc.stop(), a2.proc.stop()]);
    const deadlines = w.lines.filter((l) => /DEADLINE_EXCEEDED/.test(String(l.error ?? l.err ?? l.reason ?? ""))).length;
    const moved = w.lines.filter((l) => l.msg === "sequence failed over").length;
    const unhealthy = w.lines.filter((l) => l.msg === "inference server unhealthy" && l.endpoint === a1.endpoint).length;
    expect(deadlines + moved + unhealthy, "the stopped server was noticed").toBeGreaterThan(0);
    const o = outcomeOf(acc, `server SIGSTOPped mid-sequence (connection left open); ${deadlines} requests hit the ${DEADLINE_S} s deadline, ${moved} sequences failed over to the second server, health checks marked it unhealthy ${unhealthy} times; campaign done ${took.toFixed(0)} s after the stop`);
    recordOutcome({ area: "fault", case: "server stops answering (SIGSTOP), connection open", ...o });
  });

  it("a slow server: a proxy delays every chunk by 30 ms", async () => {
    const c = "slow-server";
    const proxy = await startProxy(main.port, { delayMs: 30 });
    await submit(c, [proxy.endpoint]);
    const w = startWorker(c);
    try {
      const a = await expectAccounted(redis, c);
      await w.stop();
      const failed = w.count("job failed");
      recordOutcome({ area: "fault", case: "slow server (30 ms per chunk)", ...outcomeOf(a, `every TCP chunk delayed 30 ms both ways; ${failed} failed attempts`) });
    } finally {
      proxy.close();
    }
  });

  it("connection resets on the gRPC stream: a proxy resets every connection every 1.5 s", async () => {
    const c = "resets";
    const proxy = await startProxy(main.port, { resetEveryMs: 1500 });
    await submit(c, [proxy.endpoint]);
    const w = startWorker(c);
    try {
      const a = await expectAccounted(redis, c);
      await w.stop();
      expect(proxy.resets).toBeGreaterThan(0);
      const moved = w.count("sequence failed over");
      const failed = w.count("job failed");
      recordOutcome({
        area: "fault",
        case: "connection resets on the gRPC stream (every 1.5 s)",
        ...outcomeOf(a, `${proxy.resets} connections reset; ${moved} sequences restarted with their state replayed, ${failed} failed attempts retried`),
      });
    } finally {
      proxy.close();
    }
  });

  it("the output directory becomes unwritable (<output>/jobs replaced by a file), then is restored", async () => {
    const c = "unwritable";
    await submit(c, [main.endpoint]);
    const w = startWorker(c);
    const jobs = join(dir, `out-${c}`, "jobs");
    await waitCompleted(redis, c, 2);
    renameSync(jobs, `${jobs}.away`);
    writeFileSync(jobs, "not a directory\n");
    await w.waitFor((l) => l.msg === "job failed", "a job failing to write", 60_000);
    await sleep(2000);
    rmSync(jobs);
    renameSync(`${jobs}.away`, jobs);
    mkdirSync(jobs, { recursive: true });
    const a = await expectAccounted(redis, c);
    await w.stop();
    const failedAttempts = w.lines.filter((l) => l.msg === "job failed");
    expect(failedAttempts.length).toBeGreaterThan(0);
    for (const l of failedAttempts) expect(String(l.err)).toMatch(/cannot write its result .*jobs.*: the output directory is not a writable directory \((EEXIST|ENOTDIR)/); // mkdir over the file, or a write under it
    const reasons = [...new Set(failedAttempts.map((l) => String(l.err).slice(0, 200)))].slice(0, 2);
    recordOutcome({
      area: "fault",
      case: "output directory unwritable, then restored",
      ...outcomeOf(a, `${failedAttempts.length} write attempts failed (${reasons.join(" | ")}) and were retried with backoff`),
    });
  });

  it("the output directory unwritable with queue.attempts 1: the jobs that could not write fail for good, their livetime reported lost exactly", async () => {
    const c = "unwritable-lost";
    await submit(c, [main.endpoint], {}, 1);
    const w = startWorker(c);
    const jobs = join(dir, `out-${c}`, "jobs");
    await waitCompleted(redis, c, 2);
    renameSync(jobs, `${jobs}.away`);
    writeFileSync(jobs, "not a directory\n");
    await w.waitFor((l) => l.msg === "job failed", "a job failing to write", 60_000);
    rmSync(jobs);
    renameSync(`${jobs}.away`, jobs);
    const a = await expectAccounted(redis, c);
    await w.stop();
    expect(a.failures.length).toBeGreaterThan(0);
    for (const f of a.failures) {
      expect(f.reason).toMatch(new RegExp(`^job ${f.job_id}: cannot write its result .*: the output directory is not a writable directory`));
      expect(f.attempts).toBe(1);
    }
    // The worker carried on: jobs after the failures completed.
    expect(a.completed).toBeGreaterThan(2);
    const o = outcomeOf(a, "<output>/jobs replaced by a regular file, restored after the first failure; one attempt per job");
    recordOutcome({ area: "fault", case: "output directory unwritable, one attempt per job", ...o });
  });
});
