// The model check shared by submit and the worker, on model descriptions as
// servers return them (no server needed).
import { describe, expect, it } from "vitest";
import { CampaignSpec } from "@timeslide/campaign";
import { modelProblems, type ModelDescription } from "@timeslide/worker";

const spec = (o: { ifos?: string[]; batch?: number; kernel?: number } = {}) =>
  CampaignSpec.parse({
    name: "m",
    ifos: o.ifos ?? ["H1", "L1"],
    data: { files: ["x"], sample_rate: 128 },
    inference: { kernel_length: o.kernel ?? 1, inference_sampling_rate: 2, batch_size: o.batch ?? 32, psd_length: 16 },
    background: { shifts: 1, step: 2 },
  });

const stream = (nIfo: number, update: number, kernel: number, maxBatch = 128): ModelDescription => ({
  endpoint: "h:1",
  name: "detector-stream",
  streaming: true,
  inputs: [{ name: "update", shape: [1, nIfo, update] }],
  windows: { model: "detector", input: "whitened", shape: [-1, nIfo, kernel], maxBatchSize: maxBatch },
});

describe("model shapes against the campaign", () => {
  it("accepts the model the campaign was written for", () => {
    expect(modelProblems(spec(), stream(2, 64 * 32, 128))).toEqual([]);
    expect(modelProblems(spec(), { endpoint: "h:1", name: "detector", streaming: false, inputs: [{ name: "whitened", shape: [-1, 2, 128] }] })).toEqual([]);
  });

  it("names the number of detectors, the kernel, the update and max_batch_size", () => {
    const three = modelProblems(spec({ ifos: ["H1", "L1", "V1"] }), stream(2, 2048, 128));
    expect(three.join("\n")).toMatch(/streaming input "update" has shape \[1, 2, 2048\], the campaign sends \[1, 3, 2048\] \(3 detectors from ifos H1, L1, V1/);
    expect(three.join("\n")).toMatch(/step detector input "whitened" takes windows of shape \[-1, 2, 128\], the campaign's windows are \[3, 128\]/);
    expect(modelProblems(spec({ kernel: 2 }), stream(2, 2048, 128))).toEqual([expect.stringMatching(/the campaign's windows are \[2, 256\] .*kernel 256 samples = inference\.kernel_length 2 s × data\.sample_rate 128 Hz/)]);
    expect(modelProblems(spec({ batch: 64 }), stream(2, 4096, 128, 32))).toEqual([expect.stringMatching(/step detector has max_batch_size 32, below inference\.batch_size 64/)]);
    expect(modelProblems(spec(), { endpoint: "h:1", name: "two", streaming: false, inputs: [{ name: "a", shape: [-1, 2, 128] }, { name: "b", shape: [1] }] })).toEqual([
      expect.stringMatching(/model two on h:1: expected one input \(the strain\), got 2: a, b/),
    ]);
  });
});

describe("any tensor names", () => {
  const withModel = (model: Record<string, unknown>, batch = 32) =>
    CampaignSpec.parse({
      name: "m",
      ifos: ["H1", "L1"],
      data: { files: ["x"], sample_rate: 128 },
      model,
      inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: batch, psd_length: 16 },
      background: { shifts: 1, step: 2 },
    });
  const bare = (inputs: ModelDescription["inputs"], outputs: ModelDescription["outputs"]): ModelDescription => ({ endpoint: "h:1", name: "net", streaming: false, inputs, outputs });

  it("takes the one input and output whatever their names; model.input / model.output choose among several", () => {
    const strain = { name: "strain", shape: [-1, 2, 128], datatype: "FP32" };
    expect(modelProblems(withModel({ name: "net" }), bare([strain], [{ name: "logits", shape: [-1, 1], datatype: "FP32" }]))).toEqual([]);
    const two = bare([strain], [{ name: "logits", shape: [-1, 1] }, { name: "embedding", shape: [-1, 16] }]);
    expect(modelProblems(withModel({ name: "net" }), two)).toEqual([expect.stringMatching(/expected one output \(the detection statistic\), got 2: logits, embedding; set model\.output/)]);
    expect(modelProblems(withModel({ name: "net", output: "logits" }), two)).toEqual([]);
    expect(modelProblems(withModel({ name: "net", output: "logit" }), two)).toEqual([expect.stringMatching(/model\.output: model net on h:1 has no output "logit" \(its outputs: logits, embedding\)/)]);
    const twoIn = bare([strain, { name: "aux", shape: [-1, 4] }], [{ name: "logits", shape: [-1, 1] }]);
    expect(modelProblems(withModel({ name: "net", input: "strain" }), twoIn)).toEqual([]);
  });

  it("names a fixed batch, a non-float32 input and a non-float output", () => {
    expect(modelProblems(withModel({ name: "net" }), bare([{ name: "strain", shape: [8, 2, 128] }], [{ name: "y", shape: [8, 1] }]))).toEqual([
      expect.stringMatching(/input "strain" takes exactly 8 windows per request \(shape \[8, 2, 128\], no batch axis\), the campaign sends up to inference\.batch_size 32: set inference\.batch_size 8/),
    ]);
    expect(modelProblems(withModel({ name: "net" }, 8), bare([{ name: "strain", shape: [8, 2, 128] }], [{ name: "y", shape: [8, 1] }]))).toEqual([]);
    expect(modelProblems(withModel({ name: "net" }), bare([{ name: "strain", shape: [-1, 2, 128], datatype: "FP64" }], [{ name: "y", shape: [-1, 1], datatype: "INT64" }]))).toEqual([
      expect.stringMatching(/input "strain" is FP64, the campaign sends FP32 strain/),
      expect.stringMatching(/output "y" is INT64; the detection statistic is read as FP32 or FP64/),
    ]);
  });
});
