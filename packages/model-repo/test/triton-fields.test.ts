// config.pbtxt files written for current Triton (triton-inference-server/common
// model_config.proto, see packages/kserve/README.md): the fields added since
// our first schema parse, are kept, and survive reader -> writer -> reader.
import { describe, expect, it } from "vitest";
import { configWarnings, formatModelConfig, parseModelConfig } from "../src/index.js";

// Hand-written, in the layout Triton's documentation uses.
const DETECTOR = `
name: "detector"
backend: "onnxruntime"
runtime: "libtriton_onnxruntime.so"
max_batch_size: 64
input [ { name: "whitened" data_type: TYPE_FP32 dims: [ 2, 2048 ] is_non_linear_format_io: true } ]
output [ { name: "detection_statistic" data_type: TYPE_FP32 dims: [ 1 ] is_non_linear_format_io: false } ]
dynamic_batching {
  preferred_batch_size: [ 32, 64 ]
  max_queue_delay_microseconds: 200
  # uint64 in current Triton: beyond 2^32 (a timestamp-like level) and up to 2^64 - 1
  priority_levels: 18446744073709551615
  default_priority_level: 4294967296
  default_queue_policy { max_queue_size: 32 }
  priority_queue_policy { key: 4294967296 value { timeout_action: DELAY default_timeout_microseconds: 1000 max_queue_size: 8 } }
  priority_queue_policy [ { key: 1 value: { allow_timeout_override: true } } ]
}
model_metrics {
  metric_control [
    {
      metric_identifier { family: "nv_inference_first_response_histogram_ms" }
      histogram_options { buckets: [ 1, 2.5, 10, 100 ] }
    }
  ]
}
`;

const SNAPSHOTTER = `
name: "snapshotter"
backend: "onnxruntime"
max_batch_size: 0
input { name: "update" data_type: TYPE_FP32 dims: [ 1, 2, 512 ] }
output { name: "windows" data_type: TYPE_FP32 dims: [ 4, 2, 2048 ] }
sequence_batching {
  max_sequence_idle_microseconds: 5000000
  oldest { max_candidate_sequences: 4 preferred_batch_size: [ 2 ] max_queue_delay_microseconds: 100 preserve_ordering: true }
  state [
    {
      input_name: "snapshot" output_name: "snapshot_out" data_type: TYPE_FP32 dims: [ 1, 2, 3584 ]
      initial_state { data_type: TYPE_FP32 dims: [ 1, 2, 3584 ] zero_data: true name: "zeros" }
      use_same_buffer_for_input_output: true
      use_growable_memory: true
    }
  ]
  iterative_sequence: true
}
`;

const ENSEMBLE = `
name: "detector-stream"
platform: "ensemble"
max_batch_size: 0
input [ { name: "update" data_type: TYPE_FP32 dims: [ 1, 2, 512 ] } ]
output [ { name: "detection_statistic" data_type: TYPE_FP32 dims: [ 4, 1 ] } ]
ensemble_scheduling {
  step [
    { model_name: "snapshotter" model_version: -1 input_map { key: "update" value: "update" } output_map { key: "windows" value: "w" } },
    { model_name: "detector" model_version: -1 input_map { key: "whitened" value: "w" } output_map { key: "detection_statistic" value: "detection_statistic" } }
  ]
  max_inflight_requests: 16
}
`;

describe("config.pbtxt for current Triton", () => {
  it("reads runtime, model_metrics, is_non_linear_format_io and uint64 priorities (beyond 2^32)", () => {
    const c = parseModelConfig(DETECTOR, "detector/config.pbtxt");
    expect(c.runtime).toBe("libtriton_onnxruntime.so");
    expect(c.input![0].is_non_linear_format_io).toBe(true);
    expect(c.output![0].is_non_linear_format_io).toBe(false);
    // Numbers while exact, decimal strings past 2^53.
    expect(c.dynamic_batching!.priority_levels).toBe("18446744073709551615");
    expect(c.dynamic_batching!.default_priority_level).toBe(4294967296);
    expect(c.dynamic_batching!.priority_queue_policy).toEqual({
      "4294967296": { timeout_action: "DELAY", default_timeout_microseconds: 1000, max_queue_size: 8 },
      "1": { allow_timeout_override: true },
    });
    expect(c.model_metrics).toEqual({
      metric_control: [{ metric_identifier: { family: "nv_inference_first_response_histogram_ms" }, histogram_options: { buckets: [1, 2.5, 10, 100] } }],
    });
  });

  it("reads iterative_sequence, the State buffer options and StrategyOldest.preserve_ordering", () => {
    const c = parseModelConfig(SNAPSHOTTER, "snapshotter/config.pbtxt");
    const sb = c.sequence_batching!;
    expect(sb.iterative_sequence).toBe(true);
    expect(sb.oldest).toEqual({ max_candidate_sequences: 4, preferred_batch_size: [2], max_queue_delay_microseconds: 100, preserve_ordering: true });
    expect(sb.state![0]).toMatchObject({ use_same_buffer_for_input_output: true, use_growable_memory: true });
  });

  it("reads ModelEnsembling.max_inflight_requests", () => {
    const c = parseModelConfig(ENSEMBLE, "detector-stream/config.pbtxt");
    expect(c.ensemble_scheduling!.max_inflight_requests).toBe(16);
    expect(c.ensemble_scheduling!.step).toHaveLength(2);
  });

  it("round-trips every new field: reader -> writer -> reader", () => {
    for (const [file, src] of [
      ["detector", DETECTOR],
      ["snapshotter", SNAPSHOTTER],
      ["detector-stream", ENSEMBLE],
    ] as const) {
      const first = parseModelConfig(src, `${file}/config.pbtxt`);
      const text = formatModelConfig(first);
      const again = parseModelConfig(text, `${file}/config.pbtxt (written)`);
      expect(again, file).toEqual(first);
    }
    const written = formatModelConfig(parseModelConfig(DETECTOR));
    expect(written).toContain("priority_levels: 18446744073709551615");
    expect(written).toContain("key: 4294967296");
    expect(written).toMatch(/runtime: "libtriton_onnxruntime.so"/);
  });

  it("refuses values beyond the field's type, e.g. a uint64 priority past 2^64 - 1", () => {
    expect(() => parseModelConfig(DETECTOR.replace("18446744073709551615", "18446744073709551616"), "d/config.pbtxt")).toThrow(
      /d\/config.pbtxt:\d+:\d+: field "priority_levels": 18446744073709551616 is out of range for uint64/,
    );
    expect(() => parseModelConfig(ENSEMBLE.replace("max_inflight_requests: 16", "max_inflight_requests: 4294967296"), "e/config.pbtxt")).toThrow(
      /out of range for uint32/,
    );
  });

  it("warns where a field changes behaviour the embedded server does not follow", () => {
    expect(configWarnings(parseModelConfig(DETECTOR))).toEqual([
      'runtime "libtriton_onnxruntime.so" is ignored: the embedded server runs ONNX Runtime models and ensembles itself',
      'input "whitened": is_non_linear_format_io applies to TensorRT models only and is ignored',
    ]);
    expect(configWarnings(parseModelConfig(SNAPSHOTTER))).toEqual([
      "sequence_batching.iterative_sequence is not supported (it needs a backend that reschedules requests): each request runs once, as in an ordinary sequence",
    ]);
    expect(configWarnings(parseModelConfig(ENSEMBLE))).toEqual([
      "ensemble_scheduling.max_inflight_requests: 16 is not enforced: every step's requests run without a limit",
    ]);
  });
});
