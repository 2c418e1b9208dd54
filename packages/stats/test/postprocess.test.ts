import { describe, expect, it } from "vitest";
import { cluster, integrate, windowSamples } from "../src/index.js";

describe("integrate (causal boxcar)", () => {
  it("averages the last `width` samples, fewer at the start", () => {
    const y = integrate(Float32Array.from([1, 2, 3, 4, 5, 6]), 3);
    expect(Array.from(y)).toEqual([1, 1.5, 2, 3, 4, 5]);
  });
  it("is causal: a future spike does not change the past", () => {
    const a = integrate(Float64Array.from([0, 0, 0, 0, 0, 0]), 4);
    const b = integrate(Float64Array.from([0, 0, 0, 0, 0, 8]), 4);
    expect(Array.from(b.subarray(0, 5))).toEqual(Array.from(a.subarray(0, 5)));
    expect(b[5]).toBe(2);
  });
  it("width 1 is the identity", () => {
    const x = Float64Array.from([3, -1, 2.5]);
    expect(Array.from(integrate(x, 1))).toEqual([3, -1, 2.5]);
  });
  it("rejects bad widths", () => {
    expect(() => integrate(new Float64Array(3), 0)).toThrow(/width/);
    expect(windowSamples(1.0, 4)).toBe(4);
    expect(windowSamples(0, 4)).toBe(1);
  });
});

describe("cluster (local maxima within the window)", () => {
  it("keeps the maximum of each window neighbourhood", () => {
    //           0  1  2  3  4  5  6  7  8  9
    const x = [0, 5, 1, 0, 0, 0, 3, 0, 9, 0];
    const c = cluster(Float64Array.from(x), 5); // half-width 2
    expect(Array.from(c.index)).toEqual([1, 8]); // 6 is within 2 of 8 (9 > 3)
    expect(Array.from(c.detection_statistic)).toEqual([5, 9]);
  });
  it("a plateau yields one event, the earliest", () => {
    const c = cluster(Float64Array.from([0, 2, 2, 2, 0]), 3);
    expect(Array.from(c.index)).toEqual([1]);
  });
  it("equal peaks further apart than the half-window both count", () => {
    const c = cluster(Float64Array.from([4, 0, 0, 4]), 3);
    expect(Array.from(c.index)).toEqual([0, 3]);
  });
  it("matches a brute-force definition on random data", () => {
    let seed = 7;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    for (const w of [1, 2, 5, 8, 33]) {
      const x = Float64Array.from({ length: 2000 }, () => Math.round(rnd() * 50)); // many ties
      const h = Math.floor(w / 2);
      const expected: number[] = [];
      for (let i = 0; i < x.length; i++) {
        let ok = true;
        for (let j = Math.max(0, i - h); j <= Math.min(x.length - 1, i + h); j++) {
          if (j < i ? x[j] >= x[i] : x[j] > x[i]) ok = false;
        }
        if (ok) expected.push(i);
      }
      expect(Array.from(cluster(x, w).index)).toEqual(expected);
    }
  });
  it("NaN never becomes an event", () => {
    const c = cluster(Float64Array.from([NaN, NaN, 1, NaN]), 1);
    expect(Array.from(c.index)).toEqual([2]);
  });
});
