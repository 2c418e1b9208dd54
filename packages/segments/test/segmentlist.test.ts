import { describe, expect, it } from "vitest";
import { Segment, SegmentList } from "../src/index.js";

const L = (...pairs: Array<[number, number]>) => new SegmentList(pairs);
const J = (l: SegmentList) => l.toJSON();
const inf = Infinity;
// JSON refuses infinities, so compare unbounded lists through plain pairs
const P = (l: SegmentList) => l.segments.map((s) => [s.start, s.end]);

describe("SegmentList construction", () => {
  it("takes Segments and [start, end] pairs, keeps them as given, and is immutable", () => {
    const l = new SegmentList([new Segment(5, 6), [1, 2]]);
    expect(l.length).toBe(2);
    expect(J(l)).toEqual([[5, 6], [1, 2]]);
    expect([...l].map((s) => s.start)).toEqual([5, 1]);
    expect(Object.isFrozen(l.segments)).toBe(true);
    expect(new SegmentList().length).toBe(0);
  });

  it("refuses bad items", () => {
    expect(() => L([3, 1])).toThrow(/start 3 is after end 1/);
    expect(() => new SegmentList([[1, 2, 3] as unknown as [number, number]])).toThrow(/item 0/);
    expect(() => new SegmentList([{ start: 1, end: 2 } as unknown as Segment])).toThrow(TypeError);
  });
});

describe("coalesce", () => {
  it("sorts, merges overlapping and touching segments, drops empty ones", () => {
    expect(J(L([20, 30], [0, 5], [5, 10], [3, 4], [7, 7], [40, 40]).coalesce())).toEqual([[0, 10], [20, 30]]);
    expect(J(L([0, 10], [2, 3]).coalesce())).toEqual([[0, 10]]);
    expect(J(L([0, 5], [4, 12], [12, 13]).coalesce())).toEqual([[0, 13]]);
  });

  it("keeps a gap of any positive size", () => {
    expect(J(L([0, 1187008000.5], [1187008000.75, 1187008001]).coalesce())).toEqual([
      [0, 1187008000.5],
      [1187008000.75, 1187008001],
    ]);
  });

  it("of only empty segments is empty", () => {
    expect(L([1, 1], [2, 2]).coalesce().length).toBe(0);
  });

  it("returns the same object for an already coalesced list", () => {
    const l = L([0, 1], [2, 3]);
    expect(l.coalesce()).toBe(l);
    const m = L([2, 3], [0, 1]);
    expect(m.coalesce()).toBe(m.coalesce());
  });
});

describe("set operations", () => {
  const a = L([0, 10], [20, 30]);
  const b = L([5, 25], [30, 35]);

  it("intersect (&)", () => {
    expect(J(a.intersect(b))).toEqual([[5, 10], [20, 25]]);
    // touching does not intersect
    expect(J(L([0, 5]).intersect(L([5, 10])))).toEqual([]);
    expect(J(a.intersect(new SegmentList()))).toEqual([]);
  });

  it("union (|) merges what touches across the lists", () => {
    expect(J(a.union(b))).toEqual([[0, 35]]);
    expect(J(L([0, 5]).union(L([5, 10])))).toEqual([[0, 10]]);
    expect(J(L([0, 1]).union(L([2, 3])))).toEqual([[0, 1], [2, 3]]);
  });

  it("subtract (-)", () => {
    expect(J(a.subtract(b))).toEqual([[0, 5], [25, 30]]);
    expect(J(L([0, 100]).subtract(L([10, 20], [30, 40], [90, 110])))).toEqual([[0, 10], [20, 30], [40, 90]]);
    expect(J(L([0, 10]).subtract(L([0, 10])))).toEqual([]);
    expect(J(L([0, 10]).subtract(L([-5, 0], [10, 15])))).toEqual([[0, 10]]);
    // several lists segments cut by one long segment of the other
    expect(J(L([0, 2], [3, 5], [6, 9]).subtract(L([1, 7])))).toEqual([[0, 1], [7, 9]]);
  });

  it("work on unsorted, overlapping input", () => {
    const messy = L([20, 30], [0, 6], [4, 10]);
    expect(J(messy.intersect(L([5, 21])))).toEqual([[5, 10], [20, 21]]);
    expect(J(messy.subtract(L([5, 21])))).toEqual([[0, 5], [21, 30]]);
  });
});

describe("invert (~) within ±Infinity", () => {
  it("of the empty list is all time", () => {
    expect(P(new SegmentList().invert())).toEqual([[-inf, inf]]);
    expect(P(L([3, 3]).invert())).toEqual([[-inf, inf]]);
  });

  it("of all time is empty", () => {
    expect(L([-inf, inf]).invert().length).toBe(0);
  });

  it("of bounded lists", () => {
    expect(P(L([0, 10], [20, 30]).invert())).toEqual([[-inf, 0], [10, 20], [30, inf]]);
    expect(P(L([-1e300, 1e300]).invert())).toEqual([[-inf, -1e300], [1e300, inf]]);
  });

  it("of half-unbounded lists", () => {
    expect(P(L([-inf, 5]).invert())).toEqual([[5, inf]]);
    expect(P(L([5, inf]).invert())).toEqual([[-inf, 5]]);
    expect(P(L([-inf, 0], [10, inf]).invert())).toEqual([[0, 10]]);
  });

  it("twice gives the coalesced list back", () => {
    const l = L([10, 20], [0, 5], [5, 7]);
    expect(l.invert().invert().equals(l.coalesce())).toBe(true);
  });
});

describe("shift, protract, contract", () => {
  it("shift keeps order and overlaps", () => {
    expect(J(L([10, 20], [0, 15]).shift(0.5))).toEqual([[10.5, 20.5], [0.5, 15.5]]);
    expect(J(L([1187008000, 1187008040]).shift(-1187008000))).toEqual([[0, 40]]);
  });

  it("protract merges segments that grow into each other", () => {
    expect(J(L([0, 10], [12, 20]).protract(1))).toEqual([[-1, 21]]);
    expect(J(L([0, 10], [13, 20]).protract(1))).toEqual([[-1, 11], [12, 21]]);
  });

  it("contract drops segments that become empty and never inverts", () => {
    // [20,22) would invert, [30,34) shrinks to exactly nothing: both go
    expect(J(L([0, 10], [20, 22], [30, 34]).contract(2))).toEqual([[2, 8]]);
    expect(J(L([0, 10], [20, 21]).contract(2))).toEqual([[2, 8]]);
    expect(L([0, 4]).contract(100).length).toBe(0);
  });

  it("contract sees the time covered, not how the list was split", () => {
    expect(J(L([0, 5], [5, 10]).contract(1))).toEqual([[1, 9]]);
  });

  it("with infinite endpoints", () => {
    expect(P(L([-inf, 10]).contract(3))).toEqual([[-inf, 7]]);
    expect(P(L([-inf, inf]).protract(3))).toEqual([[-inf, inf]]);
    expect(P(L([0, inf]).shift(-5))).toEqual([[-5, inf]]);
  });
});

describe("duration, extent, contains, filter", () => {
  it("duration is the coalesced livetime (overlaps count once)", () => {
    expect(L([0, 10], [5, 15], [20, 20.5]).duration).toBe(15.5);
    expect(new SegmentList().duration).toBe(0);
    expect(L([0, inf]).duration).toBe(inf);
    expect(L([1187008000.25, 1187008000.75], [1187008001, 1187008001.125]).duration).toBe(0.625);
  });

  it("extent spans the time covered, or null", () => {
    expect(L([20, 30], [0, 5], [40, 40]).extent()?.toJSON()).toEqual([0, 30]);
    expect(new SegmentList().extent()).toBeNull();
    expect(L([3, 3]).extent()).toBeNull();
  });

  it("contains times, half-open", () => {
    const l = L([20, 30], [0, 10], [5, 12]);
    expect(l.contains(0)).toBe(true);
    expect(l.contains(11.999)).toBe(true);
    expect(l.contains(12)).toBe(false);
    expect(l.contains(20)).toBe(true);
    expect(l.contains(30)).toBe(false);
    expect(l.contains(-1)).toBe(false);
    expect(new SegmentList().contains(0)).toBe(false);
    expect(L([-inf, inf]).contains(-1e300)).toBe(true);
  });

  it("filter keeps segments that pass", () => {
    expect(J(L([0, 100], [200, 210], [300, 500]).filter((s) => s.duration >= 100))).toEqual([[0, 100], [300, 500]]);
  });

  it("equals compares segments in order", () => {
    expect(L([0, 1], [2, 3]).equals(L([0, 1], [2, 3]))).toBe(true);
    expect(L([0, 1], [2, 3]).equals(L([2, 3], [0, 1]))).toBe(false);
    expect(L([0, 1]).equals(L([0, 1], [2, 3]))).toBe(false);
  });
});
