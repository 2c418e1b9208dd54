import { readFileSync } from "node:fs";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import * as ort from "onnxruntime-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../src/index.js";
import { copyVersion, f32raw, fullWindows, GEOM, handWrittenRepository, noise, openStream, protocolClients, rawf32, STATE, UPDATE, updateAt } from "./helpers.js";

const { nIfo, kernel, batch } = GEOM;
const silent = pino({ level: "silent" });




const seqParams = (id: number | string, start: boolean, end = false) => ({
  sequence_id: typeof id === "string" ? { string_param: id } : { int64_param: String(id) },
  sequence_start: { bool_param: start },
  sequence_end: { bool_param: end },
});

const streamRequest = (id: string, seq: number | string, data: Float32Array, start: boolean, end = false) => ({
  model_name: "detector-stream",
  id,
  parameters: seqParams(seq, start, end),
  inputs: [{ name: "update", datatype: "FP32", shape: [1, nIfo, UPDATE] }],
  raw_input_contents: [f32raw(data)],
});

const expectStatus = async (p: Promise<unknown>, code: status, message: RegExp) => {
  const err = await p.then(
    () => undefined,
    (e) => e,
  );
  expect(err, "expected the call to fail").toBeDefined();
  expect(err.code).toBe(code);
  expect(err.details).toMatch(message);
};

describe("embedded server against a protocol-only client", () => {
  let repo: string;
  let server: RunningServer;
  let c: ReturnType<typeof protocolClients>;
  let detector: ort.InferenceSession;

  beforeAll(async () => {
    repo = handWrittenRepository();
    server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: 1, logger: silent });
    c = protocolClients(`127.0.0.1:${server.port}`);
    detector = await ort.InferenceSession.create(readFileSync(join(repo, "detector/1/model.onnx")), { intraOpNumThreads: 1 });
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
  });

  it("answers health: live, ready, model ready and grpc.health.v1", async () => {
    expect(await c.rpc("ServerLive")).toEqual({ live: true });
    expect(await c.rpc("ServerReady")).toEqual({ ready: true });
    expect(await c.rpc("ModelReady", { name: "detector" })).toEqual({ ready: true });
    expect(await c.rpc("ModelReady", { name: "detector", version: "1" })).toEqual({ ready: true });
    expect(await c.rpc("ModelReady", { name: "detector", version: "7" })).toEqual({ ready: false });
    expect(await c.rpc("ModelReady", { name: "nope" })).toEqual({ ready: false });
    expect(await c.check("")).toEqual({ status: "SERVING" });
    expect(await c.check("inference.GRPCInferenceService")).toEqual({ status: "SERVING" });
    await expectStatus(c.check("other.Service"), status.NOT_FOUND, /unknown service 'other.Service'/);
  });

  it("answers server and model metadata", async () => {
    const sm = await c.rpc("ServerMetadata");
    expect(sm.name).toBe("timeslide");
    expect(sm.extensions).toContain("sequence");
    const md = await c.rpc("ModelMetadata", { name: "detector" });
    expect(md).toEqual({
      name: "detector",
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: [{ name: "whitened", datatype: "FP32", shape: ["-1", String(nIfo), String(kernel)] }],
      outputs: [{ name: "detection_statistic", datatype: "FP32", shape: ["-1", "1"] }],
    });
    const ens = await c.rpc("ModelMetadata", { name: "detector-stream" });
    expect(ens.platform).toBe("ensemble");
    expect(ens.inputs[0].shape).toEqual(["1", String(nIfo), String(UPDATE)]);
    // Auto-completed from the ONNX graph: batch dimension left out of dims.
    const scale = await c.rpc("ModelMetadata", { name: "scale" });
    expect(scale.inputs).toEqual([{ name: "x", datatype: "FP32", shape: ["-1", "3"] }]);
    await expectStatus(c.rpc("ModelMetadata", { name: "nope" }), status.NOT_FOUND, /Request for unknown model: 'nope' is not found/);
    await expectStatus(c.rpc("ModelMetadata", { name: "detector", version: "3" }), status.NOT_FOUND, /'detector' version 3 is not found/);
  });

  it("answers the model config parsed from config.pbtxt", async () => {
    const { config } = await c.rpc("ModelConfig", { name: "snapshotter" });
    expect(config.name).toBe("snapshotter");
    expect(config.backend).toBe("onnxruntime");
    expect(config.input[0]).toMatchObject({ name: "update", data_type: "TYPE_FP32", dims: ["1", String(nIfo), String(UPDATE)] });
    expect(config.sequence_batching.max_sequence_idle_microseconds).toBe("60000000");
    expect(config.sequence_batching.state[0]).toMatchObject({
      input_name: "snapshot",
      output_name: "snapshot_out",
      dims: ["1", String(nIfo), String(STATE)],
    });
    expect(config.sequence_batching.state[0].initial_state[0].zero_data).toBe(true);
    expect(config.sequence_batching.control_input[0].control[0]).toMatchObject({ kind: "CONTROL_SEQUENCE_START", fp32_false_true: [0, 1] });
    expect(config.version_policy).toMatchObject({ latest: { num_versions: 1 } });
    const ens = (await c.rpc("ModelConfig", { name: "detector-stream" })).config;
    expect(ens.ensemble_scheduling.step[1]).toMatchObject({ model_name: "detector", input_map: { whitened: "snapshot_windows" } });
    await expectStatus(c.rpc("ModelConfig", { name: "nope" }), status.NOT_FOUND, /unknown model: 'nope'/);
  });

  it("infers with raw_input_contents, matching ONNX Runtime on the same model", async () => {
    const x = noise(3 * nIfo * kernel, 1);
    const res = await c.rpc("ModelInfer", {
      model_name: "detector",
      id: "r1",
      inputs: [{ name: "whitened", datatype: "FP32", shape: [3, nIfo, kernel] }],
      raw_input_contents: [f32raw(x)],
    });
    expect(res.id).toBe("r1");
    expect(res.model_version).toBe("1");
    expect(res.outputs).toEqual([{ name: "detection_statistic", datatype: "FP32", shape: ["3", "1"], parameters: {}, contents: null }]);
    const want = (await detector.run({ whitened: new ort.Tensor("float32", x, [3, nIfo, kernel]) })).detection_statistic.data;
    expect(Array.from(rawf32(res.raw_output_contents[0]))).toEqual(Array.from(want as Float32Array));
  });

  it("infers with typed contents and returns only the requested outputs", async () => {
    const x = [1, 2, 3, -1, -2, -3];
    const res = await c.rpc("ModelInfer", {
      model_name: "scale",
      inputs: [{ name: "x", datatype: "FP32", shape: [2, 3], contents: { fp32_contents: x } }],
      outputs: [{ name: "y" }],
    });
    expect(Array.from(rawf32(res.raw_output_contents[0]))).toEqual(x.map((v) => 2 * v));
    await expectStatus(
      c.rpc("ModelInfer", { model_name: "scale", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }], outputs: [{ name: "z" }] }),
      status.INVALID_ARGUMENT,
      /unexpected inference output 'z' for model 'scale'/,
    );
  });

  it("answers errors with Triton's status codes, naming the tensor and expected shape", async () => {
    const req = (over: object) => ({
      model_name: "detector",
      inputs: [{ name: "whitened", datatype: "FP32", shape: [1, nIfo, kernel] }],
      raw_input_contents: [f32raw(new Float32Array(nIfo * kernel))],
      ...over,
    });
    await expectStatus(c.rpc("ModelInfer", req({ model_name: "nope" })), status.NOT_FOUND, /Request for unknown model: 'nope' is not found/);
    await expectStatus(
      c.rpc("ModelInfer", req({ inputs: [{ name: "whitened", datatype: "FP32", shape: [1, nIfo, kernel - 1] }], raw_input_contents: [f32raw(new Float32Array(nIfo * (kernel - 1)))] })),
      status.INVALID_ARGUMENT,
      new RegExp(`unexpected shape for input 'whitened' for model 'detector'. Expected \\[-1,${nIfo},${kernel}\\], got \\[1,${nIfo},${kernel - 1}\\]`),
    );
    await expectStatus(
      c.rpc("ModelInfer", req({ inputs: [{ name: "whitened", datatype: "FP64", shape: [1, nIfo, kernel] }], raw_input_contents: [Buffer.alloc(8 * nIfo * kernel)] })),
      status.INVALID_ARGUMENT,
      /input 'whitened' data-type is 'FP64', but model 'detector' expects 'FP32'/,
    );
    await expectStatus(
      c.rpc("ModelInfer", req({ inputs: [{ name: "whitened", datatype: "FP32", shape: [9, nIfo, kernel] }], raw_input_contents: [Buffer.alloc(4 * 9 * nIfo * kernel)] })),
      status.INVALID_ARGUMENT,
      /batch-size must be <= 8 for 'detector'/,
    );
    await expectStatus(
      c.rpc("ModelInfer", req({ raw_input_contents: [Buffer.alloc(10)] })),
      status.INVALID_ARGUMENT,
      /unexpected total byte size 10 for input 'whitened', expecting 256/,
    );
    await expectStatus(
      c.rpc("ModelInfer", req({ inputs: [{ name: "strain", datatype: "FP32", shape: [1, nIfo, kernel] }] })),
      status.INVALID_ARGUMENT,
      /unexpected inference input 'strain' for model 'detector'/,
    );
    await expectStatus(c.rpc("ModelInfer", { model_name: "detector" }), status.INVALID_ARGUMENT, /missing required input\(s\) 'whitened'/);
    const update = { inputs: [{ name: "update", datatype: "FP32", shape: [1, nIfo, UPDATE] }], raw_input_contents: [f32raw(new Float32Array(nIfo * UPDATE))] };
    await expectStatus(
      c.rpc("ModelInfer", { model_name: "snapshotter", ...update }),
      status.INVALID_ARGUMENT,
      /model 'snapshotter' must specify a non-zero or non-empty correlation ID/,
    );
    await expectStatus(
      c.rpc("ModelInfer", { model_name: "snapshotter", parameters: seqParams(4242, false), ...update }),
      status.INVALID_ARGUMENT,
      /sequence 4242 to model 'snapshotter' must specify the START flag/,
    );
  });

  it("streams through the snapshotter ensemble with the same detection statistic as full windows", async () => {
    const steps = 6;
    const stream = [0, 1].map((i) => noise(steps * UPDATE, 10 + i));
    const s = openStream(c.inference);
    for (let k = 0; k < steps; k++) s.send(streamRequest(`u${k}`, 77, updateAt(stream, k), k === 0, k === steps - 1));
    for (let k = 0; k < steps; k++) {
      const r = await s.response(`u${k}`);
      expect(r.error_message).toBe("");
      expect(r.infer_response.outputs[0].shape).toEqual([String(batch), "1"]);
      const streamed = rawf32(r.infer_response.raw_output_contents[0]);
      const full = await c.rpc("ModelInfer", {
        model_name: "detector",
        inputs: [{ name: "whitened", datatype: "FP32", shape: [batch, nIfo, kernel] }],
        raw_input_contents: [f32raw(fullWindows(stream, (k + 1) * UPDATE))],
      });
      const direct = rawf32(full.raw_output_contents[0]);
      for (let j = 0; j < batch; j++) expect(Math.abs(streamed[j] - direct[j])).toBeLessThanOrEqual(1e-5 * Math.max(1, Math.abs(direct[j])));
    }
    await s.end();
  });

  it("keeps interleaved sequences on one stream independent, starts new ones from zero, reports errors in-band", async () => {
    const steps = 4;
    const a = [0, 1].map((i) => noise(steps * UPDATE, 100 + i));
    const b = [0, 1].map((i) => noise(steps * UPDATE, 200 + i));
    const run = async (ids: Array<[number | string, Float32Array[]]>) => {
      const s = openStream(c.inference);
      const out = new Map<string, Float32Array[]>();
      for (let k = 0; k < steps; k++) {
        for (const [seq, data] of ids) s.send(streamRequest(`${seq}-${k}`, seq, updateAt(data, k), k === 0));
        if (k === 1) s.send(streamRequest("bad", 999, updateAt(a, 0), false)); // no START: in-band error
      }
      const bad = await s.response("bad");
      expect(bad.error_message).toMatch(/sequence 999 to model 'snapshotter' must specify the START flag/);
      for (const [seq] of ids) {
        const rs = [];
        for (let k = 0; k < steps; k++) {
          const r = await s.response(`${seq}-${k}`);
          expect(r.error_message).toBe("");
          rs.push(rawf32(r.infer_response.raw_output_contents[0]));
        }
        out.set(String(seq), rs);
      }
      await s.end();
      return out;
    };
    const together = await run([
      [5, a],
      ["seq-b", b],
    ]);
    const alone = await run([[6, a]]);
    const aloneB = await run([["other-b", b]]);
    for (let k = 0; k < steps; k++) {
      expect(Array.from(together.get("5")![k])).toEqual(Array.from(alone.get("6")![k]));
      expect(Array.from(together.get("seq-b")![k])).toEqual(Array.from(aloneB.get("other-b")![k]));
    }
    expect(Array.from(together.get("5")![0])).not.toEqual(Array.from(together.get("seq-b")![0]));
    // Reusing id 5 with START resets its state: the same outputs again.
    const again = await run([[5, a]]);
    for (let k = 0; k < steps; k++) expect(Array.from(again.get("5")![k])).toEqual(Array.from(alone.get("6")![k]));
  });

  it("drops a sequence's state at sequence_end", async () => {
    const u = f32raw(noise(nIfo * UPDATE, 5));
    const req = (start: boolean, end: boolean) => ({
      model_name: "snapshotter",
      parameters: seqParams("ends", start, end),
      inputs: [{ name: "update", datatype: "FP32", shape: [1, nIfo, UPDATE] }],
      raw_input_contents: [u],
    });
    await c.rpc("ModelInfer", req(true, false));
    await c.rpc("ModelInfer", req(false, true));
    await expectStatus(c.rpc("ModelInfer", req(false, false)), status.INVALID_ARGUMENT, /sequence ends to model 'snapshotter' must specify the START flag/);
  });

  it("gathers concurrent requests into one run (dynamic batching)", async () => {
    const before = (await c.rpc("ModelStatistics", { name: "detector" })).model_stats[0];
    const xs = Array.from({ length: 16 }, (_, i) => noise(nIfo * kernel, 300 + i));
    const results = await Promise.all(
      xs.map((x) =>
        c.rpc("ModelInfer", {
          model_name: "detector",
          inputs: [{ name: "whitened", datatype: "FP32", shape: [1, nIfo, kernel] }],
          raw_input_contents: [f32raw(x)],
        }),
      ),
    );
    for (let i = 0; i < xs.length; i++) {
      const want = (await detector.run({ whitened: new ort.Tensor("float32", xs[i], [1, nIfo, kernel]) })).detection_statistic.data as Float32Array;
      expect(Math.abs(rawf32(results[i].raw_output_contents[0])[0] - want[0])).toBeLessThanOrEqual(1e-5 * Math.abs(want[0]));
    }
    const after = (await c.rpc("ModelStatistics", { name: "detector" })).model_stats[0];
    expect(Number(after.inference_count) - Number(before.inference_count)).toBe(16);
    const executions = Number(after.execution_count) - Number(before.execution_count);
    expect(executions).toBeLessThan(16);
    expect(after.batch_stats.some((b: { batch_size: string }) => Number(b.batch_size) > 1)).toBe(true);
  });

  it("reports model statistics", async () => {
    const all = await c.rpc("ModelStatistics", {});
    const names = all.model_stats.map((s: { name: string }) => s.name).sort();
    expect(names).toEqual(["detector", "detector-stream", "scale", "snapshotter"]);
    const det = (await c.rpc("ModelStatistics", { name: "detector", version: "1" })).model_stats[0];
    expect(Number(det.inference_count)).toBeGreaterThan(0);
    expect(Number(det.inference_stats.success.count)).toBeGreaterThan(0);
    expect(Number(det.inference_stats.success.ns)).toBeGreaterThan(0);
    expect(Number(det.inference_stats.fail.count)).toBeGreaterThan(0); // the shape/dtype errors above
    expect(Number(det.inference_stats.compute_infer.ns)).toBeGreaterThan(0);
    expect(Number(det.last_inference)).toBeGreaterThan(Date.now() - 60_000);
    const ens = (await c.rpc("ModelStatistics", { name: "detector-stream" })).model_stats[0];
    expect(Number(ens.inference_count)).toBeGreaterThanOrEqual(6);
    await expectStatus(c.rpc("ModelStatistics", { name: "nope" }), status.NOT_FOUND, /unknown model: 'nope'/);
  });

  it("indexes, unloads and loads models, picking up new versions", async () => {
    const idx = await c.rpc("RepositoryIndex", { ready: true });
    expect(idx.models.map((m: { name: string }) => m.name)).toEqual(["detector", "detector-stream", "scale", "snapshotter"]);
    expect(idx.models[0]).toEqual({ name: "detector", version: "1", state: "READY", reason: "" });

    await c.rpc("RepositoryModelUnload", { model_name: "scale" });
    expect(await c.rpc("ModelReady", { name: "scale" })).toEqual({ ready: false });
    const after = await c.rpc("RepositoryIndex", {});
    expect(after.models.find((m: { name: string }) => m.name === "scale")).toEqual({ name: "scale", version: "", state: "UNAVAILABLE", reason: "unloaded" });
    expect((await c.rpc("RepositoryIndex", { ready: true })).models.map((m: { name: string }) => m.name)).not.toContain("scale");
    await expectStatus(
      c.rpc("ModelInfer", { model_name: "scale", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] }),
      status.UNAVAILABLE,
      /'scale' is not ready/,
    );

    copyVersion(repo, "scale", 1, 2);
    await c.rpc("RepositoryModelLoad", { model_name: "scale" });
    expect(await c.rpc("ModelReady", { name: "scale" })).toEqual({ ready: true });
    expect((await c.rpc("ModelMetadata", { name: "scale" })).versions).toEqual(["2"]);
    const res = await c.rpc("ModelInfer", { model_name: "scale", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } }] });
    expect(res.model_version).toBe("2");
    await expectStatus(c.rpc("RepositoryModelLoad", { model_name: "missing" }), status.INVALID_ARGUMENT, /failed to load 'missing'.*no model "missing"/);
  });

  it("reloads a model with a new version without dropping in-flight requests", async () => {
    const x = noise(4 * nIfo * kernel, 21);
    const want = Array.from((await detector.run({ whitened: new ort.Tensor("float32", x, [4, nIfo, kernel]) })).detection_statistic.data as Float32Array);
    const infer = () =>
      c.rpc("ModelInfer", {
        model_name: "detector",
        inputs: [{ name: "whitened", datatype: "FP32", shape: [4, nIfo, kernel] }],
        raw_input_contents: [f32raw(x)],
      });
    const before = Array.from({ length: 12 }, infer);
    copyVersion(repo, "detector", 1, 2);
    const load = c.rpc("RepositoryModelLoad", { model_name: "detector" });
    const during = Array.from({ length: 12 }, infer);
    await load;
    const after = await infer();
    const all = await Promise.all([...before, ...during]);
    for (const r of [...all, after]) {
      const got = Array.from(rawf32(r.raw_output_contents[0]));
      got.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThanOrEqual(1e-5 * Math.abs(want[i])));
    }
    expect(after.model_version).toBe("2");
    expect(new Set(all.map((r) => r.model_version))).toContain("1");
    expect((await c.rpc("ModelMetadata", { name: "detector" })).versions).toEqual(["2"]);
  });
});

describe("idle sequences", () => {
  it("are dropped after max_sequence_idle_microseconds", async () => {
    const repo = handWrittenRepository({ idleUs: 200_000 });
    const server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, logger: silent });
    const c = protocolClients(`127.0.0.1:${server.port}`);
    try {
      const req = (start: boolean) => ({
        model_name: "snapshotter",
        parameters: seqParams(12, start),
        inputs: [{ name: "update", datatype: "FP32", shape: [1, nIfo, UPDATE] }],
        raw_input_contents: [f32raw(new Float32Array(nIfo * UPDATE))],
      });
      await c.rpc("ModelInfer", req(true));
      await c.rpc("ModelInfer", req(false)); // still alive
      await new Promise((r) => setTimeout(r, 700));
      await expectStatus(c.rpc("ModelInfer", req(false)), status.INVALID_ARGUMENT, /sequence 12 to model 'snapshotter' must specify the START flag/);
    } finally {
      c.close();
      await server.close();
    }
  });
});

describe("repositories written for a Triton GPU site", () => {
  it("are served on CPU: KIND_GPU instances become CPU instances, the TensorRT block is ignored", async () => {
    const { mkdtempSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const { writeDemoRepository } = await import("@timeslide/model-repo");
    const repo = mkdtempSync(join(tmpdir(), "gpu-repo-"));
    writeDemoRepository(repo, { ...GEOM, gpu: { count: 2, tensorrtFp16: true } });
    const server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, logger: silent });
    const c = protocolClients(`127.0.0.1:${server.port}`);
    try {
      const { config } = await c.rpc("ModelConfig", { name: "detector" });
      expect(config.instance_group[0]).toMatchObject({ kind: "KIND_GPU", count: 2 });
      expect(config.optimization.execution_accelerators.gpu_execution_accelerator[0].name).toBe("tensorrt");
      const res = await c.rpc("ModelInfer", {
        model_name: "detector",
        inputs: [{ name: "whitened", datatype: "FP32", shape: [2, nIfo, kernel] }],
        raw_input_contents: [f32raw(noise(2 * nIfo * kernel, 9))],
      });
      expect(res.outputs[0].shape).toEqual(["2", "1"]);
    } finally {
      c.close();
      await server.close();
    }
  });
});
