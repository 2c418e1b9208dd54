import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  DATATYPES,
  decodeTensor,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  fromConfigDataType,
  rawToTensorData,
  tensorToRaw,
  toConfigDataType,
  TensorError,
  type Datatype,
} from "../src/tensors.js";

describe("tensor raw contents", () => {
  it("encodes FP32 little-endian row-major and decodes back", () => {
    const data = new Float32Array([1, -2.5, 3.25, 1e-3, 7, 8]);
    const raw = tensorToRaw({ name: "x", datatype: "FP32", shape: [2, 3], data });
    expect(raw.length).toBe(24);
    expect(raw.readFloatLE(4)).toBe(-2.5);
    expect(raw.readFloatLE(12)).toBeCloseTo(1e-3, 7);
    expect(Array.from(rawToTensorData("FP32", [2, 3], raw))).toEqual(Array.from(data));
  });

  it("round-trips every fixed-size datatype", () => {
    const samples: Record<Exclude<Datatype, "BYTES">, unknown> = {
      BOOL: new Uint8Array([1, 0, 1, 1]),
      UINT8: new Uint8Array([0, 255, 7, 9]),
      UINT16: new Uint16Array([0, 65535, 300, 1]),
      UINT32: new Uint32Array([0, 4294967295, 70000, 1]),
      UINT64: new BigUint64Array([0n, 2n ** 64n - 1n, 5n, 2n ** 53n + 1n]),
      INT8: new Int8Array([-128, 127, 0, -1]),
      INT16: new Int16Array([-32768, 32767, 0, -1]),
      INT32: new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -1]),
      INT64: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n, 0n, -1n]),
      FP16: new Float32Array([1, -2, 0.5, 65504]),
      FP32: new Float32Array([1.5, -2, Math.fround(0.1), 3]),
      FP64: new Float64Array([0.1, -1e300, 5e-324, 2]),
    };
    for (const [dt, data] of Object.entries(samples)) {
      const raw = tensorToRaw({ name: dt, datatype: dt as Datatype, shape: [2, 2], data } as never);
      const back = rawToTensorData(dt as Datatype, [2, 2], raw, dt);
      expect(Array.from(back as ArrayLike<unknown>), dt).toEqual(Array.from(data as ArrayLike<unknown>));
    }
  });

  it("encodes INT64 and UINT64 little-endian", () => {
    const raw = tensorToRaw({ name: "i", datatype: "INT64", shape: [1], data: new BigInt64Array([-2n]) });
    expect(raw.readBigInt64LE(0)).toBe(-2n);
    expect([...raw]).toEqual([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  it("encodes BOOL from boolean[] and rejects values other than 0/1", () => {
    expect([...tensorToRaw({ name: "b", datatype: "BOOL", shape: [3], data: [true, false, true] })]).toEqual([1, 0, 1]);
    expect(() => tensorToRaw({ name: "b", datatype: "BOOL", shape: [1], data: new Uint8Array([2]) })).toThrow(/expected 0 or 1/);
  });

  it("encodes BYTES as 4-byte length + bytes and decodes strings and binary", () => {
    const raw = tensorToRaw({ name: "s", datatype: "BYTES", shape: [3], data: ["H1", "", new Uint8Array([0, 255])] });
    expect([...raw]).toEqual([2, 0, 0, 0, 72, 49, 0, 0, 0, 0, 2, 0, 0, 0, 0, 255]);
    const back = rawToTensorData("BYTES", [3], raw);
    expect(back.map((b) => [...b])).toEqual([[72, 49], [], [0, 255]]);
  });

  it("rejects truncated or miscounted BYTES", () => {
    expect(() => rawToTensorData("BYTES", [1], Buffer.from([5, 0, 0, 0, 1]), "s")).toThrow(/claims 5 bytes/);
    expect(() => rawToTensorData("BYTES", [2], Buffer.from([0, 0, 0, 0]), "s")).toThrow("unexpected number of string elements 1 for tensor 's', expecting 2 for shape [2]");
    expect(() => rawToTensorData("BYTES", [1], Buffer.from([0, 0]), "s")).toThrow(/truncated/);
  });

  it("checks shape against data length with a message naming tensor, type and shape", () => {
    expect(() => tensorToRaw({ name: "strain", datatype: "FP32", shape: [2, 4], data: new Float32Array(6) })).toThrow(
      'tensor "strain": FP32 data has 6 elements but shape [2, 4] needs 8',
    );
    expect(() => rawToTensorData("FP64", [3], Buffer.alloc(16), "y", { role: "input" })).toThrow(
      "unexpected total byte size 16 for input 'y', expecting 24 for shape [3] of FP64 (3 × 8 bytes)",
    );
    expect(() => tensorToRaw({ name: "x", datatype: "FP32", shape: [-1], data: new Float32Array(1) })).toThrow(/not a non-negative integer/);
    expect(() => tensorToRaw({ name: "x", datatype: "FP32", shape: [2], data: new Float64Array(2) as never })).toThrow(/must be a Float32Array, got Float64Array/);
    expect(() => tensorToRaw({ name: "x", datatype: "FP8" as Datatype, shape: [1], data: new Uint8Array(1) as never })).toThrow(TensorError);
  });

  it("decodes unaligned raw buffers by copying", () => {
    const backing = Buffer.alloc(13);
    const view = backing.subarray(1);
    view.writeFloatLE(1.5, 0);
    view.writeFloatLE(-3, 4);
    view.writeFloatLE(9, 8);
    expect(Array.from(rawToTensorData("FP32", [3], view))).toEqual([1.5, -3, 9]);
  });

  it("decodes typed contents when no raw contents are sent", () => {
    const t = decodeTensor(
      { name: "o", datatype: "INT64", shape: ["2"], contents: { int64_contents: ["5", "-9007199254740993"] } as never },
      undefined,
    );
    expect(Array.from(t.data as BigInt64Array)).toEqual([5n, -9007199254740993n]);
    expect(t.shape).toEqual([2]);
  });

  it("FP16 conversion is exact for representable values and rounds to nearest even", () => {
    expect(float32ToFloat16Bits(1)).toBe(0x3c00);
    expect(float32ToFloat16Bits(-2)).toBe(0xc000);
    expect(float32ToFloat16Bits(65504)).toBe(0x7bff);
    expect(float32ToFloat16Bits(1e6)).toBe(0x7c00);
    expect(float32ToFloat16Bits(2 ** -24)).toBe(0x0001);
    expect(float32ToFloat16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie -> even
    expect(float32ToFloat16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie -> even (up)
    expect(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN)))).toBe(true);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffff }), (bits) => {
        const v = float16BitsToFloat32(bits);
        fc.pre(!Number.isNaN(v));
        // every half value survives half -> float -> half
        return float32ToFloat16Bits(v) === bits;
      }),
    );
  });

  it("maps config data types to KServe datatypes", () => {
    expect(fromConfigDataType("TYPE_FP32")).toBe("FP32");
    expect(fromConfigDataType("TYPE_STRING")).toBe("BYTES");
    expect(toConfigDataType("BYTES")).toBe("TYPE_STRING");
    for (const dt of DATATYPES) expect(fromConfigDataType(toConfigDataType(dt))).toBe(dt);
    expect(() => fromConfigDataType("TYPE_COMPLEX")).toThrow(/unknown datatype/);
  });

  it("property: FP32/INT32 round-trip for arbitrary shapes", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 3 }), fc.integer(), (shape, seed) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = Int32Array.from({ length: n }, (_, i) => (seed * 31 + i * 7) | 0);
        const raw = tensorToRaw({ name: "p", datatype: "INT32", shape, data });
        return raw.length === n * 4 && Array.from(rawToTensorData("INT32", shape, raw)).every((v, i) => v === data[i]);
      }),
    );
  });
});
