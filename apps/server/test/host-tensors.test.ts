import { describe, expect, it } from "vitest";
import { concatBatch, scalar, splitBatch, zeros } from "../src/host-tensors.js";

describe("batch operations on decoded tensors", () => {
  it("concatenates and splits along the batch dimension", () => {
    const a = { datatype: "FP32" as const, shape: [1, 2], data: Float32Array.from([1, 2]) };
    const b = { datatype: "FP32" as const, shape: [2, 2], data: Float32Array.from([3, 4, 5, 6]) };
    const c = concatBatch([a, b]);
    expect(c.shape).toEqual([3, 2]);
    expect(Array.from(c.data as Float32Array)).toEqual([1, 2, 3, 4, 5, 6]);
    const [x, y] = splitBatch(c, [1, 2]);
    expect(Array.from(x.data as Float32Array)).toEqual([1, 2]);
    expect(y.shape).toEqual([2, 2]);
    expect(Array.from(y.data as Float32Array)).toEqual([3, 4, 5, 6]);
  });

  it("keeps INT64, FP16 bits and strings in their decoded representation", () => {
    const i = concatBatch([scalar("INT64", [1], 7n), scalar("INT64", [1], -2)]);
    expect(i.data).toEqual(BigInt64Array.of(7n, -2n));
    expect(zeros("FP16", [2]).data).toEqual(new Uint16Array(2));
    const s = concatBatch([scalar("BYTES", [1], "H1"), { datatype: "BYTES", shape: [1], data: ["L1"] }]);
    expect(splitBatch(s, [1, 1]).map((t) => t.data)).toEqual([["H1"], ["L1"]]);
  });
});
