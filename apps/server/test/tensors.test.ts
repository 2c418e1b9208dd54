import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { decodeContents, decodeRaw, encodeRaw, InferenceError } from "../src/index.js";
import { concatBatch, splitBatch } from "../src/tensors.js";

describe("tensor contents", () => {
  it("decodes raw little-endian contents into aligned copies and encodes them back", () => {
    const src = Float32Array.from([1.5, -2, 3.25, 0]);
    // An odd offset inside a larger buffer, as gRPC hands out.
    const pool = Buffer.alloc(src.byteLength + 3);
    Buffer.from(src.buffer).copy(pool, 3);
    const t = decodeRaw("x", "FP32", [2, 2], pool.subarray(3));
    expect(Array.from(t.data as Float32Array)).toEqual([1.5, -2, 3.25, 0]);
    expect(encodeRaw(t).equals(Buffer.from(src.buffer))).toBe(true);
    const i64 = decodeRaw("n", "INT64", [2], Buffer.from(BigInt64Array.from([-5n, 2n ** 40n]).buffer));
    expect(Array.from(i64.data as BigInt64Array)).toEqual([-5n, 2n ** 40n]);
  });

  it("round-trips BYTES with 4-byte length prefixes", () => {
    const raw = Buffer.concat([Buffer.from([2, 0, 0, 0]), Buffer.from("H1"), Buffer.from([4, 0, 0, 0]), Buffer.from("L1é")]);
    const t = decodeRaw("ifo", "BYTES", [2], raw);
    expect(t.data).toEqual(["H1", "L1é"]);
    expect(encodeRaw(t).equals(raw)).toBe(true);
    expect(decodeRaw("ifo", "BYTES", [2], encodeRaw(t)).data).toEqual(t.data);
    expect(() => decodeRaw("ifo", "BYTES", [3], raw)).toThrow(/2 for input 'ifo', expecting 3/);
    expect(() => decodeRaw("ifo", "BYTES", [1], Buffer.from([9, 0, 0, 0, 65]))).toThrow(/truncated BYTES element in input 'ifo'/);
  });

  it("decodes typed contents and checks element counts", () => {
    expect(Array.from(decodeContents("a", "INT64", [2], { int64_contents: ["-3", "9007199254740993"] }).data as BigInt64Array)).toEqual([
      -3n,
      9007199254740993n,
    ]);
    expect(Array.from(decodeContents("b", "BOOL", [3], { bool_contents: [true, false, true] }).data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(decodeContents("c", "INT8", [2], { int_contents: [-1, 7] }).data as Int8Array)).toEqual([-1, 7]);
    const err = (() => {
      try {
        decodeContents("d", "FP32", [2, 2], { fp32_contents: [1, 2, 3] });
      } catch (e) {
        return e as InferenceError;
      }
    })();
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    expect(err?.message).toMatch(/3 in contents of input 'd', expecting 4 for shape \[2,2\]/);
    expect(() => decodeContents("e", "FP16", [1], {})).toThrow(/FP16 can only be sent in raw_input_contents/);
  });

  it("concatenates and splits along the batch dimension", () => {
    const a = { datatype: "FP32" as const, dims: [1, 2], data: Float32Array.from([1, 2]) };
    const b = { datatype: "FP32" as const, dims: [2, 2], data: Float32Array.from([3, 4, 5, 6]) };
    const c = concatBatch([a, b]);
    expect(c.dims).toEqual([3, 2]);
    expect(Array.from(c.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const [x, y] = splitBatch(c, [1, 2]);
    expect(Array.from(x.data as Float32Array)).toEqual([1, 2]);
    expect(y.dims).toEqual([2, 2]);
    expect(Array.from(y.data as Float32Array)).toEqual([3, 4, 5, 6]);
  });
});
