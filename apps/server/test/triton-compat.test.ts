// Behaving as Triton does, checked against our real embedded server with
// real ONNX models: a repository written for current Triton (the fields of
// today's model_config.proto) loads and serves; reserved "triton_"
// parameter keys are refused with Triton's wording; a stream answers in
// request order even when a later request finishes first; Watch is
// UNIMPLEMENTED. Mostly through a client built only from the .proto files.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { status } from "@grpc/grpc-js";
import { decodeUint64MapKey, InferenceClient, ParameterError } from "@timeslide/kserve";
import { buildSnapshotter, GraphBuilder, mulberry32 } from "@timeslide/model-repo";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../src/index.js";
import { f32raw, GEOM, protocolClients, rawf32, STATE, UPDATE } from "./helpers.js";

const { nIfo } = GEOM;
/** Side of the slow model's square input; its cost is DEPTH matrix products of this size. */
const N = 256;
const DEPTH = 48;

function noise(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** y = tanh(tanh(x·W)·W ...), DEPTH products of [N, N] matrices: tens to hundreds of ms on one thread. */
function slowModel(): Uint8Array {
  const g = new GraphBuilder("slow");
  let v = g.input("x", "float32", [N, N]);
  const w = g.constant(noise(N * N, 7).map((a) => a / Math.sqrt(N)), [N, N]);
  for (let i = 0; i < DEPTH; i++) v = g.node("Tanh", [g.node("MatMul", [v, w])]);
  g.output(v, "y", "float32", [N, N]);
  return g.toBytes();
}

/** y = 2x on [batch, 3]. */
function fastModel(): Uint8Array {
  const g = new GraphBuilder("fast");
  const x = g.input("x", "float32", ["batch", 3]);
  g.output(g.node("Mul", [x, g.constant(new Float32Array([2]), [1])]), "y", "float32", ["batch", 3]);
  return g.toBytes();
}

/** A repository whose configs use fields of current Triton's model_config.proto. */
function currentTritonRepository(): string {
  const repo = mkdtempSync(join(tmpdir(), "triton-compat-"));
  const put = (path: string, data: string | Uint8Array) => {
    mkdirSync(join(repo, path, ".."), { recursive: true });
    writeFileSync(join(repo, path), data);
  };
  put("slow/1/model.onnx", slowModel());
  put(
    "slow/config.pbtxt",
    `name: "slow"
backend: "onnxruntime"
max_batch_size: 0
input [ { name: "x" data_type: TYPE_FP32 dims: [ ${N}, ${N} ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ ${N}, ${N} ] } ]
instance_group [ { kind: KIND_CPU count: 1 } ]
`,
  );
  put("fast/1/model.onnx", fastModel());
  put(
    "fast/config.pbtxt",
    `name: "fast"
backend: "onnxruntime"
runtime: "libtriton_onnxruntime.so"
max_batch_size: 4
input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] is_non_linear_format_io: false } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] is_non_linear_format_io: false } ]
dynamic_batching {
  max_queue_delay_microseconds: 0
  priority_levels: 18446744073709551615
  default_priority_level: 4294967296
  priority_queue_policy { key: 4294967296 value { timeout_action: DELAY max_queue_size: 8 } }
  priority_queue_policy { key: 1 value { max_queue_size: 2 } }
}
model_metrics {
  metric_control [ { metric_identifier { family: "nv_inference_request_duration" } histogram_options { buckets: [ 0.5, 1, 5 ] } } ]
}
`,
  );
  put("fast-twice/1/.keep", "");
  put(
    "fast-twice/config.pbtxt",
    `name: "fast-twice"
platform: "ensemble"
max_batch_size: 4
input [ { name: "x" data_type: TYPE_FP32 dims: [ 3 ] } ]
output [ { name: "y" data_type: TYPE_FP32 dims: [ 3 ] } ]
ensemble_scheduling {
  step [
    { model_name: "fast" model_version: -1 input_map { key: "x" value: "x" } output_map { key: "y" value: "once" } },
    { model_name: "fast" model_version: -1 input_map { key: "x" value: "once" } output_map { key: "y" value: "y" } }
  ]
  max_inflight_requests: 4
}
`,
  );
  put("snapshotter/1/model.onnx", buildSnapshotter(GEOM));
  put(
    "snapshotter/config.pbtxt",
    `name: "snapshotter"
backend: "onnxruntime"
max_batch_size: 0
input { name: "update" data_type: TYPE_FP32 dims: [ 1, ${nIfo}, ${UPDATE} ] }
output { name: "windows" data_type: TYPE_FP32 dims: [ ${GEOM.batch}, ${nIfo}, ${GEOM.kernel} ] }
sequence_batching {
  oldest { max_candidate_sequences: 4 preserve_ordering: true }
  control_input [ { name: "START" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] } ]
  state [
    {
      input_name: "snapshot" output_name: "snapshot_out" data_type: TYPE_FP32 dims: [ 1, ${nIfo}, ${STATE} ]
      initial_state { data_type: TYPE_FP32 dims: [ 1, ${nIfo}, ${STATE} ] zero_data: true name: "zeros" }
      use_same_buffer_for_input_output: true
      use_growable_memory: false
    }
  ]
  iterative_sequence: true
}
`,
  );
  return repo;
}

const slowRequest = (id: string) => ({
  model_name: "slow",
  id,
  inputs: [{ name: "x", datatype: "FP32", shape: [N, N] }],
  raw_input_contents: [f32raw(noise(N * N, 11))],
});
const fastRequest = (id: string, x = new Float32Array([1, 2, 3]), parameters: object = {}) => ({
  model_name: "fast",
  id,
  parameters,
  inputs: [{ name: "x", datatype: "FP32", shape: [1, 3] }],
  raw_input_contents: [f32raw(x)],
});

const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e) => e,
  );

describe("a repository and requests as current Triton takes them", () => {
  let repo: string;
  let server: RunningServer;
  let c: ReturnType<typeof protocolClients>;
  const logs: Array<{ level: number; msg: string; model?: string }> = [];

  beforeAll(async () => {
    repo = currentTritonRepository();
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const line of String(chunk).split("\n")) if (line) logs.push(JSON.parse(line));
        done();
      },
    });
    server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: 1, logger: pino({ level: "warn" }, sink) });
    c = protocolClients(`127.0.0.1:${server.port}`);
  });
  afterAll(async () => {
    c?.close();
    await server?.close();
  });

  it("loads every model of a repository written for current Triton, warning where a field is not followed", async () => {
    expect(await c.rpc("ServerReady")).toEqual({ ready: true });
    const index = (await c.rpc("RepositoryIndex", { ready: true })).models.map((m: { name: string }) => m.name).sort();
    expect(index).toEqual(["fast", "fast-twice", "slow", "snapshotter"]);
    const warnings = logs.filter((l) => l.level === 40).map((l) => `${l.model}: ${l.msg}`);
    expect(warnings).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^fast: runtime "libtriton_onnxruntime.so" is ignored/),
        expect.stringMatching(/^fast-twice: ensemble_scheduling.max_inflight_requests: 4 is not enforced/),
        expect.stringMatching(/^snapshotter: sequence_batching.iterative_sequence is not supported/),
      ]),
    );
    // Served: a plain model, the ensemble and a sequence.
    const y = await c.rpc("ModelInfer", fastRequest("f"));
    expect(Array.from(rawf32(y.raw_output_contents[0]))).toEqual([2, 4, 6]);
    const yy = await c.rpc("ModelInfer", { ...fastRequest("ff"), model_name: "fast-twice" });
    expect(Array.from(rawf32(yy.raw_output_contents[0]))).toEqual([4, 8, 12]);
    const w = await c.rpc("ModelInfer", {
      model_name: "snapshotter",
      parameters: { sequence_id: { int64_param: "9" }, sequence_start: { bool_param: true } },
      inputs: [{ name: "update", datatype: "FP32", shape: [1, nIfo, UPDATE] }],
      raw_input_contents: [f32raw(noise(nIfo * UPDATE, 3))],
    });
    expect(w.outputs[0].shape.map(Number)).toEqual([GEOM.batch, nIfo, GEOM.kernel]);
  });

  it("answers ModelConfig with the new fields, uint64 priorities beyond 2^32 included", async () => {
    const { config } = await c.rpc("ModelConfig", { name: "fast" });
    expect(config.runtime).toBe("libtriton_onnxruntime.so");
    expect(config.input[0].is_non_linear_format_io).toBe(false);
    expect(config.model_metrics.metric_control[0]).toMatchObject({
      metric_identifier: { family: "nv_inference_request_duration" },
      histogram_options: { buckets: [0.5, 1, 5] },
    });
    const db = config.dynamic_batching;
    expect(db.priority_levels).toBe("18446744073709551615");
    expect(db.default_priority_level).toBe("4294967296");
    // proto-loader hands 64-bit map keys over in protobufjs' internal form; the wire bytes are the levels.
    const levels = Object.fromEntries(Object.entries(db.priority_queue_policy).map(([k, v]) => [decodeUint64MapKey(k), (v as { max_queue_size: number }).max_queue_size]));
    expect(levels).toEqual({ "4294967296": 8, "1": 2 });
    const seq = (await c.rpc("ModelConfig", { name: "snapshotter" })).config.sequence_batching;
    expect(seq.iterative_sequence).toBe(true);
    expect(seq.oldest.preserve_ordering).toBe(true);
    expect(seq.state[0]).toMatchObject({ use_same_buffer_for_input_output: true, use_growable_memory: false });
    expect((await c.rpc("ModelConfig", { name: "fast-twice" })).config.ensemble_scheduling.max_inflight_requests).toBe(4);
    // Our client gives the map back keyed by decimal levels.
    const client = new InferenceClient(`127.0.0.1:${server.port}`);
    try {
      const viaClient = await client.modelConfig("fast");
      expect(Object.keys(viaClient.dynamic_batching!.priority_queue_policy).sort()).toEqual(["1", "4294967296"]);
    } finally {
      client.close();
    }
  });

  it("refuses reserved triton_ parameter keys as Triton does, on unary calls and in-band on a stream", async () => {
    const err = await failure(c.rpc("ModelInfer", fastRequest("r", undefined, { triton_mine: { bool_param: true } })));
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toBe(
      "parameter keys starting with 'triton_' are reserved for Triton usage. Only the following keys starting with 'triton_' are allowed: triton_enable_empty_final_response",
    );
    // The one Triton allows, as a bool; anything else for it is refused.
    const ok = await c.rpc("ModelInfer", fastRequest("r2", undefined, { triton_enable_empty_final_response: { bool_param: true } }));
    expect(Array.from(rawf32(ok.raw_output_contents[0]))).toEqual([2, 4, 6]);
    const bad = await failure(c.rpc("ModelInfer", fastRequest("r3", undefined, { triton_enable_empty_final_response: { int64_param: "1" } })));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.details).toBe("invalid value type for 'triton_enable_empty_final_response' parameter, expected bool_param.");
    // Custom parameters of Triton's types pass (a double too, as Triton accepts since 2024).
    await c.rpc("ModelInfer", fastRequest("r4", undefined, { mine: { int64_param: "3" }, note: { string_param: "x" }, on: { bool_param: true }, ratio: { double_param: 0.5 } }));

    const stream = c.inference.ModelStreamInfer();
    const got: Array<{ id: string; error: string }> = [];
    const done = new Promise<void>((resolve) => {
      stream.on("data", (r: { error_message: string; infer_response: { id: string } }) => got.push({ id: r.infer_response.id, error: r.error_message }));
      stream.on("status", () => resolve());
    });
    stream.write(fastRequest("s1", undefined, { triton_x: { string_param: "y" } }));
    stream.write(fastRequest("s2"));
    stream.end();
    await done;
    expect(got).toEqual([
      { id: "s1", error: expect.stringMatching(/^parameter keys starting with 'triton_' are reserved for Triton usage/) },
      { id: "s2", error: "" },
    ]);
  });

  it("our client refuses a non-integer or reserved custom parameter before sending, saying what to do", async () => {
    const client = new InferenceClient(`127.0.0.1:${server.port}`);
    try {
      const x = { name: "x", datatype: "FP32" as const, shape: [1, 3], data: new Float32Array([1, 2, 3]) };
      const e1 = await failure(client.infer({ model: "fast", inputs: [x], parameters: { threshold: 0.75 } }));
      expect(e1).toBeInstanceOf(ParameterError);
      expect(e1.message).toMatch(/threshold: 0\.75 is not an integer; Triton takes int64, bool and string parameters .* send it as a string, e\.g\. "0\.75"/);
      const e2 = await failure(client.openStream().infer({ model: "fast", inputs: [x], parameters: { triton_note: "x" } }));
      expect(e2).toBeInstanceOf(ParameterError);
      expect(e2.message).toMatch(/request parameter "triton_note": parameter keys starting with 'triton_' are reserved for Triton usage/);
      // As a string it goes through.
      const r = await client.infer({ model: "fast", inputs: [x], parameters: { threshold: "0.75" }, priority: 1 });
      expect(Array.from(r.outputs[0].data as Float32Array)).toEqual([2, 4, 6]);
    } finally {
      client.close();
    }
  });

  it("streams answers in request order when a later request finishes first", async () => {
    // The premise: run side by side, the fast model answers long before the slow one.
    const finished: string[] = [];
    await Promise.all([
      c.rpc("ModelInfer", slowRequest("u-slow")).then(() => finished.push("slow")),
      c.rpc("ModelInfer", fastRequest("u-fast")).then(() => finished.push("fast")),
    ]);
    expect(finished).toEqual(["fast", "slow"]);

    // On one stream: slow, then fast ones and a failing one; answers come in the order sent.
    const stream = c.inference.ModelStreamInfer();
    const order: string[] = [];
    const errors = new Map<string, string>();
    const done = new Promise<void>((resolve) => {
      stream.on("data", (r: { error_message: string; infer_response: { id: string } }) => {
        order.push(r.infer_response.id);
        if (r.error_message) errors.set(r.infer_response.id, r.error_message);
      });
      stream.on("status", () => resolve());
    });
    stream.write(slowRequest("a"));
    stream.write(fastRequest("b"));
    stream.write({ ...fastRequest("c"), model_name: "nope" });
    stream.write(fastRequest("d", new Float32Array([5, 6, 7])));
    stream.write(slowRequest("e"));
    stream.write(fastRequest("f"));
    stream.end();
    await done;
    expect(order).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect([...errors.keys()]).toEqual(["c"]);
    expect(errors.get("c")).toMatch(/unknown model: 'nope'/);
  });

  it("our client's stream still matches every answer to its request", async () => {
    const client = new InferenceClient(`127.0.0.1:${server.port}`);
    try {
      const stream = client.openStream();
      const resolved: string[] = [];
      const slow = stream
        .infer({ model: "slow", inputs: [{ name: "x", datatype: "FP32", shape: [N, N], data: noise(N * N, 11) }] })
        .then((r) => (resolved.push("slow"), r));
      const fasts = [1, 2, 3].map((k) =>
        stream
          .infer({ model: "fast", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: new Float32Array([k, 10 * k, 100 * k]) }] })
          .then((r) => (resolved.push(`fast${k}`), r)),
      );
      const bad = stream.infer({ model: "nope", inputs: [{ name: "x", datatype: "FP32", shape: [1, 3], data: new Float32Array(3) }] }).catch((e) => e);
      const [s, ...fs] = await Promise.all([slow, ...fasts]);
      expect(s.model_name).toBe("slow");
      expect(s.outputs[0].shape).toEqual([N, N]);
      fs.forEach((r, i) => {
        const k = i + 1;
        expect(r.model_name).toBe("fast");
        expect(Array.from(r.outputs[0].data as Float32Array)).toEqual([2 * k, 20 * k, 200 * k]);
      });
      const e = await bad;
      expect(e.inBand).toBe(true);
      expect(e.details).toMatch(/unknown model: 'nope'/);
      expect(resolved).toEqual(["slow", "fast1", "fast2", "fast3"]);
      await stream.end();
    } finally {
      client.close();
    }
  });

  it("answers grpc.health.v1 Watch UNIMPLEMENTED, as Triton does (Check still answers)", async () => {
    expect(await c.check("")).toEqual({ status: "SERVING" });
    const call = c.health.Watch({ service: "" });
    const err = await new Promise<{ code: number; details: string }>((resolve) => {
      call.on("data", () => resolve({ code: -1, details: "answered" }));
      call.on("error", (e: { code: number; details: string }) => resolve(e));
    });
    expect(err.code).toBe(status.UNIMPLEMENTED);
  });
});
