import { describe, expect, it } from "vitest";
import { buildInferRequest, decodeUint64MapKey, parseInferResponse } from "../src/client.js";
import { buildInferResponse, parseInferRequest } from "../src/wire.js";
import { DATATYPES, emptyTensorData, fromOrtType, RUNTIME_DECODE, toOrtType } from "../src/tensors.js";
import { loadInferenceProtos } from "../src/protos.js";
import { fromInferParameters, sequenceKey, sequenceParameters, toInferParameters } from "../src/params.js";
import type { ModelInferRequest__Output, ModelInferResponse__Output } from "../src/messages.js";

// Encode with protobuf and decode again, as the wire does.
function roundTrip<T>(type: "ModelInferRequest" | "ModelInferResponse", msg: object): T {
  const t = loadInferenceProtos().packageDefinition[`inference.${type}`] as unknown as {
    serialize(v: object): Buffer;
    deserialize(b: Buffer): T;
  };
  return t.deserialize(t.serialize(msg));
}

describe("wire encoding", () => {
  it("request: sequence ids (int, bigint, string), flags, timeout and tensors survive protobuf", () => {
    const big = 2n ** 62n + 3n;
    for (const id of [7, big, "detector-H1L1-0042"]) {
      const msg = buildInferRequest({
        model: "stream",
        id: "r1",
        inputs: [{ name: "update", datatype: "FP32", shape: [1, 2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }],
        outputs: ["stat"],
        sequence: { id, start: true },
        timeoutUs: 5000,
        parameters: { note: "x", ratio: 5 },
      });
      const parsed = parseInferRequest(roundTrip<ModelInferRequest__Output>("ModelInferRequest", msg));
      expect(parsed.sequence).toEqual({ id, start: true, end: false });
      expect(parsed.timeoutUs).toBe(5000);
      expect(parsed.parameters).toMatchObject({ note: "x", ratio: 5 });
      expect(parsed.outputs).toEqual(["stat"]);
      expect(parsed.inputs[0]).toMatchObject({ name: "update", datatype: "FP32", shape: [1, 2, 3] });
      expect(Array.from(parsed.inputs[0].data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    }
  });

  it("response: outputs in order with raw contents", () => {
    const msg = buildInferResponse({
      model: "m",
      version: "3",
      id: "q",
      outputs: [
        { name: "a", datatype: "FP64", shape: [2], data: new Float64Array([1.5, 2.5]) },
        { name: "b", datatype: "BYTES", shape: [1], data: ["ok"] },
      ],
    });
    const res = parseInferResponse(roundTrip<ModelInferResponse__Output>("ModelInferResponse", msg));
    expect(res).toMatchObject({ model_name: "m", model_version: "3", id: "q" });
    expect(Array.from(res.outputs[0].data as Float64Array)).toEqual([1.5, 2.5]);
    expect(String((res.outputs[1].data as Buffer[])[0])).toBe("ok");
  });

  it("rejects a mismatched raw_input_contents count", () => {
    const msg = buildInferRequest({ model: "m", inputs: [{ name: "x", datatype: "INT8", shape: [1], data: new Int8Array(1) }] });
    msg.raw_input_contents = [];
    const decoded = roundTrip<ModelInferRequest__Output>("ModelInferRequest", { ...msg, raw_input_contents: [Buffer.alloc(1), Buffer.alloc(1)] });
    expect(() => parseInferRequest(decoded)).toThrow(/1 inputs but 2 raw_input_contents entries/);
  });

  it("parameters: types and limits (as Triton accepts them: no double_param, no reserved triton_ keys)", () => {
    expect(toInferParameters({ a: true, b: 3, d: "s", e: 2n ** 60n, f: undefined, triton_enable_empty_final_response: true })).toEqual({
      a: { bool_param: true },
      b: { int64_param: 3 },
      d: { string_param: "s" },
      e: { int64_param: (2n ** 60n).toString() },
      triton_enable_empty_final_response: { bool_param: true },
    });
    // A non-integer is refused, naming the way out; a string goes through.
    expect(() => toInferParameters({ c: 2.5 })).toThrow(/c: 2\.5 is not an integer; Triton takes int64, bool and string parameters .* send it as a string, e\.g\. "2\.5"/);
    expect(toInferParameters({ c: String(2.5) })).toEqual({ c: { string_param: "2.5" } });
    expect(() => toInferParameters({ triton_mine: 1 })).toThrow(
      /request parameter "triton_mine": parameter keys starting with 'triton_' are reserved for Triton usage\. Only the following keys starting with 'triton_' are allowed: triton_enable_empty_final_response/,
    );
    expect(() => toInferParameters({ triton_enable_empty_final_response: 1 })).toThrow(/expected bool_param/);
    // Responses may carry doubles (only our own decoder reads them).
    const res = buildInferResponse({ model: "m", version: "1", outputs: [], parameters: { score: 0.25 } });
    expect(res.parameters).toEqual({ score: { double_param: 0.25 } });
    expect(fromInferParameters({ big: { parameter_choice: "int64_param", int64_param: "1152921504606846976" } as never })).toEqual({ big: 2n ** 60n });
    expect(() => toInferParameters({ x: 2 ** 60 })).toThrow(/beyond 2\^53; pass a bigint/);
    expect(() => sequenceParameters({ id: 0 })).toThrow(/must be in \[1, 2\^63\)/);
    expect(() => sequenceParameters({ id: "" })).toThrow(/empty string/);
    expect(sequenceKey(7)).toBe(sequenceKey(7n));
    expect(sequenceKey(7)).not.toBe(sequenceKey("7"));
  });

  it("requests: custom doubles and reserved keys refused before sending; priority int64 or uint64; the server side refuses triton_ keys", () => {
    const inputs = [{ name: "x", datatype: "INT8" as const, shape: [1], data: new Int8Array(1) }];
    expect(() => buildInferRequest({ model: "m", inputs, parameters: { threshold: 0.5 } })).toThrow(/threshold: 0\.5 is not an integer/);
    expect(() => buildInferRequest({ model: "m", inputs, parameters: { triton_x: true } })).toThrow(/"triton_x": parameter keys starting with 'triton_' are reserved/);
    expect(buildInferRequest({ model: "m", inputs, priority: 2 }).parameters!.priority).toEqual({ int64_param: "2" });
    expect(buildInferRequest({ model: "m", inputs, priority: 2n ** 63n }).parameters!.priority).toEqual({ uint64_param: (2n ** 63n).toString() });
    expect(() => buildInferRequest({ model: "m", inputs, priority: -1 })).toThrow(/priority: -1 must be in \[0, 2\^64\)/);
    expect(() => buildInferRequest({ model: "m", inputs, priority: 1.5 })).toThrow(/priority: 1\.5 is not an integer/);
    const msg = buildInferRequest({ model: "m", inputs });
    const decoded = roundTrip<ModelInferRequest__Output>("ModelInferRequest", { ...msg, parameters: { triton_x: { bool_param: true } } });
    expect(() => parseInferRequest(decoded)).toThrow(/parameter keys starting with 'triton_' are reserved for Triton usage/);
    const ok = roundTrip<ModelInferRequest__Output>("ModelInferRequest", { ...msg, parameters: { triton_enable_empty_final_response: { bool_param: true } } });
    expect(parseInferRequest(ok).parameters).toEqual({ triton_enable_empty_final_response: true });
  });

  it("decodes protobufjs' long-hash map keys (uint64 priority levels) to decimal", () => {
    expect(decodeUint64MapKey("\u0001\u0000\u0000\u0000\u0000\u0000\u0000\u0000")).toBe("1");
    expect(decodeUint64MapKey("\u0000\u00f2\u0005\u002a\u0001\u0000\u0000\u0000")).toBe("5000000000");
    expect(decodeUint64MapKey("12345678")).toBe("12345678");
    expect(decodeUint64MapKey("7")).toBe("7");
  });
});

// What the embedded server runs on every request (apps/server decodes with
// parseInferRequest(req, RUNTIME_DECODE) and answers with buildInferResponse).
describe("server-side codec for ONNX Runtime (RUNTIME_DECODE)", () => {
  const request = (msg: object) => roundTrip<ModelInferRequest__Output>("ModelInferRequest", msg);

  it("decodes FP16 as raw half bits, BYTES as strings, INT64 as BigInt64Array, each in a buffer of its own", () => {
    const half = Uint16Array.of(0x3c00, 0xc000, 0x7bff);
    const msg = buildInferRequest({
      model: "m",
      inputs: [
        { name: "h", datatype: "FP16", shape: [3], data: half },
        { name: "s", datatype: "BYTES", shape: [2], data: ["H1", "L1é"] },
        { name: "i", datatype: "INT64", shape: [2], data: BigInt64Array.of(-5n, 2n ** 40n) },
        { name: "f", datatype: "FP32", shape: [2], data: Float32Array.of(1.5, -2) },
      ],
    });
    const parsed = parseInferRequest(request(msg), RUNTIME_DECODE);
    const [h, s, i, f] = parsed.inputs;
    expect(h.data).toBeInstanceOf(Uint16Array);
    expect(Array.from(h.data as unknown as Uint16Array)).toEqual([0x3c00, 0xc000, 0x7bff]);
    expect(s.data).toEqual(["H1", "L1é"]);
    expect(Array.from(i.data as BigInt64Array)).toEqual([-5n, 2n ** 40n]);
    for (const t of [h, i, f]) {
      const d = t.data as Float32Array;
      // its own buffer, whole: movable to a worker thread, not a view on the message
      expect(d.byteOffset).toBe(0);
      expect(d.byteLength).toBe(d.buffer.byteLength);
    }
    // and the default (a client reading answers) still gives floats for FP16
    expect(Array.from(parseInferRequest(request(msg)).inputs[0].data as Float32Array)).toEqual([1, -2, 65504]);
  });

  it("answers the data it decoded: FP16 bits and BYTES strings round-trip to the same bytes", () => {
    const raw = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from("H1"), Buffer.from([4, 0, 0, 0]), Buffer.from("L1é")]);
    const parsed = parseInferRequest(
      request({ model_name: "m", inputs: [{ name: "s", datatype: "BYTES", shape: ["2"] }, { name: "h", datatype: "FP16", shape: ["1"] }], raw_input_contents: [raw, Buffer.from([0x00, 0x3c])] }),
      RUNTIME_DECODE,
    );
    const res = buildInferResponse({ model: "m", version: "1", outputs: parsed.inputs, parameters: { sequence_id: 2n ** 64n - 1n } });
    expect(Buffer.from(res.raw_output_contents![0] as Uint8Array).equals(raw)).toBe(true);
    expect([...(res.raw_output_contents![1] as Uint8Array)]).toEqual([0x00, 0x3c]);
    expect(res.parameters!.sequence_id).toEqual({ uint64_param: (2n ** 64n - 1n).toString() });
  });

  it("refuses what Triton refuses, in Triton's words", () => {
    const f32 = (n: number) => Buffer.alloc(4 * n);
    const bad = (msg: object) => () => parseInferRequest(request({ model_name: "m", ...msg }), RUNTIME_DECODE);
    expect(bad({ inputs: [{ name: "x", datatype: "FP32", shape: ["1", "64"] }], raw_input_contents: [Buffer.alloc(10)] })).toThrow(
      "unexpected total byte size 10 for input 'x', expecting 256 for shape [1,64] of FP32 (64 × 4 bytes)",
    );
    expect(bad({ inputs: [{ name: "x", datatype: "FP32", shape: ["1"] }, { name: "x", datatype: "FP32", shape: ["1"] }], raw_input_contents: [f32(1), f32(1)] })).toThrow(
      "input 'x' is given more than once",
    );
    expect(bad({ inputs: [{ name: "x", datatype: "FP32", shape: ["2", "2"], contents: { fp32_contents: [1, 2, 3] } }] })).toThrow(
      "unexpected number of elements 3 in contents.fp32_contents of input 'x', expecting 4 for shape [2,2]",
    );
    expect(bad({ inputs: [{ name: "s", datatype: "BYTES", shape: ["3"] }], raw_input_contents: [Buffer.from([1, 0, 0, 0, 65])] })).toThrow(
      "unexpected number of string elements 1 for input 's', expecting 3 for shape [3]",
    );
    expect(bad({ inputs: [{ name: "x", datatype: "FP17", shape: ["1"] }], raw_input_contents: [f32(1)] })).toThrow(/input 'x': unknown datatype "FP17"/);
    expect(bad({ inputs: [], parameters: { sequence_id: { double_param: 1.5 } } })).toThrow("sequence_id must be an integer or a string, got 1.5");
    expect(parseInferRequest(request({ model_name: "m", inputs: [], parameters: { sequence_id: { int64_param: "0" } } })).sequence).toBeUndefined();
  });

  it("maps ONNX Runtime type names to datatypes and back, and allocates zeros as decoded", () => {
    for (const dt of DATATYPES) expect(fromOrtType(toOrtType(dt))).toBe(dt);
    expect(() => fromOrtType("complex64")).toThrow(/no KServe datatype/);
    expect(emptyTensorData("FP16", 3, RUNTIME_DECODE)).toEqual(new Uint16Array(3));
    expect(emptyTensorData("BYTES", 2, RUNTIME_DECODE)).toEqual(["", ""]);
    expect(emptyTensorData("INT64", 2)).toEqual(new BigInt64Array(2));
  });
});
