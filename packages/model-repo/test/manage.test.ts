// add / stream / check on graphs built here: the config written from a graph,
// the streaming wiring by the model's own names, and the load rules that the
// server and `timeslide model-repo check` share.
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import {
  GraphBuilder,
  addModel,
  addStreaming,
  checkRepository,
  configForOnnx,
  configFromGraph,
  detectorConfig,
  ensembleProblems,
  formatModelConfig,
  gpuConfigNotes,
  onnxConfigProblems,
  readModel,
  readOnnxSignature,
  repositoryLookup,
  tensorConfig,
  writeDemoRepository,
  type Dim,
} from "../src/index.js";

const K = 32;
function net(o: { input?: string; output?: string; batch?: Dim; scalar?: boolean; twoOutputs?: boolean } = {}): Uint8Array {
  const batch = o.batch ?? "batch";
  const g = new GraphBuilder("net");
  const x = g.input(o.input ?? "strain", "float32", [batch, 2, K]);
  const sq = g.node("Mul", [x, x]);
  let stat = g.node("ReduceMean", [sq], { axes: [1, 2], keepdims: 0 });
  if (!o.scalar) stat = g.node("Unsqueeze", [stat, g.int64s([1])]);
  g.output(stat, o.output ?? "logits", "float32", o.scalar ? [batch] : [batch, 1]);
  if (o.twoOutputs) g.output(g.node("ReduceMean", [sq], { axes: [2], keepdims: 0 }), "embedding", "float32", [batch, 2]);
  return g.toBytes();
}
const tmp = () => mkdtempSync(join(tmpdir(), "model-repo-manage-"));

describe("configFromGraph / addModel", () => {
  it("a dynamic first axis becomes max_batch_size; a [batch] output gets dims [1] and an empty reshape; a fixed axis is kept", () => {
    const c = configFromGraph("m", readOnnxSignature(net({ scalar: true })));
    expect(c).toMatchObject({
      max_batch_size: 128,
      input: [{ name: "strain", data_type: "TYPE_FP32", dims: [2, K] }],
      output: [{ name: "logits", data_type: "TYPE_FP32", dims: [1], reshape: { shape: [] } }],
      dynamic_batching: { max_queue_delay_microseconds: 0 },
    });
    expect(configFromGraph("f", readOnnxSignature(net({ batch: 8 })))).toMatchObject({ max_batch_size: 0, input: [{ dims: [8, 2, K] }], output: [{ dims: [8, 1] }] });
    expect(() => configFromGraph("f", readOnnxSignature(net({ batch: 8 })), { maxBatchSize: 4 })).toThrow(/'strain' has shape \[8, 2, 32\], 'logits' has shape \[8, 1\]/);
  });

  it("adds versions in order; the written config passes the load rules and reads back", () => {
    const dir = tmp();
    expect(addModel(dir, "m", net({ scalar: true })).version).toBe(1);
    expect(addModel(dir, "m", net({ scalar: true })).version).toBe(2);
    const e = readModel(dir, "m");
    expect(e.versions).toEqual([1, 2]);
    expect(e.config.output?.[0].reshape).toBeDefined();
    expect(checkRepository(dir).models.map((m) => m.problems)).toEqual([[]]);
    expect(() => addModel(dir, "../x", net())).toThrow(/model name "..\/x"/);
  });
});

describe("addStreaming", () => {
  it("wires the snapshotter to the model's own input and returns its output; the ensemble runs equal to the model", async () => {
    const dir = tmp();
    addModel(dir, "mynet", net());
    const r = addStreaming(dir, "mynet-stream", { model: "mynet", kernel: K, stride: 8, batch: 4 });
    expect(r).toMatchObject({ input: "strain", output: "logits", nIfo: 2, updateSize: 32, stateSize: K + 3 * 8 });
    const ens = readModel(dir, "mynet-stream").config;
    expect(ens.ensemble_scheduling?.step[1]).toMatchObject({ model_name: "mynet", input_map: { strain: "windows" }, output_map: { logits: "logits" } });
    expect(ens.output).toEqual([{ name: "logits", data_type: "TYPE_FP32", dims: [4, 1] }]);
    expect(checkRepository(dir).models.flatMap((m) => m.problems)).toEqual([]);
    // the snapshotter's windows feed the model as they are
    const snap = await ort.InferenceSession.create(join(dir, "mynet-stream-snapshotter", "1", "model.onnx"));
    const out = await snap.run({
      update: new ort.Tensor("float32", new Float32Array(2 * 32).fill(1), [1, 2, 32]),
      snapshot: new ort.Tensor("float32", new Float32Array(2 * (K + 24)), [1, 2, K + 24]),
      START: new ort.Tensor("float32", new Float32Array([1]), [1]),
    });
    expect(out.windows.dims).toEqual([4, 2, K]);
  });

  it("refuses, naming the tensor: several outputs without --output, a wrong kernel, a batch the model can't take", () => {
    const dir = tmp();
    addModel(dir, "two", net({ twoOutputs: true }));
    expect(() => addStreaming(dir, "s", { model: "two", kernel: K, stride: 8, batch: 4 })).toThrow("model 'two' output: the model has 2 ('logits', 'embedding'); pass --output NAME to choose one");
    expect(addStreaming(dir, "s", { model: "two", kernel: K, stride: 8, batch: 4, output: "embedding" }).output).toBe("embedding");
    expect(() => addStreaming(dir, "s2", { model: "two", kernel: 64, stride: 8, batch: 4, output: "logits" })).toThrow(/input 'strain' takes windows of 32 samples .* but the kernel is 64 samples/);
    addModel(dir, "small", net(), { maxBatchSize: 2 });
    expect(() => addStreaming(dir, "s3", { model: "small", kernel: K, stride: 8, batch: 4 })).toThrow(/model 'small' has max_batch_size 2, below the 4 windows per update/);
    expect(() => addStreaming(dir, "s4", { model: "nothing", kernel: K, stride: 8, batch: 4 })).toThrow(/--model nothing: .*no model "nothing"/);
  });
});

describe("the load rules", () => {
  it("config against graph: names, data types, ranks, the batch axis", () => {
    const sig = readOnnxSignature(net({ batch: 8 }));
    expect(onnxConfigProblems(detectorConfig("d", 2, K, 16), sig, "d.onnx")).toEqual([
      "model 'd' input 'whitened': not an input of the graph d.onnx (its inputs: 'strain'); name it as the graph does in config.pbtxt, or write the config from the graph with `timeslide model-repo add`",
      "model 'd' output 'detection_statistic': not an output of the graph d.onnx (its outputs: 'logits'); name it as the graph does in config.pbtxt, or write the config from the graph with `timeslide model-repo add`",
      "model 'd': the graph d.onnx has input 'strain', which config.pbtxt does not declare (Triton feeds only declared inputs): add it to config.pbtxt",
    ]);
    const renamed = { ...detectorConfig("d", 2, K, 16), input: [{ name: "strain", data_type: "TYPE_FP64" as const, dims: [2, K] }], output: [{ name: "logits", data_type: "TYPE_FP32" as const, dims: [1] }] };
    const p = onnxConfigProblems(renamed, sig, "d.onnx");
    expect(p[0]).toBe("model 'd' input 'strain': config.pbtxt says TYPE_FP64, the graph d.onnx has TYPE_FP32 (re-export the model, or write the config from the graph with `timeslide model-repo add`)");
    expect(p[1]).toMatch(/^model 'd' input 'strain': max_batch_size 16 needs a dynamic first \(batch\) axis, but the graph d\.onnx has a fixed first axis of 8 \(shape \[8, 2, 32\]\)/);
  });

  it("ensemble wiring against the steps' configs; the demo repository passes", () => {
    const dir = tmp();
    writeDemoRepository(dir, { nIfo: 2, kernel: K, stride: 8, batch: 4 });
    expect(checkRepository(dir).models.flatMap((m) => m.problems)).toEqual([]);
    const lookup = repositoryLookup(dir);
    const ens = readModel(dir, "detector-stream").config;
    ens.ensemble_scheduling!.step[1].input_map = { strain: "windows" };
    expect(ensembleProblems(ens, lookup)).toEqual([
      "ensemble 'detector-stream' step 2 (model 'detector'): input_map maps 'windows' to 'strain', but model 'detector' has no input 'strain' (its inputs: 'whitened'); map it to the model's own input name (`timeslide model-repo stream` writes the wiring from the model's config)",
      `ensemble 'detector-stream' step 2 (model 'detector'): model 'detector' needs input 'whitened', which input_map does not feed (input_map: {"strain":"windows"})`,
    ]);
    ens.ensemble_scheduling!.step[0].model_name = "snap";
    expect(ensembleProblems(ens, lookup)[0]).toMatch(/step 1 \(model 'snap'\): .*no model "snap"/);
  });

  it("a folder without config.pbtxt is skipped with the command that writes one; a config that does not parse is skipped with its error", () => {
    const dir = tmp();
    mkdirSync(join(dir, "orphan", "1"), { recursive: true });
    writeFileSync(join(dir, "orphan", "1", "model.onnx"), net());
    mkdirSync(join(dir, "broken"));
    writeFileSync(join(dir, "broken", "config.pbtxt"), "name: broken\nplatform: \n");
    mkdirSync(join(dir, "noversion"));
    writeFileSync(join(dir, "noversion", "config.pbtxt"), formatModelConfig(configFromGraph("noversion", readOnnxSignature(net()))));
    const r = checkRepository(dir);
    expect(r.skipped.map((s) => s.folder)).toEqual(["broken", "orphan"]);
    expect(r.skipped[1].reason).toMatch(/no config\.pbtxt in .*orphan \(it holds .*orphan\/1\/model\.onnx: write the config from the graph with `timeslide model-repo add /);
    expect(r.skipped[0].reason).toMatch(/^config\.pbtxt does not parse: /);
    expect(r.models.map((m) => [m.name, m.problems])).toEqual([["noversion", [expect.stringMatching(/^model 'noversion': no version folder in .*\(expected .*noversion\/1\/model\.onnx; `timeslide model-repo add` creates it\)/)]]]);
    // add over the orphan's own file writes its config in place
    expect(addModel(dir, "orphan", join(dir, "orphan", "1", "model.onnx"), { version: 1 }).version).toBe(1);
    expect(checkRepository(dir).models.find((m) => m.name === "orphan")?.problems).toEqual([]);
  });
});

describe("scalar outputs: dims [1] + reshape [], one rule (tensorConfig)", () => {
  it("configFromGraph (add, the demo) and configForOnnx write the same tensors; Triton's 'must specify dims' never applies", () => {
    const sig = readOnnxSignature(net({ scalar: true }));
    const scalar = { name: "logits", data_type: "TYPE_FP32", dims: [1], reshape: { shape: [] } };
    expect(tensorConfig(sig.outputs[0], true)).toEqual(scalar);
    expect(tensorConfig({ name: "s", data_type: "TYPE_FP32", dims: [] }, false)).toEqual({ name: "s", data_type: "TYPE_FP32", dims: [1], reshape: { shape: [] } });
    expect(configForOnnx("m", sig, 16).output).toEqual([scalar]);
    expect(configFromGraph("m", sig).output).toEqual([scalar]);
    expect(configForOnnx("m", sig, 16).input).toEqual(configFromGraph("m", sig).input);
    // Every written tensor has dims, in every repository the demo writer makes.
    for (const gpu of [undefined, {}]) {
      const dir = tmp();
      writeDemoRepository(dir, { nIfo: 2, kernel: K, stride: 8, batch: 4, gpu });
      for (const m of ["detector", "snapshotter", "detector-stream"]) {
        const c = readModel(dir, m).config;
        for (const t of [...(c.input ?? []), ...(c.output ?? [])]) expect(t.dims.length, `${m} ${t.name}`).toBeGreaterThan(0);
      }
    }
  });
});

describe("GPU sites: add --device gpu", () => {
  it("writes KIND_GPU and the TensorRT FP16 block by default, none with tensorrtFp16: false; the embedded server's notes name both", () => {
    const dir = tmp();
    const on = addModel(dir, "m", net({ scalar: true }), { gpu: { count: 2 } }).config;
    expect(on.instance_group).toEqual([{ count: 2, kind: "KIND_GPU" }]);
    expect(on.optimization).toEqual({
      execution_accelerators: { gpu_execution_accelerator: [{ name: "tensorrt", parameters: { precision_mode: "FP16", max_workspace_size_bytes: "1073741824" } }] },
    });
    expect(on.output?.[0]).toMatchObject({ dims: [1], reshape: { shape: [] } });
    expect(readModel(dir, "m").config.optimization).toEqual(on.optimization);
    expect(gpuConfigNotes(on)).toEqual([
      "instance_group KIND_GPU: the embedded server runs ONNX Runtime on the CPU: 2 CPU instance(s) instead (Triton on a GPU node runs them on the GPU)",
      'optimization.execution_accelerators.gpu_execution_accelerator "tensorrt" is not applied: the embedded server runs the model as exported (FP32 on the CPU); Triton applies it',
    ]);
    const off = addModel(dir, "n", net(), { gpu: { tensorrtFp16: false } }).config;
    expect(off.instance_group).toEqual([{ count: 1, kind: "KIND_GPU" }]);
    expect(off.optimization).toBeUndefined();
    expect(gpuConfigNotes(off)).toHaveLength(1);
    expect(gpuConfigNotes(addModel(dir, "c", net(), { instances: { count: 3, kind: "KIND_CPU" } }).config)).toEqual([]);
    expect(checkRepository(dir).models.map((m) => m.problems)).toEqual([[], [], []]);
  });
});
