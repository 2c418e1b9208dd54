import { describe, expect, it } from "vitest";
import { buildInferRequest, parseInferResponse } from "../src/client.js";
import { buildInferResponse, parseInferRequest } from "../src/wire.js";
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
        parameters: { note: "x", ratio: 0.5 },
      });
      const parsed = parseInferRequest(roundTrip<ModelInferRequest__Output>("ModelInferRequest", msg));
      expect(parsed.sequence).toEqual({ id, start: true, end: false });
      expect(parsed.timeoutUs).toBe(5000);
      expect(parsed.parameters).toMatchObject({ note: "x", ratio: 0.5 });
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

  it("parameters: types and limits", () => {
    expect(toInferParameters({ a: true, b: 3, c: 2.5, d: "s", e: 2n ** 60n, f: undefined })).toEqual({
      a: { bool_param: true },
      b: { int64_param: 3 },
      c: { double_param: 2.5 },
      d: { string_param: "s" },
      e: { int64_param: (2n ** 60n).toString() },
    });
    expect(fromInferParameters({ big: { parameter_choice: "int64_param", int64_param: "1152921504606846976" } as never })).toEqual({ big: 2n ** 60n });
    expect(() => toInferParameters({ x: 2 ** 60 })).toThrow(/beyond 2\^53; pass a bigint/);
    expect(() => sequenceParameters({ id: 0 })).toThrow(/must be in \[1, 2\^63\)/);
    expect(() => sequenceParameters({ id: "" })).toThrow(/empty string/);
    expect(sequenceKey(7)).toBe(sequenceKey(7n));
    expect(sequenceKey(7)).not.toBe(sequenceKey("7"));
  });
});
