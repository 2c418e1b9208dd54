// A campaign run by a real Slurm: a private single-node Slurm (its own munge
// key and socket, slurm.conf, state/spool/log directories and ports, brought
// up by scripts/slurm-up.sh and stopped by scripts/slurm-down.sh) runs the
// embedded inference server and a job array of workers from deploy/slurm
// (the same batch scripts a site submits, parametrised by the environment).
// One worker's time limit is cut to 2 minutes: Slurm sends worker.sbatch's
// --signal=B:TERM@120, the worker hands back and the task requeues itself.
// Mid-job, one worker is stopped gracefully (`scancel --batch --signal=TERM`:
// only the batch shell, as --signal=B: does), one is requeued by `scontrol
// requeue`, one is cancelled by `scancel`. The campaign must still come out exact: livetime =
// plan, each job's result recorded once, the report written. Then every job
// is cancelled and every daemon stopped.
//
// Needs root and Debian's slurm-wlm and munge (`npm test` installs them as
// root); where Slurm can't be installed or started the test is skipped with
// the reason in its name.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { recordOutcome } from "./outcomes.js";

const ROOT = resolve(import.meta.dirname, "..");
const CLI = join(ROOT, "apps/cli/dist/main.js");
const DEPLOY = join(ROOT, "deploy/slurm");
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsslurm-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-slurm-"));
const sdir = join(dir, "slurm");
const CAMPAIGN = "slurm";
const timings: Record<string, number> = {};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const has = (bin: string) => spawnSync("sh", ["-c", `command -v ${bin}`], { stdio: "ignore" }).status === 0;

/** Brings Slurm up; the reason it can't, or undefined. */
function slurmUp(): string | undefined {
  if (process.platform !== "linux") return `Slurm test needs Linux (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return "not root: a private slurmd runs jobs as their owners and needs root";
  const missing = ["munged", "mungekey", "slurmctld", "slurmd", "sbatch"].filter((b) => !has(b));
  if (missing.length) return `Slurm is not installed (no ${missing.join(", ")}): apt-get install -y slurm-wlm munge (npm test does it as root)`;
  const t0 = Date.now();
  const r = spawnSync("bash", [join(ROOT, "scripts/slurm-up.sh"), sdir], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) return `Slurm did not start: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim().split("\n").slice(-3).join(" ")}`;
  timings.startup_s = (Date.now() - t0) / 1000;
  return undefined;
}

let down = false;
function slurmDown(): void {
  if (down || !existsSync(sdir)) return;
  down = true;
  const t0 = Date.now();
  spawnSync("bash", [join(ROOT, "scripts/slurm-down.sh"), sdir], { stdio: "inherit", timeout: 120_000 });
  timings.daemons_down_s = (Date.now() - t0) / 1000;
}

const reason = slurmUp();
if (reason) console.warn(`test/slurm.test.ts skipped: ${reason}`);
// A run cut short still stops the daemons it started.
process.once("exit", slurmDown);

const SLURM_CONF = join(sdir, "etc/slurm.conf");
/** Environment of the Slurm commands, and (sbatch --export=ALL) of the batch jobs. */
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  SLURM_CONF,
  REDIS_URL,
  TIMESLIDE_PREFIX: prefix,
  TIMESLIDE_HOME: ROOT,
  TIMESLIDE_BIN: `${process.execPath} ${CLI}`,
  LOG_LEVEL: "info",
};

function sh(cmd: string, args: string[], extra: Record<string, string> = {}): string {
  const r = spawnSync(cmd, args, { encoding: "utf8", env: { ...env, ...extra }, cwd: dir, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
const cli = (args: string[]) => sh(process.execPath, [CLI, ...args], { LOG_LEVEL: "warn" });

/** `scontrol show job -o` fields of a job (array task "A_i" or id). */
function jobInfo(id: string): Record<string, string> {
  const out = sh("scontrol", ["show", "job", "-o", id]);
  const f: Record<string, string> = {};
  for (const kv of out.trim().split(/\s+/)) {
    const i = kv.indexOf("=");
    if (i > 0) f[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return f;
}

interface Line {
  msg?: string;
  job?: string;
  signal?: string;
  [k: string]: unknown;
}
/** The JSON lines a worker task wrote: the worker's on stdout, its processor thread's (jobs) and the wrapper's on stderr. */
function workerLines(array: string, task: number): Line[] {
  return [".out", ".err"]
    .map((ext) => join(dir, "logs", `worker.${array}_${task}${ext}`))
    .filter((f) => existsSync(f))
    .flatMap((f) => readFileSync(f, "utf8").split("\n"))
    .filter((l) => l.startsWith("{"))
    .map((l) => {
      try {
        return JSON.parse(l) as Line;
      } catch {
        return {};
      }
    })
    .sort((a, b) => Number(a.time ?? 0) - Number(b.time ?? 0)); // the two files interleaved in time
}
const wrapperLog = (name: string) => (existsSync(join(dir, "logs", name)) ? readFileSync(join(dir, "logs", name), "utf8") : "");

/** A job the task is running now (started, not done, handed back or failed). */
function runningJob(array: string, task: number): string | undefined {
  const last = new Map<string, string>();
  let stopping = false;
  for (const l of workerLines(array, task)) {
    if (l.msg === "shutting down") stopping = true;
    if (l.msg === "worker started") stopping = false;
    if (l.job && ["job started", "job done", "job handed back", "job failed"].includes(l.msg ?? "")) last.set(l.job, l.msg!);
  }
  if (stopping) return undefined;
  return [...last].find(([, m]) => m === "job started")?.[0];
}

interface Plan {
  jobs: { total: number };
  livetime: { background_s: number; foreground_s: number; injection_s: number };
}
let plan: Plan;
let redis: Redis;
let serverJob = "";
let workerArray = "";

beforeAll(async () => {
  if (reason) return;
  redis = new Redis(REDIS_URL);
  mkdirSync(join(dir, "logs"));
  cli(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "20m", "--sample-rate", "256", "--file-duration", "600", "--gaps", "1", "--injections", "6", "--snr", "15:40", "--seed", "17"]);
  cli(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"]);
  writeFileSync(
    join(dir, `${CAMPAIGN}.yaml`),
    `name: ${CAMPAIGN}
ifos: [H1, L1]
data: { files: ["${dir}/data/*.hdf5"], sample_rate: 128, segments: { flags: [DATA], min_duration: 120 } }
model: { name: detector-stream, servers: registry }
inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20 }
background: { shifts: 40, step: 2, max_job_duration: 300, job_livetime: 3000 }
injections: { file: ${dir}/data/injections.h5 }
postprocess: { integration_window: 1, cluster_window: 4 }
output: ${dir}/results
`,
  );
}, 180_000);

afterAll(async () => {
  slurmDown();
  if (redis) {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  }
  if (!process.env.SLURM_TEST_KEEP) rmSync(dir, { recursive: true, force: true });
}, 180_000);

describe("Slurm: deploy/slurm on a real single-node Slurm", () => {
  it.skipIf(Boolean(reason))(
    `runs the server and a worker array as Slurm jobs; a worker at its time limit, workers stopped, requeued and cancelled mid-job; livetime = plan, each job once${reason ? ` (skipped: ${reason})` : ""}`,
    { timeout: 300_000 },
    async () => {
      const t0 = Date.now();
      // The embedded server as a Slurm job, registering itself in Redis.
      serverJob = sh("sbatch", ["--parsable", "--cpus-per-task=1", "--mem=1G", "--time=20", `--output=${dir}/logs/serve.%j.out`, `--error=${dir}/logs/serve.%j.err`, join(DEPLOY, "serve.sbatch"), join(dir, "models")], {
        TIMESLIDE_ADVERTISE_HOST: "127.0.0.1",
      }).trim();
      const registry = `${prefix}:servers`;
      for (let i = 0; (await redis.zcard(registry)) === 0; i++) {
        if (i > 600) throw new Error(`the server job ${serverJob} did not register within 60 s:\n${wrapperLog(`serve.${serverJob}.err`)}\n${wrapperLog(`serve.${serverJob}.out`).slice(-2000)}`);
        await sleep(100);
      }
      timings.server_registered_s = (Date.now() - t0) / 1000;

      plan = JSON.parse(cli(["plan", `${CAMPAIGN}.yaml`, "--json"])) as Plan;
      const submitted = JSON.parse(cli(["submit", `${CAMPAIGN}.yaml`, "--json"]));
      expect(submitted.added).toBe(plan.jobs.total);

      // Four workers as one array, 30 min limit, worker.sbatch's own --signal=B:TERM@120.
      const tw = Date.now();
      workerArray = sh(
        "sbatch",
        ["--parsable", "--array=1-4", "--cpus-per-task=1", "--mem=1G", "--time=30", `--output=${dir}/logs/worker.%A_%a.out`, `--error=${dir}/logs/worker.%A_%a.err`, join(DEPLOY, "worker.sbatch"), "--lock", "5", "--sequences", "2", CAMPAIGN],
        { TIMESLIDE_GRACE: "0" },
      ).trim();
      const state = (id: string) => sh("squeue", ["-h", "-j", id, "-o", "%T"]).trim();

      // Task 4 reaches its time limit: cut to 2 min, Slurm's --signal=B:TERM@120
      // is due at once and sent at slurmctld's next time-limit check (every
      // 30 s); the worker hands back and the task requeues itself.
      const limited = `${workerArray}_4`;
      for (let i = 0; state(limited) !== "RUNNING"; i++) {
        if (i > 300) throw new Error(`task ${limited} not running within 30 s: ${state(limited)}`);
        await sleep(100);
      }
      sh("scontrol", ["update", `JobId=${limited}`, "TimeLimit=2"]);
      const limitCutAt = Date.now();
      // Once it has requeued itself, its limit is put back while it waits to
      // run again (~cred_expire s), else it would be signalled again at once.
      const limitedLog = () => wrapperLog(`worker.${limited}.err`);
      const limitedRequeued = (async () => {
        for (let i = 0; !/requeueing job/.test(limitedLog()); i++) {
          if (i > 1200) throw new Error(`task ${limited} not signalled and requeued within 120 s of its time limit cut:\n${limitedLog()}`);
          await sleep(100);
        }
        sh("scontrol", ["update", `JobId=${limited}`, "TimeLimit=30"]);
      })();
      limitedRequeued.catch(() => {}); // awaited below

      // Three disturbances on tasks 1-3, each caught mid-job, each task once.
      const actions = [
        { what: "graceful stop (scancel --batch --signal=TERM: only the batch shell, as --signal=B:TERM does)", run: (id: string) => sh("scancel", ["--batch", "--signal=TERM", id]) },
        { what: "scontrol requeue", run: (id: string) => sh("scontrol", ["requeue", id]) },
        { what: "scancel", run: (id: string) => sh("scancel", [id]) },
      ];
      const victims: Array<{ task: number; job: string; what: string }> = [];
      for (const a of actions) {
        const until = Date.now() + 90_000;
        let hit: { task: number; job: string } | undefined;
        while (!hit) {
          for (let task = 1; task <= 3 && !hit; task++) {
            if (victims.some((v) => v.task === task)) continue;
            const job = runningJob(workerArray, task);
            if (job) hit = { task, job };
          }
          if (!hit) {
            if (Date.now() > until) throw new Error(`no worker task caught mid-job for "${a.what}" within 90 s`);
            await sleep(50);
          }
        }
        a.run(`${workerArray}_${hit.task}`);
        victims.push({ ...hit, what: a.what });
      }

      // The campaign completes on the workers left and the requeued ones.
      const meta = async () => {
        const h = await redis.hgetall(`${prefix}:${CAMPAIGN}:ts:meta`);
        return { completed: Number(h.completed ?? 0), failed: Number(h.failed ?? 0), total: Number(h.total_jobs ?? -1) };
      };
      for (let m = await meta(); m.completed + m.failed < m.total; m = await meta()) {
        if (Date.now() - tw > 240_000) throw new Error(`campaign not done within 240 s: ${JSON.stringify(m)}; squeue: ${sh("squeue", ["-h"])}`);
        await sleep(250);
      }
      timings.campaign_s = (Date.now() - tw) / 1000;

      // The time-limited task: signalled by Slurm, requeued by itself.
      await limitedRequeued;
      const signalledAt = workerLines(workerArray, 4).find((l) => l.msg === "shutting down")?.time;
      timings.time_limit_signal_s = (Number(signalledAt) - limitCutAt) / 1000;

      // Livetime = plan; nothing failed.
      const status = JSON.parse(cli(["status", CAMPAIGN, "--json"]));
      expect(status.done).toBe(true);
      expect(status.jobs.failed).toBe(0);
      expect(status.jobs.completed).toBe(plan.jobs.total);
      expect(status.livetime.background_s).toBe(plan.livetime.background_s);
      expect(status.livetime.foreground_s).toBe(plan.livetime.foreground_s);
      expect(status.livetime.injection_s).toBe(plan.livetime.injection_s);
      expect(status.livetime.lost_s).toBe(0);

      // Each job's result recorded once: one summary, one file, one "job done" across every worker run.
      const results = await redis.hgetall(`${prefix}:${CAMPAIGN}:ts:results`);
      expect(Object.keys(results).length).toBe(plan.jobs.total);
      expect((await meta()).completed).toBe(plan.jobs.total);
      const files = readdirSync(join(dir, "results", "jobs")).filter((f) => f.endsWith(".h5"));
      expect(files.map((f) => f.replace(/\.h5$/, "")).sort()).toEqual(Object.keys(results).sort());
      const all = [1, 2, 3, 4].flatMap((t) => workerLines(workerArray, t));
      expect(workerLines(workerArray, 4).some((l) => l.msg === "shutting down" && l.signal === "SIGTERM"), "task 4 got SIGTERM before its time limit").toBe(true);
      const done = new Map<string, number>();
      for (const l of all) if (l.msg === "job done" && l.job) done.set(l.job, (done.get(l.job) ?? 0) + 1);
      expect([...done].filter(([, n]) => n !== 1), "jobs done more than once").toEqual([]);
      expect([...done.keys()].sort()).toEqual(Object.keys(results).sort());

      // The victims: stopped mid-job, handed back (or finished within the grace), done once.
      const handedBack: string[] = [];
      for (const v of victims) {
        const lines = workerLines(workerArray, v.task);
        expect(lines.some((l) => l.msg === "shutting down" && l.signal === "SIGTERM"), `task ${v.task} (${v.what}) got SIGTERM`).toBe(true);
        if (lines.some((l) => l.msg === "job handed back" && l.job === v.job)) handedBack.push(v.job);
        expect(done.get(v.job), `victim ${v.job}`).toBe(1);
      }
      expect(handedBack.length, "a victim job was handed back mid-job").toBeGreaterThan(0);

      // Slurm's side: the time-limited task requeued itself once, the stopped
      // one ended (no requeue: its limit was far), the requeued one came back
      // once, the cancelled one stayed gone.
      const [stopped, requeued, cancelled] = victims.map((v) => jobInfo(`${workerArray}_${v.task}`));
      expect(Number(jobInfo(limited).Restarts), "time-limited task restarts").toBe(1);
      expect(Number(stopped.Restarts), "stopped task restarts").toBe(0);
      expect(stopped.JobState, "stopped task").toBe("COMPLETED");
      expect(wrapperLog(`worker.${workerArray}_${victims[0].task}.err`)).not.toMatch(/requeueing job/);
      expect(Number(requeued.Restarts), "requeued task restarts").toBe(1);
      expect(Number(cancelled.Restarts), "cancelled task restarts").toBe(0);
      expect(cancelled.JobState).toBe("CANCELLED");
      // Every worker run ended cleanly: a repeated SIGTERM (Slurm signals every
      // process of the job, the wrapper passes one on) did not kill a worker mid-hand-back.
      for (const t of [1, 2, 3, 4]) expect(wrapperLog(`worker.${workerArray}_${t}.err`), `task ${t} exit statuses`).not.toMatch(/timeslide-worker: exit [1-9]/);
      // The requeued tasks come back as workers (restart 1 in their names; the
      // campaign may have finished before: Slurm holds a requeued job ~cred_expire s).
      for (const task of [victims[1].task, 4]) {
        const log = () => wrapperLog(`worker.${workerArray}_${task}.err`);
        for (let i = 0; i < 600 && !/slurm-\d+_\d+\.r1 /.test(log()); i++) await sleep(100);
        expect(log(), `task ${task} came back`).toMatch(/slurm-\d+_\d+\.r1 /);
      }

      // The report.
      const html = join(dir, "results", "report.html");
      for (let i = 0; i < 240 && !existsSync(html); i++) await sleep(250);
      const report = JSON.parse(readFileSync(join(dir, "results", "report.json"), "utf8"));
      expect(report.livetime.background_s).toBe(plan.livetime.background_s);
      expect(report.jobs).toMatchObject({ total: plan.jobs.total, completed: plan.jobs.total, failed: 0 });
      expect(existsSync(html)).toBe(true);

      // Shutdown: cancel every job (CANCELLED: the workers do not requeue themselves), wait for an empty queue.
      const ts = Date.now();
      sh("scancel", [workerArray, serverJob]);
      for (let i = 0; sh("squeue", ["-h", "-o", "%i"]).trim() !== ""; i++) {
        if (i > 600) throw new Error(`jobs left after scancel: ${sh("squeue", ["-h"])}`);
        await sleep(100);
      }
      timings.jobs_cancelled_s = (Date.now() - ts) / 1000;
      expect(await redis.zcard(registry), "the server left the registry").toBe(0);
      const pids = ["slurmctld.pid", "munged.pid", ...readdirSync(join(sdir, "run")).filter((f) => f.startsWith("slurmd-"))].map((f) => Number(readFileSync(join(sdir, "run", f), "utf8")));
      slurmDown();
      for (const pid of pids) expect(() => process.kill(pid, 0), `daemon ${pid} stopped`).toThrow();

      const summary = `${plan.jobs.total} jobs on a worker array of 4 tasks and a server job; mid-job: ${victims.map((v) => `task ${v.task} ${v.what} (job ${v.job})`).join("; ")}; handed back: ${handedBack.join(", ")}; task 4's time limit cut to 2 min: Slurm's --signal=B:TERM@120 came ${timings.time_limit_signal_s.toFixed(0)} s later, the worker stopped and the task requeued itself`;
      const figures = Object.entries(timings)
        .map(([k, v]) => `${k} ${v.toFixed(1)}`)
        .join(", ");
      console.log(`slurm test: ${summary}; timings (s): ${figures}`);
      recordOutcome({
        area: "fault",
        case: "Slurm: worker at its time limit; workers stopped, requeued and cancelled mid-job",
        outcome: "recovered",
        detail: `${summary}; the time-limited and the requeued task came back once each (Restarts 1), the stopped one ended COMPLETED, the cancelled one CANCELLED; ${plan.jobs.total}/${plan.jobs.total} jobs completed, each recorded once (one summary, one file, one "job done"), background ${plan.livetime.background_s} s = plan, no livetime lost; report written. Timings (s): ${figures}`,
      });
    },
  );

  it("worker.sbatch outside Slurm: a worker that exits non-zero is restarted TIMESLIDE_MAX_RESTARTS times, then the job fails with its status", () => {
    const fake = join(dir, "fake-timeslide.sh");
    writeFileSync(fake, `#!/bin/sh\necho "$*" >> ${join(dir, "fake-runs.txt")}\nexit 3\n`, { mode: 0o755 });
    const r = spawnSync("bash", [join(DEPLOY, "worker.sbatch"), "o3a"], {
      encoding: "utf8",
      env: { ...env, TIMESLIDE_BIN: fake, TIMESLIDE_MAX_RESTARTS: "2", TIMESLIDE_RESTART_DELAY_S: "0", TIMESLIDE_CONCURRENCY: "3" },
    });
    expect(r.status, r.stderr).toBe(3);
    const runs = readFileSync(join(dir, "fake-runs.txt"), "utf8").trim().split("\n");
    expect(runs).toEqual(Array(3).fill("worker --servers registry --concurrency 3 --grace 90 o3a"));
    expect(r.stderr).toMatch(/exited 3, 2 restarts used: giving up/);
  });

  it("triton.sbatch composes Triton in Apptainer and the register sidecar (DRY_RUN, no Slurm needed)", () => {
    const models = join(dir, "triton-models");
    mkdirSync(join(models, "detector-stream"), { recursive: true });
    writeFileSync(join(models, "detector-stream", "config.pbtxt"), 'name: "detector-stream"\n');
    const r = spawnSync("bash", [join(DEPLOY, "triton.sbatch"), models], {
      encoding: "utf8",
      env: { ...env, DRY_RUN: "1", APPTAINER: "apptainer", TRITON_GRPC_PORT: "8101", TIMESLIDE_ADVERTISE_HOST: "gpu7", CUDA_VISIBLE_DEVICES: "1", TRITON_IMAGE: "/images/triton.sif" },
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/apptainer exec --nv --cleanenv --bind \S+:\/models:ro --env CUDA_VISIBLE_DEVICES=1 \/images\/triton.sif tritonserver/);
    expect(r.stdout).toMatch(/--grpc-port=8101/);
    expect(r.stdout).toMatch(/register --endpoint 127.0.0.1:8101 --advertise gpu7:8101 --ttl 15 --model detector-stream/);
  });
});
