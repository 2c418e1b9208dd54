// `timeslide model-repo` and `timeslide register`, run as a user runs them:
// the built CLI in child processes, a real `timeslide serve`, real Redis.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceClient, discoverServers, outputOf } from "@timeslide/kserve";
import { connectRedis } from "@timeslide/campaign";
import { parseModelRepoFlags, writeModelRepository } from "../src/commands/model-repo.js";
import { parseRegisterFlags } from "../src/commands/register.js";

const CLI = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const PREFIX = `tstest-register-${randomBytes(4).toString("hex")}`;

// A small repository so the server starts fast: kernel 256, stride 64, 16 windows per update.
const SR = 256;
const KERNEL = 256;
const STRIDE = 64;
const BATCH = 16;

const children: ChildProcess[] = [];
let dir: string;

interface Proc {
  child: ChildProcess;
  lines: () => Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  waitFor(pred: (line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

function cli(args: string[], env: Record<string, string> = {}): Proc {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, TIMESLIDE_PREFIX: PREFIX, REDIS_URL, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const parsed: Array<Record<string, unknown>> = [];
  const listeners = new Set<() => void>();
  let buf = "";
  child.stdout!.setEncoding("utf8");
  child.stdout!.on("data", (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        parsed.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        parsed.push({ text: line });
      }
      for (const l of listeners) l();
    }
  });
  let stderr = "";
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (d: string) => (stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return {
    child,
    lines: () => parsed,
    exited,
    waitFor(pred, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = parsed.find(pred);
          if (hit) {
            listeners.delete(check);
            clearTimeout(t);
            resolve(hit);
          }
        };
        const t = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out; stdout: ${JSON.stringify(parsed)} stderr: ${stderr}`));
        }, timeoutMs);
        listeners.add(check);
        void exited.then(() => setTimeout(() => !parsed.find(pred) && reject(new Error(`process exited; stdout: ${JSON.stringify(parsed)} stderr: ${stderr}`)), 50));
        check();
      });
    },
  };
}

/** Runs the CLI to completion: exit code, stdout, stderr. */
function cliRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

async function startServe(port = 0, repo = join(dir, "models")): Promise<{ proc: Proc; port: number }> {
  const proc = cli(["serve", "--repo", repo, "--host", "127.0.0.1", "--port", String(port)]);
  const line = await proc.waitFor((l) => l.msg === "inference server listening", 30_000);
  return { proc, port: Number(line.port) };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "timeslide-model-repo-"));
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  const redis = await connectRedis(REDIS_URL);
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

describe("timeslide model-repo", () => {
  it("refuses bad flags with the flag and what was expected", async () => {
    expect(() => parseModelRepoFlags({ out: "m", kernelLength: "1.3", sampleRate: "256", inferenceSamplingRate: "3" })).toThrow(
      "model-repo: --kernel-length: 1.3 s at 256 Hz is 332.8 samples; expected a whole number; --inference-sampling-rate: 3 Hz must divide --sample-rate 256 Hz",
    );
    expect(() => parseModelRepoFlags({ out: "m", batchSize: "256", maxBatchSize: "64" })).toThrow("--max-batch-size: 64 is below --batch-size 256");
    expect(() => parseModelRepoFlags({ out: "m", device: "tpu" })).toThrow("--device: expected cpu or gpu");
    expect(() => parseModelRepoFlags({ out: "m", ifos: "1" })).toThrow("--ifos: expected >= 2");
    expect(() => parseModelRepoFlags({ out: "m", kernelLength: "abc" })).toThrow("--kernel-length: expected a positive number");
    expect(parseModelRepoFlags({ out: "m", maxBatchSize: undefined })).toEqual({ out: "m", ifos: 2, kernelLength: 1.5, sampleRate: 2048, inferenceSamplingRate: 4, batchSize: 128, dynamicBatching: true, device: "cpu", instances: 1, streams: 8, tensorrt: true, bank: "chirp", force: false, json: false });
    // Through the CLI: message on stderr, exit status 1.
    const missing = await cliRun(["model-repo"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe("timeslide: model-repo: --out: a directory is required (--out DIR)\n");
  });

  it("writes a repository that timeslide serve loads and answers on, streaming equal to the detector", async () => {
    const out = join(dir, "models");
    const r = await cliRun(["model-repo", "--out", out, "--kernel-length", "1", "--sample-rate", String(SR), "--batch-size", String(BATCH), "--json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const summary = JSON.parse(r.stdout) as { kernel_samples: number; stride_samples: number; update_samples: number; state_samples: number; models: { ensemble: string } };
    expect(summary).toMatchObject({ kernel_samples: KERNEL, stride_samples: STRIDE, update_samples: STRIDE * BATCH, state_samples: KERNEL + (BATCH - 1) * STRIDE, models: { ensemble: "detector-stream" } });
    expect(readFileSync(join(out, "detector-stream", "config.pbtxt"), "utf8")).toContain('platform: "ensemble"');

    // A second write refuses to clobber; --force overwrites.
    const again = await cliRun(["model-repo", "--out", out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("--force");

    const { port } = await startServe();
    const client = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
    try {
      await client.waitForReady({ model: "detector-stream", timeoutMs: 20_000 });
      // One update through the ensemble (zero initial state) ...
      const U = STRIDE * BATCH;
      const update = new Float32Array(2 * U);
      let seed = 7;
      for (let i = 0; i < update.length; i++) {
        seed = (seed * 1103515245 + 12345) >>> 0;
        update[i] = seed / 2 ** 32 - 0.5;
      }
      const streamed = await client.infer({
        model: "detector-stream",
        inputs: [{ name: "update", datatype: "FP32", shape: [1, 2, U], data: update }],
        sequence: { id: 42, start: true, end: true },
      });
      const stat = outputOf(streamed, "detection_statistic");
      expect(stat.shape).toEqual([BATCH, 1]);
      // ... equals the detector on the windows built by hand: the state is
      // (kernel − stride) zeros then the update; window j starts at j·stride.
      const S = KERNEL + (BATCH - 1) * STRIDE;
      const windows = new Float32Array(BATCH * 2 * KERNEL);
      for (let ifo = 0; ifo < 2; ifo++) {
        const state = new Float32Array(S);
        state.set(update.subarray(ifo * U, (ifo + 1) * U), S - U);
        for (let j = 0; j < BATCH; j++) windows.set(state.subarray(j * STRIDE, j * STRIDE + KERNEL), (j * 2 + ifo) * KERNEL);
      }
      const direct = outputOf(await client.infer({ model: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [BATCH, 2, KERNEL], data: windows }] }), "detection_statistic");
      const a = Array.from(stat.data as Float32Array);
      const b = Array.from(direct.data as Float32Array);
      expect(a.every((x) => Number.isFinite(x) && x > 0)).toBe(true);
      for (let j = 0; j < BATCH; j++) expect(a[j]).toBeCloseTo(b[j], 4);
    } finally {
      client.close();
    }
  });
});

describe("timeslide model-repo --device gpu", () => {
  const trt = /optimization \{\s+execution_accelerators \{\s+gpu_execution_accelerator \[\s+\{\s+name: "tensorrt"\s+parameters \{\s+key: "precision_mode"\s+value: "FP16"\s+\}\s+parameters \{\s+key: "max_workspace_size_bytes"\s+value: "1073741824"/;
  const kinds = (text: string) => [...text.matchAll(/kind: (KIND_\w+)/g)].map((m) => m[1]);

  it("writes what Triton runs on GPUs: detector and snapshotter KIND_GPU, the detector through TensorRT FP16; --no-tensorrt drops the block; add does the same", async () => {
    const out = join(dir, "gpu-off");
    const off = await cliRun(["model-repo", "demo", "--out", out, "--device", "gpu", "--no-tensorrt", "--kernel-length", "1", "--sample-rate", String(SR), "--batch-size", String(BATCH), "--json"]);
    expect(off.stderr).toBe("");
    expect(off.code).toBe(0);
    expect(JSON.parse(off.stdout)).toMatchObject({ device: "gpu", instances: 1, tensorrt: false });
    const offDet = readFileSync(join(out, "detector", "config.pbtxt"), "utf8");
    expect(kinds(offDet)).toEqual(["KIND_GPU"]);
    expect(offDet).not.toContain("tensorrt");
    expect(offDet).not.toContain("optimization");
    expect(kinds(readFileSync(join(out, "snapshotter", "config.pbtxt"), "utf8"))).toEqual(["KIND_GPU"]);

    // The library writes the same files as the CLI (one path): writeModelRepository is what the command runs.
    const lib = join(dir, "gpu-lib");
    const r = writeModelRepository(parseModelRepoFlags({ out: lib, kernelLength: "1", sampleRate: String(SR), batchSize: String(BATCH), device: "gpu", instances: "2" }));
    expect(r).toMatchObject({ device: "gpu", instances: 2, tensorrt: true });
    const viaCli = join(dir, "gpu-cli");
    const text = await cliRun(["model-repo", "--out", viaCli, "--device", "gpu", "--instances", "2", "--kernel-length", "1", "--sample-rate", String(SR), "--batch-size", String(BATCH)]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain("2 GPU instance(s) per GPU, snapshotter on the GPU, detector through TensorRT FP16");
    for (const m of ["detector", "snapshotter", "detector-stream"]) expect(readFileSync(join(viaCli, m, "config.pbtxt"), "utf8")).toBe(readFileSync(join(lib, m, "config.pbtxt"), "utf8"));
    const det = readFileSync(join(lib, "detector", "config.pbtxt"), "utf8");
    expect(det).toMatch(/instance_group \[\s+\{\s+kind: KIND_GPU\s+count: 2\s+\}\s+\]/);
    expect(det).toMatch(trt);
    const snap = readFileSync(join(lib, "snapshotter", "config.pbtxt"), "utf8");
    expect(snap).toMatch(/instance_group \[\s+\{\s+kind: KIND_GPU\s+count: 8\s+\}\s+\]/); // --streams (default 8): one sequence slot per instance
    expect(snap).not.toContain("tensorrt");

    // add --device gpu: the same block on your own model; --no-tensorrt drops it; cpu writes neither.
    const add = await cliRun(["model-repo", "add", lib, "mynet", join(lib, "detector", "1", "model.onnx"), "--device", "gpu", "--instances", "2", "--json"]);
    expect(add.code).toBe(0);
    expect(JSON.parse(add.stdout).config).toMatchObject({ instance_group: [{ count: 2, kind: "KIND_GPU" }] });
    expect(readFileSync(join(lib, "mynet", "config.pbtxt"), "utf8")).toMatch(trt);
    const addOff = await cliRun(["model-repo", "add", lib, "mynet-cuda", join(lib, "detector", "1", "model.onnx"), "--device", "gpu", "--no-tensorrt"]);
    expect(addOff.code).toBe(0);
    expect(addOff.stdout).toContain("1 KIND_GPU instance(s) per GPU, no TensorRT");
    expect(readFileSync(join(lib, "mynet-cuda", "config.pbtxt"), "utf8")).not.toContain("optimization");
    expect(kinds(readFileSync(join(lib, "mynet-cuda", "config.pbtxt"), "utf8"))).toEqual(["KIND_GPU"]);
    const addCpu = await cliRun(["model-repo", "add", lib, "mynet-cpu", join(lib, "detector", "1", "model.onnx"), "--device", "cpu"]);
    expect(addCpu.code).toBe(0);
    const cpuText = readFileSync(join(lib, "mynet-cpu", "config.pbtxt"), "utf8");
    expect(kinds(cpuText)).toEqual(["KIND_CPU"]);
    expect(cpuText).not.toContain("optimization");
    // stream --device gpu: the snapshotter on the GPU, no accelerator.
    const stream = await cliRun(["model-repo", "stream", lib, "mynet-stream", "--model", "mynet", "--device", "gpu", "--kernel-length", "1", "--sample-rate", String(SR), "--batch-size", String(BATCH)]);
    expect(stream.code).toBe(0);
    const streamSnap = readFileSync(join(lib, "mynet-stream-snapshotter", "config.pbtxt"), "utf8");
    expect(kinds(streamSnap)).toEqual(["KIND_GPU"]);
    expect(streamSnap).not.toContain("tensorrt");
    const check = await cliRun(["model-repo", "check", lib]);
    expect(check.stdout).toContain("all load");
    expect(check.code).toBe(0);
  });

  it("the GPU repository loads in timeslide serve on a CPU machine (notes in the log) and streams as the CPU one does", async () => {
    const repo = join(dir, "gpu-lib");
    const { proc, port } = await startServe(0, repo);
    const client = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
    try {
      await client.waitForReady({ model: "detector-stream", timeoutMs: 20_000 });
      await client.waitForReady({ model: "mynet-stream", timeoutMs: 20_000 });
      const notes = proc.lines().filter((l) => l.model === "detector" && l.level === 30);
      expect(notes.map((l) => l.msg)).toEqual(
        expect.arrayContaining([
          "instance_group KIND_GPU: the embedded server runs ONNX Runtime on the CPU: 2 CPU instance(s) instead (Triton on a GPU node runs them on the GPU)",
          'optimization.execution_accelerators.gpu_execution_accelerator "tensorrt" is not applied: the embedded server runs the model as exported (FP32 on the CPU); Triton applies it',
        ]),
      );
      expect(proc.lines().filter((l) => l.level === 40 || l.level === 50)).toEqual([]); // no warnings, no errors
      const U = STRIDE * BATCH;
      const update = new Float32Array(2 * U).map((_, i) => Math.sin(i * 0.37) * 0.5);
      const answers: number[][] = [];
      for (const model of ["detector-stream", "mynet-stream"]) {
        const res = await client.infer({ model, inputs: [{ name: "update", datatype: "FP32", shape: [1, 2, U], data: update }], sequence: { id: 7, start: true, end: true } });
        const stat = outputOf(res, "detection_statistic");
        expect(stat.shape).toEqual([BATCH, 1]);
        answers.push(Array.from(stat.data as Float32Array));
      }
      expect(answers[0].every((x) => Number.isFinite(x) && x > 0)).toBe(true);
      expect(answers[1]).toEqual(answers[0]); // the same graph added with add --device gpu
    } finally {
      client.close();
      proc.child.kill("SIGTERM");
      await proc.exited;
    }
  });
});

describe("timeslide register", () => {
  it("registers only while the server is ready, lets the lease lapse when it goes, deregisters on SIGTERM", async () => {
    const redis = await connectRedis(REDIS_URL);
    try {
      // The sidecar starts before the server and waits for it.
      const repo = join(dir, "models-register");
      writeModelRepository(parseModelRepoFlags({ out: repo, kernelLength: "1", sampleRate: String(SR), batchSize: String(BATCH) }));
      const port = await freePort();
      const endpoint = `127.0.0.1:${port}`;
      const sidecar = cli(["register", "--endpoint", endpoint, "--advertise", `localhost:${port}`, "--ttl", "2", "--model", "detector-stream", "--redis", REDIS_URL]);
      await sidecar.waitFor((l) => l.msg === "waiting for the inference server to be ready");
      await new Promise((r) => setTimeout(r, 1000));
      expect(await discoverServers(redis, PREFIX)).toEqual([]);

      let server = await startServe(port, repo);
      await sidecar.waitFor((l) => l.msg === "inference server ready: registered", 15_000);
      expect(await discoverServers(redis, PREFIX)).toEqual([`localhost:${port}`]);

      // The server dies: no more refreshes, the entry lapses within the TTL.
      server.proc.child.kill("SIGKILL");
      await server.proc.exited;
      await sidecar.waitFor((l) => l.msg === "inference server not ready: registration no longer refreshed", 10_000);
      await new Promise((r) => setTimeout(r, 2500));
      expect(await discoverServers(redis, PREFIX)).toEqual([]);

      // It comes back: registered again.
      server = await startServe(port, repo);
      await new Promise<void>((resolve, reject) => {
        const t = setInterval(() => {
          const n = sidecar.lines().filter((l) => l.msg === "inference server ready: registered").length;
          if (n >= 2) {
            clearInterval(t);
            clearTimeout(give);
            resolve();
          }
        }, 100);
        const give = setTimeout(() => {
          clearInterval(t);
          reject(new Error("not registered again"));
        }, 10_000);
      });
      expect(await discoverServers(redis, PREFIX)).toEqual([`localhost:${port}`]);

      // SIGTERM: the entry goes at once and the sidecar exits cleanly.
      sidecar.child.kill("SIGTERM");
      expect(await sidecar.exited).toBe(0);
      expect(await redis.zcard(`${PREFIX}:servers`)).toBe(0);
      server.proc.child.kill("SIGTERM");
      await server.proc.exited;
    } finally {
      await redis.quit();
    }
  }, 90_000);

  it("refuses bad flags", () => {
    expect(() => parseRegisterFlags({ endpoint: "nohost", ttl: "0" })).toThrow('register: --endpoint[0]: "nohost" is not an endpoint: expected host:port; --ttl: expected at least 1 s');
    expect(() => parseRegisterFlags({ ttl: "15", readyTimeout: "0" })).toThrow("--endpoint: required (host:port)");
    expect(() => parseRegisterFlags({ endpoint: "a:1,b:2", ttl: "15", readyTimeout: "0" })).toThrow("--endpoint: expected one host:port, got 2");
    expect(() => parseRegisterFlags({ endpoint: "a:1", ttl: "15", readyTimeout: "0", redis: "http://:pw@x" })).toThrow('--redis: expected a redis:// or rediss:// URL, got "http://:***@x/"');
    expect(parseRegisterFlags({ endpoint: " gpu7:8001 ", ttl: "30", readyTimeout: "0", model: "detector-stream" })).toEqual({ endpoint: "gpu7:8001", ttl: 30, readyTimeout: 0, model: "detector-stream" });
  });
});

// ---- deploy/: what can be checked without Docker or HTCondor -------------

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const DEPLOY = join(ROOT, "deploy");

/** `${VAR:-default}` -> default, as compose does with VAR unset. */
const interpolate = (s: string) => s.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, "$1");

async function cliProgram() {
  const { Command } = await import("commander");
  const { registrations } = await import("../src/commands/index.js");
  const program = new Command();
  for (const r of registrations) r(program);
  return program;
}

/** Every --flag in args must be an option of the named command. */
function unknownFlags(program: import("commander").Command, args: string[]): string[] {
  const cmd = program.commands.find((c) => c.name() === args[0]);
  if (!cmd) return [`no command ${args[0]}`];
  return args
    .slice(1)
    .filter((a) => a.startsWith("--"))
    .map((a) => a.split("=")[0])
    .filter((flag) => !cmd.options.some((o) => o.long === flag));
}

/** key = value lines of an HTCondor submit description. */
function submitCommands(file: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^\s*([A-Za-z_+][\w.]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out.set(m[1].toLowerCase(), m[2]);
  }
  return out;
}

describe("deploy/", () => {
  it("compose.yaml: Redis with AOF and noeviction, every timeslide command and flag exists, the campaign example matches the model repository", async () => {
    const { parse } = await import("yaml");
    const doc = parse(readFileSync(join(DEPLOY, "compose", "compose.yaml"), "utf8"), { merge: true }) as {
      services: Record<string, { command?: string[]; image?: string; profiles?: string[]; environment?: Record<string, string>; depends_on?: Record<string, unknown> }>;
      volumes: Record<string, unknown>;
    };
    const redis = doc.services.redis.command!.map(interpolate);
    expect(redis.join(" ")).toContain("--appendonly yes --appendfsync everysec");
    expect(redis.join(" ")).toContain("--maxmemory-policy noeviction");
    const program = await cliProgram();
    const timeslide = Object.entries(doc.services).filter(([, s]) => s.image === "timeslide:local");
    expect(timeslide.map(([n]) => n).sort()).toEqual(["cli", "model-repo", "server", "triton-register", "worker"]);
    for (const [name, s] of timeslide) {
      expect(s.environment?.REDIS_URL, name).toBe("redis://redis:6379");
      if (s.command) expect(unknownFlags(program, s.command.map(interpolate)), name).toEqual([]);
    }
    expect(doc.services.worker.command).toContain("registry");
    expect(doc.services.worker.profiles).toEqual(["cpu", "gpu"]);
    expect(doc.services.triton.command!.some((a) => a === "--model-repository=/models")).toBe(true);
    // The compose defaults write the repository that the example campaign needs.
    const repo = parseModelRepoFlags({
      ...Object.fromEntries(
        doc.services["model-repo"].command!
          .map(interpolate)
          .slice(1)
          .flatMap((a, i, all) => (a.startsWith("--") && a !== "--force" ? [[a.slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase()), all[i + 1]]] : [])),
      ),
    });
    const campaign = parse(readFileSync(join(DEPLOY, "compose", "campaign.example.yaml"), "utf8")) as {
      ifos: string[];
      data: { sample_rate: number };
      model: { name: string; servers: string };
      inference: { kernel_length: number; inference_sampling_rate: number; batch_size: number };
    };
    expect(campaign.model).toMatchObject({ name: "detector-stream", servers: "registry" });
    expect({ ifos: campaign.ifos.length, sampleRate: campaign.data.sample_rate, kernelLength: campaign.inference.kernel_length, inferenceSamplingRate: campaign.inference.inference_sampling_rate, batchSize: campaign.inference.batch_size }).toEqual({
      ifos: repo.ifos,
      sampleRate: repo.sampleRate,
      kernelLength: repo.kernelLength,
      inferenceSamplingRate: repo.inferenceSamplingRate,
      batchSize: repo.batchSize,
    });
  });

  it("HTCondor submit files: executables exist, macros are defined, retries, SIGTERM, worker flags exist", async () => {
    const program = await cliProgram();
    for (const [file, script] of [
      ["worker.sub", "deploy/htcondor/timeslide-worker.sh"],
      ["triton.sub", "deploy/triton/start-triton.sh"],
    ] as const) {
      const sub = submitCommands(join(DEPLOY, "htcondor", file));
      expect(sub.get("executable"), file).toBe(`$(ts_home)/${script}`);
      expect(statSync(join(ROOT, script)).mode & 0o111, `${script} is executable`).not.toBe(0);
      expect(sub.get("kill_sig")).toBe("SIGTERM");
      expect(Number(sub.get("max_retries"))).toBeGreaterThan(0);
      expect(sub.get("on_exit_remove")).toBe("(ExitBySignal == False) && (ExitCode == 0)");
      expect(sub.get("getenv")).toBe("false");
      // Every $(macro) used is defined in the file, built in, or a user setting with a default.
      const text = readFileSync(join(DEPLOY, "htcondor", file), "utf8").replace(/^\s*#.*$/gm, "");
      const used = [...text.matchAll(/\$\(([A-Za-z_]+)(:[^)]*)?\)/g)].filter((m) => m[2] === undefined).map((m) => m[1]);
      expect(used.filter((m) => !sub.has(m.toLowerCase()) && !["Cluster", "Process"].includes(m)), file).toEqual([]);
      const queue = /^queue \$\((\w+)\)$/m.exec(text);
      expect(queue && sub.has(queue[1]), `${file}: queue N`).toBe(true);
      expect(sub.get("environment")).toMatch(/REDIS_URL_FILE=\$\(ts_redis_file\) .*TIMESLIDE_PREFIX=\$\(ts_prefix\)/);
    }
    const worker = submitCommands(join(DEPLOY, "htcondor", "worker.sub"));
    expect(worker.get("environment")).toContain("TIMESLIDE_SERVERS=registry");
    expect(unknownFlags(program, ["worker", ...worker.get("arguments")!.replace(/"/g, "").split(/\s+/)])).toEqual([]);
    expect(submitCommands(join(DEPLOY, "htcondor", "triton.sub")).get("request_gpus")).toBe("1");
  });

  it("shell scripts pass bash -n; the worker wrapper refuses to start without Redis", async () => {
    for (const script of ["htcondor/timeslide-worker.sh", "triton/start-triton.sh"]) {
      const r = await run("bash", ["-n", join(DEPLOY, script)]);
      expect(r.code, `${script}: ${r.stderr}`).toBe(0);
    }
    const env = { ...process.env };
    delete env.REDIS_URL;
    delete env.REDIS_URL_FILE;
    const r = await run(join(DEPLOY, "htcondor", "timeslide-worker.sh"), [], env);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no Redis: set REDIS_URL or REDIS_URL_FILE");
  });

  it("start-triton.sh starts the server, registers it while ready and leaves the registry on SIGTERM", async () => {
    // A stand-in for `apptainer exec ... tritonserver ...` that serves the same
    // repository with timeslide serve on the port the script chose.
    const fake = join(dir, "fake-apptainer");
    writeFileSync(
      fake,
      `#!/usr/bin/env bash
repo= port=
while (($#)); do
  case $1 in
    --bind) repo=\${2%%:*}; shift ;;
    --grpc-port=*) port=\${1#*=} ;;
  esac
  shift
done
exec ${JSON.stringify(process.execPath)} ${JSON.stringify(CLI)} serve --repo "$repo" --port "$port" --host 127.0.0.1
`,
      { mode: 0o755 },
    );
    // Its own repository, so this test also runs alone (-t).
    const repo = join(dir, "models-triton");
    writeModelRepository(parseModelRepoFlags({ out: repo, kernelLength: "1", sampleRate: String(SR), batchSize: String(BATCH) }));
    const prefix = `${PREFIX}-triton`;
    const port = await freePort();
    const child = spawn(join(DEPLOY, "triton", "start-triton.sh"), [repo], {
      env: {
        ...process.env,
        APPTAINER: fake,
        TIMESLIDE_BIN: `${process.execPath} ${CLI}`,
        REDIS_URL,
        TIMESLIDE_PREFIX: prefix,
        TRITON_GRPC_PORT: String(port),
        TIMESLIDE_ADVERTISE_HOST: "gpu-node-7",
        TIMESLIDE_REGISTER_TTL: "3",
        TIMESLIDE_DRAIN_S: "0",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(child);
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    const redis = await connectRedis(REDIS_URL);
    try {
      const until = Date.now() + 40_000;
      let found: string[] = [];
      while (Date.now() < until && child.exitCode === null) {
        found = await discoverServers(redis, prefix);
        if (found.length) break;
        await new Promise((r) => setTimeout(r, 250));
      }
      expect(found, output).toEqual([`gpu-node-7:${port}`]);
      // Workers dial what is registered: the server answers there.
      const client = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
      expect(await client.modelReady("detector-stream")).toBe(true);
      client.close();
      child.kill("SIGTERM");
      expect(await exited, output).toBe(0);
      expect(await redis.zcard(`${prefix}:servers`)).toBe(0);
      expect(output).toContain("start-triton: stopped");
    } finally {
      await redis.del(`${prefix}:servers`);
      await redis.quit();
    }
  }, 90_000);
});

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}
