import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import {
  buildDetector,
  buildSnapshotter,
  chirpTemplates,
  configForOnnx,
  GraphBuilder,
  mulberry32,
  ONNX_IR_VERSION,
  ONNX_OPSET,
  readModel,
  readOnnxSignature,
  snapshotSize,
  writeDemoRepository,
} from "../src/index.js";

const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });

function gaussian(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12);
    const v = r();
    const m = Math.sqrt(-2 * Math.log(u));
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

describe("ONNX graph builder", () => {
  it("writes a ModelProto that ONNX Runtime runs, with the stated IR version and opset", async () => {
    const g = new GraphBuilder("affine");
    const x = g.input("x", "float32", ["batch", 3]);
    const y = g.node("Add", [g.node("Mul", [x, g.constant(new Float32Array([2, 3, 4]), [3])]), g.constant(new Float32Array([1]), [1])]);
    g.output(y, "y", "float32", ["batch", 3]);
    const bytes = g.toBytes();
    const sig = readOnnxSignature(bytes);
    expect(sig).toEqual({
      irVersion: ONNX_IR_VERSION,
      opset: ONNX_OPSET,
      inputs: [{ name: "x", data_type: "TYPE_FP32", dims: [-1, 3] }],
      outputs: [{ name: "y", data_type: "TYPE_FP32", dims: [-1, 3] }],
    });
    const s = await session(bytes);
    const out = await s.run({ x: new ort.Tensor("float32", new Float32Array([1, 1, 1, 0, 1, 2]), [2, 3]) });
    expect(Array.from(out.y.data as Float32Array)).toEqual([3, 4, 5, 1, 4, 9]);
    expect(() => readOnnxSignature(new Uint8Array([1, 2, 3]), "bad.onnx")).toThrow(/bad.onnx/);
  });

  it("infers a Triton config from an ONNX file (batch dimension left out)", () => {
    const sig = readOnnxSignature(buildDetector({ nIfo: 2, kernel: 32 }));
    expect(configForOnnx("det", sig, 16)).toMatchObject({
      name: "det",
      max_batch_size: 16,
      input: [{ name: "whitened", data_type: "TYPE_FP32", dims: [2, 32] }],
      output: [{ name: "detection_statistic", data_type: "TYPE_FP32", dims: [1] }],
    });
  });
});

describe("demo detector", () => {
  it("is deterministic and scores an injected chirp above Gaussian noise", async () => {
    const opts = { nIfo: 2, kernel: 128, nTemplates: 4, templateLength: 64 };
    const a = buildDetector(opts);
    expect(Buffer.from(buildDetector(opts)).equals(Buffer.from(a))).toBe(true);
    const s = await session(a);
    const batch = 8;
    const noise = gaussian(batch * 2 * 128, 7);
    const injected = noise.slice();
    const t = chirpTemplates(4, 64)[2];
    for (let b = 0; b < batch; b++)
      for (let i = 0; i < 2; i++) for (let k = 0; k < 64; k++) injected[(b * 2 + i) * 128 + 30 + k] += 8 * t[k];
    const run = async (x: Float32Array) =>
      Array.from((await s.run({ whitened: new ort.Tensor("float32", x, [batch, 2, 128]) })).detection_statistic.data as Float32Array);
    const quiet = await run(noise);
    const loud = await run(injected);
    expect(Math.max(...quiet)).toBeLessThan(6);
    expect(Math.min(...loud)).toBeGreaterThan(Math.max(...quiet) + 3); // network SNR ≈ 8·√2 plus noise
    expect(loud.reduce((a, b) => a + b) / batch).toBeGreaterThan(10);
  });
});

describe("snapshotter", () => {
  // kernel a multiple of stride (windows cut from stride blocks), equal to it, and not a multiple (gathered)
  it.each([
    { nIfo: 2, kernel: 16, stride: 4, batch: 3 },
    { nIfo: 2, kernel: 4, stride: 4, batch: 3 },
    { nIfo: 2, kernel: 10, stride: 4, batch: 3 },
  ])("keeps the last kernel+(batch-1)·stride samples and unfolds batch windows stride apart: kernel $kernel, stride $stride", async (o) => {
    const S = snapshotSize(o);
    const U = o.stride * o.batch;
    const s = await session(buildSnapshotter(o));
    // A long stream per detector; feed it U samples at a time.
    const steps = 5;
    const stream = [0, 1].map((i) => Float32Array.from({ length: steps * U }, (_, t) => 1000 * i + t + 1));
    let state = new Float32Array(2 * S);
    for (let step = 0; step < steps; step++) {
      const update = new Float32Array(2 * U);
      for (let i = 0; i < 2; i++) update.set(stream[i].subarray(step * U, (step + 1) * U), i * U);
      const out = await s.run({
        update: new ort.Tensor("float32", update, [1, 2, U]),
        snapshot: new ort.Tensor("float32", state, [1, 2, S]),
        START: new ort.Tensor("float32", new Float32Array([step === 0 ? 1 : 0]), [1]),
      });
      state = out.snapshot_out.data as Float32Array<ArrayBuffer>;
      const windows = out.windows.data as Float32Array;
      expect(out.windows.dims).toEqual([3, 2, o.kernel]);
      const end = (step + 1) * U; // samples seen so far
      for (let j = 0; j < o.batch; j++)
        for (let i = 0; i < 2; i++)
          for (let t = 0; t < o.kernel; t++) {
            const pos = end - S + j * o.stride + t; // position in the stream; < 0 is the zero past
            const want = pos < 0 ? 0 : stream[i][pos];
            expect(windows[(j * 2 + i) * o.kernel + t]).toBe(want);
          }
    }
    // START=1 discards whatever state is passed in.
    const fresh = await s.run({
      update: new ort.Tensor("float32", new Float32Array(2 * U).fill(5), [1, 2, U]),
      snapshot: new ort.Tensor("float32", new Float32Array(2 * S).fill(9), [1, 2, S]),
      START: new ort.Tensor("float32", new Float32Array([1]), [1]),
    });
    expect(Array.from(fresh.snapshot_out.data as Float32Array).filter((v) => v === 9)).toEqual([]);
  });

  it("writes a demo repository that reads back through the config schema", () => {
    const dir = mkdtempSync(join(tmpdir(), "demo-repo-"));
    const r = writeDemoRepository(dir, { nIfo: 2, kernel: 32, stride: 4, batch: 8 });
    expect(r).toEqual({ detector: "detector", snapshotter: "snapshotter", ensemble: "detector-stream", stateSize: 60, updateSize: 32 });
    const snap = readModel(dir, "snapshotter");
    expect(snap.versions).toEqual([1]);
    expect(snap.config.sequence_batching?.state?.[0]).toMatchObject({
      input_name: "snapshot",
      output_name: "snapshot_out",
      dims: [1, 2, 60],
      initial_state: [{ zero_data: true }],
    });
    const ens = readModel(dir, "detector-stream");
    expect(ens.config.platform).toBe("ensemble");
    expect(ens.config.ensemble_scheduling?.step.map((s) => s.model_name)).toEqual(["snapshotter", "detector"]);
    expect(readFileSync(join(dir, "detector", "config.pbtxt"), "utf8")).toContain("max_batch_size: 128");
  });
});

describe("GPU site configs", () => {
  it("writes KIND_GPU instances and the TensorRT FP16 accelerator block, and reads them back", () => {
    const dir = mkdtempSync(join(tmpdir(), "gpu-repo-"));
    writeDemoRepository(dir, { nIfo: 2, kernel: 32, stride: 4, batch: 8, gpu: { count: 2, gpus: [0, 1], tensorrtFp16: true, maxQueueDelayMicroseconds: 500 } });
    const text = readFileSync(join(dir, "detector", "config.pbtxt"), "utf8");
    expect(text).toContain("kind: KIND_GPU");
    expect(text).toMatch(/name: "tensorrt"\s+parameters \{\s+key: "precision_mode"\s+value: "FP16"/);
    const det = readModel(dir, "detector").config;
    expect(det.instance_group).toEqual([{ count: 2, kind: "KIND_GPU", gpus: [0, 1] }]);
    expect((det.optimization as any).execution_accelerators.gpu_execution_accelerator[0]).toEqual({
      name: "tensorrt",
      parameters: { precision_mode: "FP16", max_workspace_size_bytes: "1073741824" },
    });
    expect(det.dynamic_batching).toEqual({ max_queue_delay_microseconds: 500 });
    // The snapshotter runs on the GPU too (its state stays there), without an accelerator: it only copies.
    const snap = readModel(dir, "snapshotter").config;
    expect(snap.instance_group).toEqual([{ count: 8, kind: "KIND_GPU" }]); // streams (default 8): one sequence slot per instance
    expect(snap.optimization).toBeUndefined();
  });

  it("the TensorRT FP16 block is the default on GPUs, tensorrtFp16: false drops it; instances count per GPU; the CPU repository is unchanged", () => {
    const on = mkdtempSync(join(tmpdir(), "gpu-repo-"));
    writeDemoRepository(on, { nIfo: 2, kernel: 32, stride: 4, batch: 8, instances: 3, gpu: {} });
    const det = readModel(on, "detector").config;
    expect(det.instance_group).toEqual([{ count: 3, kind: "KIND_GPU" }]);
    expect((det.optimization as any).execution_accelerators.gpu_execution_accelerator).toEqual([
      { name: "tensorrt", parameters: { precision_mode: "FP16", max_workspace_size_bytes: "1073741824" } },
    ]);
    expect(readModel(on, "snapshotter").config.instance_group).toEqual([{ count: 8, kind: "KIND_GPU" }]);

    const off = mkdtempSync(join(tmpdir(), "gpu-repo-"));
    writeDemoRepository(off, { nIfo: 2, kernel: 32, stride: 4, batch: 8, gpu: { tensorrtFp16: false } });
    expect(readModel(off, "detector").config).toMatchObject({ instance_group: [{ count: 1, kind: "KIND_GPU" }] });
    expect(readModel(off, "detector").config.optimization).toBeUndefined();
    expect(readFileSync(join(off, "detector", "config.pbtxt"), "utf8")).not.toContain("tensorrt");

    const cpu = mkdtempSync(join(tmpdir(), "cpu-repo-"));
    writeDemoRepository(cpu, { nIfo: 2, kernel: 32, stride: 4, batch: 8, instances: 2 });
    expect(readModel(cpu, "detector").config.instance_group).toEqual([{ count: 2, kind: "KIND_CPU" }]);
    expect(readModel(cpu, "snapshotter").config.instance_group).toEqual([{ count: 8, kind: "KIND_CPU" }]);
    for (const m of ["detector", "snapshotter"]) expect(readModel(cpu, m).config.optimization).toBeUndefined();
  });
});
