// Bringing your own model, as a user does: ONNX graphs built here (other
// tensor names, two outputs, a fixed batch axis, a float64 input), added and
// streamed with `timeslide model-repo`, a folder without config.pbtxt, a
// config that does not match its graph; then the real server, `submit` and
// a worker over real Redis. Each case works, or is refused (at add, stream,
// check, load or submit) with the model, the tensor and what was expected.
import { spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { randomBytes } from "node:crypto";
import { createServer, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceClient, ServerPool, outputOf } from "@timeslide/kserve";
import { campaignKeys, campaignStatus, connectRedis } from "@timeslide/campaign";
import { GraphBuilder, detectorConfig, formatModelConfig, streamingEnsembleConfig, type Dim, type ElemType } from "@timeslide/model-repo";

const CLI = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const REDIS_URL = process.env.REDIS_URL || "redis://127.0.0.1:6379";
const PREFIX = `tstest-own-${randomBytes(4).toString("hex")}`;
const K = 128; // 1 s at 128 Hz
const STREAM = ["--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"];

const children: ChildProcess[] = [];
let dir: string;
const env = () => ({ ...process.env, TIMESLIDE_PREFIX: PREFIX, REDIS_URL, LOG_LEVEL: "info" });

function cliRun(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: env(), stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(args: string[]): Promise<string> {
  const r = await cliRun(args);
  if (r.code !== 0) throw new Error(`timeslide ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

function start(args: string[]): { child: ChildProcess; lines: Array<Record<string, unknown>>; waitFor: (msg: string, ms?: number) => Promise<Record<string, unknown>> } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: dir, env: env(), stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const lines: Array<Record<string, unknown>> = [];
  let buf = "";
  let err = "";
  child.stdout!.setEncoding("utf8").on("data", (d: string) => {
    buf += d;
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ text: line });
      }
    }
  });
  child.stderr!.setEncoding("utf8").on("data", (d: string) => (err = (err + d).slice(-8000)));
  const waitFor = async (msg: string, ms = 30_000) => {
    const until = Date.now() + ms;
    for (;;) {
      const hit = lines.find((l) => l.msg === msg);
      if (hit) return hit;
      if (Date.now() > until || child.exitCode !== null) throw new Error(`no "${msg}"; stdout ${JSON.stringify(lines).slice(-2000)} stderr ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return { child, lines, waitFor };
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

/**
 * A small "network": input [batch, 2, K] → RMS over detectors and time,
 * output per window as [batch] (scalar) or [batch, 1]; optionally a second
 * output (per-detector power [batch, 2]); optionally float64 input.
 */
function net(o: { input?: string; output?: string; batch?: Dim; elem?: ElemType; scalar?: boolean; twoOutputs?: boolean } = {}): Uint8Array {
  const batch = o.batch ?? "batch";
  const g = new GraphBuilder("net");
  let x = g.input(o.input ?? "strain", o.elem ?? "float32", [batch, 2, K]);
  if (o.elem === "float64") x = g.node("Cast", [x], { to: 1 });
  const sq = g.node("Mul", [x, x]);
  let stat = g.node("Sqrt", [g.node("ReduceMean", [sq], { axes: [1, 2], keepdims: 0 })]);
  if (!o.scalar) stat = g.node("Unsqueeze", [stat, g.int64s([1])]);
  g.output(stat, o.output ?? "logits", "float32", o.scalar ? [batch] : [batch, 1]);
  if (o.twoOutputs) g.output(g.node("ReduceMean", [sq], { axes: [2], keepdims: 0 }), "embedding", "float32", [batch, 2]);
  return g.toBytes("test net");
}

const campaignYaml = (name: string, port: number, model: Record<string, unknown>, inference: Record<string, unknown> = {}) =>
  JSON.stringify({
    name,
    ifos: ["H1", "L1"],
    data: { files: ["data/*.hdf5"], sample_rate: 128, segments: { flags: ["DATA"], min_duration: 120 } },
    model: { servers: [`127.0.0.1:${port}`], ...model },
    inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20, ...inference },
    background: { shifts: 2, step: 2, max_job_duration: 400 },
    output: `results/${name}`,
  });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "timeslide-own-model-"));
  mkdirSync(join(dir, "onnx"));
  writeFileSync(join(dir, "onnx", "mynet.onnx"), net({ scalar: true }));
  writeFileSync(join(dir, "onnx", "two.onnx"), net({ twoOutputs: true }));
  writeFileSync(join(dir, "onnx", "fixed.onnx"), net({ batch: 8 }));
  writeFileSync(join(dir, "onnx", "double.onnx"), net({ elem: "float64" }));
  await ok(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "10m", "--sample-rate", "256", "--file-duration", "600", "--seed", "5"]);
}, 60_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  const redis = await connectRedis(REDIS_URL);
  const keys = await redis.keys(`${PREFIX}:*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  rmSync(dir, { recursive: true, force: true });
});

describe("your own model through timeslide model-repo", () => {
  it("add writes the config from the graph and stream wires the model by its own tensor names; what can't work is refused, naming model, tensor and expectation", async () => {
    await ok(["model-repo", "init", "models"]);
    // Other names, a per-window scalar output [batch]: dims [1] with Triton's reshape.
    const added = JSON.parse(await ok(["model-repo", "add", "models", "mynet", "onnx/mynet.onnx", "--json"]));
    expect(added).toMatchObject({ name: "mynet", version: 1, warnings: [] });
    expect(added.config).toMatchObject({
      max_batch_size: 128,
      input: [{ name: "strain", data_type: "TYPE_FP32", dims: [2, K] }],
      output: [{ name: "logits", data_type: "TYPE_FP32", dims: [1], reshape: { shape: [] } }],
    });
    // A second add is the next version.
    expect(JSON.parse(await ok(["model-repo", "add", "models", "mynet", "onnx/mynet.onnx", "--json"])).version).toBe(2);
    const streamed = JSON.parse(await ok(["model-repo", "stream", "models", "mynet-stream", "--model", "mynet", ...STREAM, "--json"]));
    expect(streamed).toMatchObject({ ensemble: "mynet-stream", snapshotter: "mynet-stream-snapshotter", input: "strain", output: "logits", nIfo: 2, updateSize: 2048 });
    const ens = readFileSync(join(dir, "models", "mynet-stream", "config.pbtxt"), "utf8");
    expect(ens).toMatch(/key: "strain"\s+value: "windows"/);
    expect(ens).toMatch(/name: "logits"/);

    // Two outputs: stream asks which one; --output chooses.
    await ok(["model-repo", "add", "models", "two", "onnx/two.onnx"]);
    let r = await cliRun(["model-repo", "stream", "models", "two-stream", "--model", "two", ...STREAM]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("model 'two' output: the model has 2 ('logits', 'embedding'); pass --output NAME to choose one");
    await ok(["model-repo", "stream", "models", "two-stream", "--model", "two", "--output", "logits", ...STREAM]);

    // A fixed batch axis: refused with --max-batch-size, served as it is without; stream needs that batch.
    r = await cliRun(["model-repo", "add", "models", "fixed", "onnx/fixed.onnx", "--max-batch-size", "16"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("model 'fixed': --max-batch-size 16 needs a dynamic first (batch) axis on every input and output, but 'strain' has shape [8, 2, 128]");
    expect(r.stderr).toContain("dynamic_axes={'strain': {0: 'batch'}");
    expect(JSON.parse(await ok(["model-repo", "add", "models", "fixed", "onnx/fixed.onnx", "--json"])).config).toMatchObject({ max_batch_size: 0, input: [{ name: "strain", dims: [8, 2, K] }] });
    r = await cliRun(["model-repo", "stream", "models", "fixed-stream", "--model", "fixed", ...STREAM]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("model 'fixed' input 'strain' takes exactly 8 windows per request (shape [8, 2, 128], no dynamic batch axis), but the ensemble sends 32 (--batch-size): use --batch-size 8");
    await ok(["model-repo", "stream", "models", "fixed-stream", "--model", "fixed", ...STREAM.slice(0, -1), "8"]);

    // A float64 input: added with a warning, refused by stream.
    r = await cliRun(["model-repo", "add", "models", "double", "onnx/double.onnx"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain("warning: model 'double' input 'strain' is TYPE_FP64: timeslide's workers and the snapshotter send float32 strain (TYPE_FP32)");
    r = await cliRun(["model-repo", "stream", "models", "double-stream", "--model", "double", ...STREAM]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("model 'double' input 'strain' is TYPE_FP64; the snapshotter and timeslide's workers send float32 windows (TYPE_FP32)");

    // The user's path before this: the demo repository with detector/1/model.onnx replaced by a strain → logits export.
    await ok(["model-repo", "demo", "--out", "models", ...STREAM]);
    copyFileSync(join(dir, "onnx", "two.onnx"), join(dir, "models", "detector", "1", "model.onnx"));
    // A config that says float32 for a float64 graph, with a batch axis the graph does not have.
    mkdirSync(join(dir, "models", "wrongtype", "1"), { recursive: true });
    copyFileSync(join(dir, "onnx", "double.onnx"), join(dir, "models", "wrongtype", "1", "model.onnx"));
    writeFileSync(
      join(dir, "models", "wrongtype", "config.pbtxt"),
      formatModelConfig({ ...detectorConfig("wrongtype", 2, K, 128), input: [{ name: "strain", data_type: "TYPE_FP32", dims: [2, K] }], output: [{ name: "logits", data_type: "TYPE_FP32", dims: [1] }] }),
    );
    // An ensemble written by hand with the old names, around mynet.
    mkdirSync(join(dir, "models", "oldnames-stream", "1"), { recursive: true });
    writeFileSync(
      join(dir, "models", "oldnames-stream", "config.pbtxt"),
      formatModelConfig(streamingEnsembleConfig("oldnames-stream", "mynet-stream-snapshotter", "mynet", { nIfo: 2, kernel: K, stride: 64, batch: 32 })),
    );
    // A folder with a model but no config.
    mkdirSync(join(dir, "models", "orphan", "1"), { recursive: true });
    copyFileSync(join(dir, "onnx", "mynet.onnx"), join(dir, "models", "orphan", "1", "model.onnx"));

    r = await cliRun(["model-repo", "check", "models"]);
    expect(r.code).toBe(1);
    const out = r.stdout;
    for (const good of ["mynet", "mynet-stream", "two", "two-stream", "fixed", "fixed-stream", "double", "snapshotter"]) expect(out).toMatch(new RegExp(`^ok   ${good} `, "m"));
    expect(out).toMatch(/^FAIL detector /m);
    expect(out).toContain("model 'detector' input 'whitened': not an input of the graph");
    expect(out).toContain("(its inputs: 'strain')");
    expect(out).toContain("model 'detector' output 'detection_statistic': not an output of the graph");
    expect(out).toContain("model 'detector': the graph");
    expect(out).toMatch(/model 'wrongtype' input 'strain': config\.pbtxt says TYPE_FP32, the graph .* has TYPE_FP64/);
    expect(out).toContain(
      "ensemble 'oldnames-stream' step 2 (model 'mynet'): input_map maps 'windows' to 'whitened', but model 'mynet' has no input 'whitened' (its inputs: 'strain')",
    );
    expect(out).toMatch(/skip orphan: no config\.pbtxt in .*orphan \(it holds .*orphan\/1\/model\.onnx: write the config from the graph with `timeslide model-repo add/);

    const listed = JSON.parse(await ok(["model-repo", "list", "models", "--json"]));
    const mynetStream = listed.models.find((m: { name: string }) => m.name === "mynet-stream");
    expect(mynetStream.steps[1]).toEqual({ model: "mynet", input_map: { strain: "windows" }, output_map: { logits: "logits" } });
    expect(listed.skipped.map((s: { folder: string }) => s.folder)).toEqual(["orphan"]);
  }, 60_000);

  let port = 0;
  it("the server logs every folder it skips and why, and reports failed loads through RepositoryIndex and ModelReady; what loads answers under its own names", async () => {
    const server = start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", "0"]);
    port = Number((await server.waitFor("inference server listening")).port);
    const skipped = server.lines.filter((l) => l.msg === "model folder skipped");
    expect(skipped.map((l) => l.folder)).toEqual(["orphan"]);
    expect(String(skipped[0].reason)).toContain("no config.pbtxt");
    const failed = server.lines.filter((l) => l.msg === "model load failed").map((l) => l.model);
    expect(failed.sort()).toEqual(["detector", "detector-stream", "oldnames-stream", "wrongtype"]);
    expect(server.lines.find((l) => String(l.msg).startsWith("server not ready: some models failed to load"))?.failed).toEqual(["detector", "detector-stream", "oldnames-stream", "wrongtype"]);
    const client = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
    try {
      const index = await client.repositoryIndex();
      const entry = (n: string) => index.find((m) => m.name === n)!;
      expect(entry("mynet-stream").state).toBe("READY");
      expect(entry("detector")).toMatchObject({ state: "UNAVAILABLE" });
      expect(entry("detector").reason).toContain("model 'detector' input 'whitened': not an input of the graph");
      expect(entry("detector-stream").reason).toContain("ensemble step model 'detector' is not loaded (failed to load 'detector'");
      expect(entry("orphan")).toMatchObject({ state: "UNAVAILABLE" });
      expect(entry("orphan").reason).toContain("no config.pbtxt");
      expect(await client.modelReady("detector")).toBe(false);
      expect(await client.modelReady("mynet-stream")).toBe(true);
      // The server is not ready while a model failed (Triton's strict readiness); workers' pools say which and why.
      expect(await client.serverReady()).toBe(false);
      const pool = new ServerPool({ endpoints: `127.0.0.1:${port}` });
      try {
        await pool.checkHealth();
        const [state] = pool.servers();
        expect(state.healthy).toBe(false);
        expect(state.lastError).toContain("not ready: model detector UNAVAILABLE: failed to load 'detector': model 'detector' input 'whitened': not an input of the graph");
      } finally {
        pool.close();
      }

      // strain → logits through the ensemble: [batch] from the graph, [batch, 1] as the config says.
      const update = new Float32Array(2 * 2048).map((_, i) => Math.sin(i));
      const res = await client.infer({ model: "mynet-stream", inputs: [{ name: "update", datatype: "FP32", shape: [1, 2, 2048], data: update }], sequence: { id: 9, start: true, end: true } });
      expect(outputOf(res, "logits").shape).toEqual([32, 1]);
      // The fixed-batch model streams with 8 windows per update.
      const fixed = await client.infer({ model: "fixed-stream", inputs: [{ name: "update", datatype: "FP32", shape: [1, 2, 512], data: new Float32Array(1024).fill(1) }], sequence: { id: 10, start: true, end: true } });
      expect(outputOf(fixed, "logits").shape).toEqual([8, 1]);
    } finally {
      client.close();
    }
  }, 60_000);

  it("submit refuses (exit 2) a model the server answers for but has not loaded, printing its reason; a model with two outputs needs model.output", async () => {
    const write = (name: string, model: Record<string, unknown>, inference?: Record<string, unknown>) => {
      writeFileSync(join(dir, `${name}.yaml`), campaignYaml(name, port, model, inference));
      return `${name}.yaml`;
    };
    let r = await cliRun(["submit", write("c-oldnames", { name: "detector-stream" })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.name: server 127\.0\.0\.1:\d+ has model detector-stream but it is not ready \(state UNAVAILABLE: .*ensemble step model 'detector' is not loaded/);
    expect(r.stderr).toContain("model 'detector' input 'whitened': not an input of the graph");
    r = await cliRun(["submit", write("c-orphan", { name: "orphan" })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/server 127\.0\.0\.1:\d+ has model orphan but it is not ready \(state UNAVAILABLE: no config\.pbtxt/);
    r = await cliRun(["submit", write("c-two", { name: "two" })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model two on 127\.0\.0\.1:\d+: expected one output \(the detection statistic\), got 2: logits, embedding; set model\.output in the campaign/);
    r = await cliRun(["submit", write("c-fixed", { name: "fixed" })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/input "strain" takes exactly 8 windows per request \(shape \[8, 2, 128\], no batch axis\), the campaign sends up to inference\.batch_size 32/);
    // The model is ready, but the server is not (other models failed): workers would never use it.
    r = await cliRun(["submit", write("c-notready", { name: "mynet-stream" })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.servers: server 127\.0\.0\.1:\d+ has model mynet-stream ready but is itself not ready, so workers will not use it .*model detector UNAVAILABLE: failed to load 'detector': model 'detector' input 'whitened'/);
    r = await cliRun(["submit", write("c-badout", { name: "two", output: "logit" })]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/model\.output: model two on 127\.0\.0\.1:\d+ has no output "logit" \(its outputs: logits, embedding\)/);
    const redis = await connectRedis(REDIS_URL);
    try {
      for (const n of ["c-oldnames", "c-orphan", "c-two", "c-fixed", "c-notready", "c-badout"]) expect(await redis.exists(campaignKeys(PREFIX, n).meta), `${n}: nothing queued`).toBe(0);
    } finally {
      redis.disconnect();
    }
  }, 60_000);

  it("campaigns run end to end on strain → logits (add + stream), on a bare model with two outputs (model.output) and on one with a fixed batch; an input ONNX Runtime refuses fails the job once, for good, naming the tensor", async () => {
    // A config that passes every check (variable dims) on a graph that takes 128-sample windows: ONNX Runtime refuses 64.
    mkdirSync(join(dir, "models-loose", "loose", "1"), { recursive: true });
    copyFileSync(join(dir, "onnx", "mynet.onnx"), join(dir, "models-loose", "loose", "1", "model.onnx"));
    writeFileSync(
      join(dir, "models-loose", "loose", "config.pbtxt"),
      formatModelConfig({ name: "loose", platform: "onnxruntime_onnx", max_batch_size: 128, input: [{ name: "strain", data_type: "TYPE_FP32", dims: [-1, -1] }], output: [{ name: "logits", data_type: "TYPE_FP32", dims: [1], reshape: { shape: [] } }] }),
    );
    const loosePort = await freePort();
    await start(["serve", "--repo", "models-loose", "--host", "127.0.0.1", "--port", String(loosePort)]).waitFor("inference server listening");
    // A repository of models that all load (a server with a failed model is not ready, as Triton's strict readiness).
    await ok(["model-repo", "add", "models-run", "mynet", "onnx/mynet.onnx"]);
    await ok(["model-repo", "stream", "models-run", "mynet-stream", "--model", "mynet", ...STREAM]);
    await ok(["model-repo", "add", "models-run", "two", "onnx/two.onnx"]);
    await ok(["model-repo", "add", "models-run", "fixed", "onnx/fixed.onnx"]);
    expect((await cliRun(["model-repo", "check", "models-run"])).code).toBe(0);
    const runPort = await freePort();
    await start(["serve", "--repo", "models-run", "--host", "127.0.0.1", "--port", String(runPort)]).waitFor("inference server listening");

    writeFileSync(join(dir, "run-stream.yaml"), campaignYaml("run-stream", runPort, { name: "mynet-stream" }));
    writeFileSync(join(dir, "run-two.yaml"), campaignYaml("run-two", runPort, { name: "two", output: "logits" }));
    writeFileSync(join(dir, "run-fixed.yaml"), campaignYaml("run-fixed", runPort, { name: "fixed" }, { batch_size: 8 }));
    writeFileSync(join(dir, "run-loose.yaml"), campaignYaml("run-loose", loosePort, { name: "loose" }, { kernel_length: 0.5 }));
    const plans: Record<string, { jobs: { total: number }; livetime: { background_s: number } }> = {};
    for (const n of ["run-stream", "run-two", "run-fixed", "run-loose"]) {
      plans[n] = JSON.parse(await ok(["plan", `${n}.yaml`, "--json"]));
      const sub = await cliRun(["submit", `${n}.yaml`, "--json"]);
      expect(sub.code, sub.stderr).toBe(0);
      expect(JSON.parse(sub.stdout).added).toBe(plans[n].jobs.total);
      // Progress lines (stderr is no TTY): each state once, the last one complete.
      const progress = sub.stderr.split("\n").filter((l) => l.includes('"progress":"submit"')).map((l) => JSON.parse(l) as { done: number; total: number });
      expect(progress.map((p) => p.done)).toEqual([...new Set(progress.map((p) => p.done))]);
      expect(progress.at(-1)).toMatchObject({ done: plans[n].jobs.total, total: plans[n].jobs.total });
    }
    const worker = start(["worker", "run-stream", "run-two", "run-fixed", "run-loose"]);
    const redis = await connectRedis(REDIS_URL);
    try {
      const until = Date.now() + 150_000;
      const st = async (n: string) => campaignStatus(redis, PREFIX, n);
      while (Date.now() < until) {
        const all = await Promise.all(["run-stream", "run-two", "run-fixed", "run-loose"].map(st));
        if (all.every((s) => s.done)) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      // run-fixed: a model that takes exactly 8 windows per request (no batch axis); the last request of a job is padded.
      for (const n of ["run-stream", "run-two", "run-fixed"]) {
        const s = await st(n);
        expect(s, n).toMatchObject({ done: true, jobs: { failed: 0, completed: plans[n].jobs.total } });
        expect(s.livetime.background_s, n).toBe(plans[n].livetime.background_s);
      }
      const loose = await st("run-loose");
      expect(loose).toMatchObject({ done: true, jobs: { failed: plans["run-loose"].jobs.total, completed: 0 } });
      const failures = Object.values(await redis.hgetall(campaignKeys(PREFIX, "run-loose").failures)).map((v) => JSON.parse(v) as { reason: string; attempts: number });
      expect(failures.length).toBe(plans["run-loose"].jobs.total);
      for (const f of failures) {
        expect(f.attempts, "refused at once, not retried").toBe(1);
        expect(f.reason).toContain('campaign run-loose: model loose refused input "strain" (windows [≤32, 2, 64] FP32; kernel 64, stride 64, 32 windows per request)');
        expect(f.reason).toMatch(/ONNX Runtime refused the input: .*strain.*Expected: 128/);
      }
    } finally {
      redis.disconnect();
      worker.child.kill("SIGTERM");
    }
  }, 200_000);

  it("`npx timeslide` runs the committed bin shim, which loads the build or says to run npm run build", async () => {
    const pkg = JSON.parse(readFileSync(fileURLToPath(new URL("../package.json", import.meta.url)), "utf8")) as { bin: Record<string, string> };
    const bin = fileURLToPath(new URL(`../${pkg.bin.timeslide}`, import.meta.url));
    expect(pkg.bin.timeslide).toBe("./bin/timeslide.js");
    const lock = JSON.parse(readFileSync(fileURLToPath(new URL("../../../package-lock.json", import.meta.url)), "utf8")) as { packages: Record<string, { bin?: Record<string, string> }> };
    expect(lock.packages["apps/cli"].bin).toEqual({ timeslide: "bin/timeslide.js" });
    const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(process.execPath, [bin, "--help"], { stdio: ["ignore", "pipe", "inherit"] });
      let out = "";
      c.stdout.on("data", (d) => (out += d));
      c.on("exit", (code) => resolve({ code, out }));
    });
    expect(r.code).toBe(0);
    expect(r.out).toContain("model-repo");
  });
});
