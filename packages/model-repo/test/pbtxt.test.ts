import { mkdtempSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  formatModelConfig,
  parseModelConfig,
  PbtxtError,
  readModel,
  readRepository,
  selectVersions,
  nextVersion,
} from "../src/index.js";

// Written by hand in the style of Triton's documentation examples.
const HAND_WRITTEN = `
# detector served by Triton's onnxruntime backend
name: "detector"
platform: "onnxruntime_onnx"
max_batch_size: 128
version_policy: { latest { num_versions: 2 } }
input [
  {
    name: "whitened"
    data_type: TYPE_FP32
    format: FORMAT_NONE
    dims: [ 2, -1 ]   # n_ifo, kernel
  }
]
output {
  name: "detection_statistic", data_type: TYPE_FP32, dims: 1
}
dynamic_batching { preferred_batch_size: [ 32, 64 ] max_queue_delay_microseconds: 500 }
instance_group [ { count: 2 kind: KIND_GPU gpus: [0, 1] } ]
optimization { execution_accelerators {
  gpu_execution_accelerator : [ {
    name : "tensorrt"
    parameters { key: "precision_mode" value: "FP16" }
    parameters < key: 'max_workspace_size_bytes' value: "107" "3741824" >
  } ]
}}
parameters: { key: "note" value: { string_value: "a \\"quoted\\" \\x41 word" } }
`;

describe("config.pbtxt text format", () => {
  it("reads a hand-written Triton config through the ModelConfig schema", () => {
    const c = parseModelConfig(HAND_WRITTEN, "detector/config.pbtxt");
    expect(c.name).toBe("detector");
    expect(c.max_batch_size).toBe(128);
    expect(c.version_policy).toEqual({ latest: { num_versions: 2 } });
    expect(c.input).toEqual([{ name: "whitened", data_type: "TYPE_FP32", format: "FORMAT_NONE", dims: [2, -1] }]);
    // A repeated field given without brackets, and a scalar for a repeated scalar.
    expect(c.output).toEqual([{ name: "detection_statistic", data_type: "TYPE_FP32", dims: [1] }]);
    expect(c.dynamic_batching).toEqual({ preferred_batch_size: [32, 64], max_queue_delay_microseconds: 500 });
    expect(c.instance_group).toEqual([{ count: 2, kind: "KIND_GPU", gpus: [0, 1] }]);
    const acc = (c.optimization as any).execution_accelerators.gpu_execution_accelerator[0];
    expect(acc.parameters).toEqual({ precision_mode: "FP16", max_workspace_size_bytes: "1073741824" });
    expect(c.parameters).toEqual({ note: { string_value: 'a "quoted" A word' } });
  });

  it("writes what it reads (round trip through the schema)", () => {
    const c = parseModelConfig(HAND_WRITTEN);
    const text = formatModelConfig(c);
    expect(parseModelConfig(text)).toEqual(c);
    expect(text).toContain("data_type: TYPE_FP32");
    expect(text).toContain("dims: [ 2, -1 ]");
  });

  it("names file, line and field in errors", () => {
    const bad = 'name: "m"\nplatform: "onnxruntime_onnx"\ninput [ { name: "x" dtype: TYPE_FP32 } ]\n';
    expect(() => parseModelConfig(bad, "m/config.pbtxt")).toThrow(/m\/config\.pbtxt:3:\d+: .*no field named "dtype"/);
    try {
      parseModelConfig(bad, "m/config.pbtxt");
    } catch (e) {
      expect(e).toBeInstanceOf(PbtxtError);
      expect((e as PbtxtError).line).toBe(3);
    }
    expect(() => parseModelConfig('name: "m"\nplatform: "x"\ninput { data_type: TYPE_F32 }', "f")).toThrow(
      /f:3:.*TYPE_F32.*not a value of enum DataType/,
    );
    expect(() => parseModelConfig('name: "m"\nmax_batch_size "8"', "f")).toThrow(/f:2:.*expected ':'/);
    expect(() => parseModelConfig('name: "m"\nmax_batch_size: 1.5', "f")).toThrow(/f:2:.*integer/);
    expect(() => parseModelConfig('name: "m\nplatform: "x"', "f")).toThrow(/f:1:.*unterminated string/);
    expect(() => parseModelConfig('name: "m"\ninput [ { name: "x" }', "f")).toThrow(/f:2:.*expected '\]', found '<end of file>'/);
    expect(() => parseModelConfig('name: "m"\nname: "n"\nplatform: "x"', "f")).toThrow(/f:2:.*more than once/);
    expect(() => parseModelConfig('name: "m"', "f")).toThrow(/f: platform: either platform or backend/);
    expect(() => parseModelConfig('name: "m"\nmax_batch_size: 99999999999', "f")).toThrow(/out of range for int32/);
  });

  it("refuses to write fields the schema does not have", () => {
    expect(() => formatModelConfig({ name: "m", platform: "x", batch: 3 } as never)).toThrow(/no field named "batch"/);
    expect(() => formatModelConfig({ name: "m", input: [{ name: "x", data_type: "FP32" as never, dims: [] }] })).toThrow(
      /ModelConfig\.input\[0\]\.data_type: FP32 is not a value of enum DataType/,
    );
  });
});

describe("repository layout", () => {
  it("lists models, versions and applies version_policy", () => {
    const repo = mkdtempSync(join(tmpdir(), "repo-"));
    mkdirSync(join(repo, "a", "1"), { recursive: true });
    mkdirSync(join(repo, "a", "3"), { recursive: true });
    mkdirSync(join(repo, "a", "10"), { recursive: true });
    mkdirSync(join(repo, "a", "notes"), { recursive: true });
    writeFileSync(join(repo, "a", "config.pbtxt"), 'platform: "onnxruntime_onnx"\n');
    mkdirSync(join(repo, "not-a-model"));
    mkdirSync(join(repo, "b"));
    writeFileSync(join(repo, "b", "config.pbtxt"), 'name: "c"\nplatform: "onnxruntime_onnx"\n');
    expect(() => readModel(repo, "b")).toThrow(/name "c" does not match the model folder "b"/);
    const a = readModel(repo, "a");
    expect(a.config.name).toBe("a");
    expect(a.versions).toEqual([1, 3, 10]);
    expect(nextVersion(a.dir)).toBe(11);
    expect(selectVersions(undefined, a.versions)).toEqual([10]);
    expect(selectVersions({ latest: { num_versions: 2 } }, a.versions)).toEqual([3, 10]);
    expect(selectVersions({ all: {} }, a.versions)).toEqual([1, 3, 10]);
    expect(selectVersions({ specific: { versions: [3, 7] } }, a.versions)).toEqual([3]);
    expect(() => readRepository(repo)).toThrow(/b\/config.pbtxt/);
    expect(() => readRepository(join(repo, "missing"))).toThrow(/not a directory/);
  });
});
