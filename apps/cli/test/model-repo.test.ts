// `timeslide model-repo` and `timeslide register`, run as a user runs them:
// the built CLI in child processes, a real `timeslide serve`, real Redis.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceClient, discoverServers, outputOf } from "@timeslide/kserve";
import { connectRedis } from "@timeslide/campaign";
import { parseModelRepoFlags } from "../src/commands/model-repo.js";
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

async function startServe(port = 0): Promise<{ proc: Proc; port: number }> {
  const proc = cli(["serve", "--repo", join(dir, "models"), "--host", "127.0.0.1", "--port", String(port)]);
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
    const defaults = { ifos: "2", kernelLength: "1.5", sampleRate: "2048", inferenceSamplingRate: "4", batchSize: "128", dynamicBatching: true, device: "cpu", instances: "1", force: false, json: false };
    expect(() => parseModelRepoFlags({ ...defaults, out: "m", kernelLength: "1.3", sampleRate: "256", inferenceSamplingRate: "3" })).toThrow(
      "model-repo: --kernel-length: 1.3 s at 256 Hz is 332.8 samples; expected a whole number; --inference-sampling-rate: 3 Hz must divide --sample-rate 256 Hz",
    );
    expect(() => parseModelRepoFlags({ ...defaults, out: "m", batchSize: "256", maxBatchSize: "64" })).toThrow("--max-batch-size: 64 is below --batch-size 256");
    expect(() => parseModelRepoFlags({ ...defaults, out: "m", device: "tpu" })).toThrow("--device: expected cpu or gpu");
    expect(() => parseModelRepoFlags({ ...defaults, out: "m", ifos: "1" })).toThrow("--ifos: expected >= 2");
    expect(() => parseModelRepoFlags({ ...defaults, out: "m", kernelLength: "abc" })).toThrow("--kernel-length: expected a positive number");
    expect(parseModelRepoFlags({ ...defaults, out: "m" })).toMatchObject({ out: "m", ifos: 2, kernelLength: 1.5, sampleRate: 2048, inferenceSamplingRate: 4, batchSize: 128 });
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

describe("timeslide register", () => {
  it("registers only while the server is ready, lets the lease lapse when it goes, deregisters on SIGTERM", async () => {
    const redis = await connectRedis(REDIS_URL);
    try {
      // The sidecar starts before the server and waits for it.
      const port = await freePort();
      const endpoint = `127.0.0.1:${port}`;
      const sidecar = cli(["register", "--endpoint", endpoint, "--advertise", `localhost:${port}`, "--ttl", "2", "--model", "detector-stream", "--redis", REDIS_URL]);
      await sidecar.waitFor((l) => l.msg === "waiting for the inference server to be ready");
      await new Promise((r) => setTimeout(r, 1000));
      expect(await discoverServers(redis, PREFIX)).toEqual([]);

      let server = await startServe(port);
      await sidecar.waitFor((l) => l.msg === "inference server ready: registered", 15_000);
      expect(await discoverServers(redis, PREFIX)).toEqual([`localhost:${port}`]);

      // The server dies: no more refreshes, the entry lapses within the TTL.
      server.proc.child.kill("SIGKILL");
      await server.proc.exited;
      await sidecar.waitFor((l) => l.msg === "inference server not ready: registration no longer refreshed", 10_000);
      await new Promise((r) => setTimeout(r, 2500));
      expect(await discoverServers(redis, PREFIX)).toEqual([]);

      // It comes back: registered again.
      server = await startServe(port);
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
    expect(() => parseRegisterFlags({ endpoint: "nohost", ttl: "0", readyTimeout: "0" })).toThrow('register: --endpoint[0]: "nohost" is not an endpoint: expected host:port; --ttl: expected at least 1 s');
    expect(() => parseRegisterFlags({ ttl: "15", readyTimeout: "0" })).toThrow("--endpoint: required (host:port)");
    expect(() => parseRegisterFlags({ endpoint: "a:1,b:2", ttl: "15", readyTimeout: "0" })).toThrow("--endpoint: expected one host:port, got 2");
    expect(() => parseRegisterFlags({ endpoint: "a:1", ttl: "15", readyTimeout: "0", redis: "http://:pw@x" })).toThrow('--redis: expected a redis:// or rediss:// URL, got "http://:***@x/"');
    expect(parseRegisterFlags({ endpoint: " gpu7:8001 ", ttl: "30", readyTimeout: "0", model: "detector-stream" })).toEqual({ endpoint: "gpu7:8001", ttl: 30, readyTimeout: 0, model: "detector-stream" });
  });
});
