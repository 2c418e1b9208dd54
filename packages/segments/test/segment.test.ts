import { describe, expect, it } from "vitest";
import { Segment } from "../src/index.js";

describe("Segment", () => {
  it("is half-open: start inside, end outside", () => {
    const s = new Segment(10, 20);
    expect(s.contains(10)).toBe(true);
    expect(s.contains(19.999)).toBe(true);
    expect(s.contains(20)).toBe(false);
    expect(s.contains(9.999)).toBe(false);
    expect(s.duration).toBe(10);
  });

  it("refuses NaN and start > end, naming the values", () => {
    expect(() => new Segment(NaN, 1)).toThrow(/NaN/);
    expect(() => new Segment(0, NaN)).toThrow(RangeError);
    expect(() => new Segment(5, 4)).toThrow(/start 5 is after end 4/);
    expect(() => new Segment("1" as unknown as number, 2)).toThrow(RangeError);
  });

  it("start == end is empty: no duration, contains no time, intersects nothing", () => {
    const e = new Segment(5, 5);
    expect(e.isEmpty()).toBe(true);
    expect(e.duration).toBe(0);
    expect(e.contains(5)).toBe(false);
    expect(e.intersects(new Segment(0, 10))).toBe(false);
    expect(new Segment(0, 10).intersects(e)).toBe(false);
    expect(new Segment(0, 10).intersection(e)).toBeNull();
    expect(new Segment(Infinity, Infinity).duration).toBe(0);
    expect(new Segment(-Infinity, -Infinity).isEmpty()).toBe(true);
  });

  it("touching segments do not intersect", () => {
    const a = new Segment(0, 5);
    const b = new Segment(5, 10);
    expect(a.intersects(b)).toBe(false);
    expect(b.intersects(a)).toBe(false);
    expect(a.intersection(b)).toBeNull();
  });

  it("intersection of overlapping segments", () => {
    const a = new Segment(0, 5);
    const b = new Segment(3, 10);
    expect(a.intersects(b)).toBe(true);
    expect(a.intersection(b)?.toJSON()).toEqual([3, 5]);
    expect(new Segment(0, 10).intersection(new Segment(2, 3))?.toJSON()).toEqual([2, 3]);
  });

  it("contains a segment when the bounds lie within", () => {
    const s = new Segment(0, 10);
    expect(s.contains(new Segment(0, 10))).toBe(true);
    expect(s.contains(new Segment(2, 3))).toBe(true);
    expect(s.contains(new Segment(9, 11))).toBe(false);
    expect(s.contains(new Segment(-1, 1))).toBe(false);
  });

  it("shift, protract and contract", () => {
    const s = new Segment(10, 20);
    expect(s.shift(2.5).toJSON()).toEqual([12.5, 22.5]);
    expect(s.shift(-10).toJSON()).toEqual([0, 10]);
    expect(s.protract(3).toJSON()).toEqual([7, 23]);
    expect(s.contract(3).toJSON()).toEqual([13, 17]);
    expect(s.protract(-3).toJSON()).toEqual([13, 17]);
    expect(s.contract(-3).toJSON()).toEqual([7, 23]);
  });

  it("contract never inverts: past half the duration it is empty at the midpoint", () => {
    const s = new Segment(10, 20);
    expect(s.contract(5).toJSON()).toEqual([15, 15]);
    expect(s.contract(6).toJSON()).toEqual([15, 15]);
    expect(s.contract(1e9).isEmpty()).toBe(true);
    expect(s.protract(-100).toJSON()).toEqual([15, 15]);
    expect(s.contract(Infinity).toJSON()).toEqual([15, 15]);
    // huge finite endpoints: the midpoint must not overflow
    const big = new Segment(1e308, Number.MAX_VALUE);
    expect(Number.isFinite(big.contract(Number.MAX_VALUE).start)).toBe(true);
    expect(() => s.contract(NaN)).toThrow(RangeError);
  });

  it("handles infinite endpoints", () => {
    const all = new Segment(-Infinity, Infinity);
    expect(all.duration).toBe(Infinity);
    expect(all.contains(1187008000)).toBe(true);
    expect(all.contract(1e9).equals(all)).toBe(true);
    expect(all.shift(5).equals(all)).toBe(true);
    expect(new Segment(-Infinity, 5).contract(10).toString()).toBe("[-Infinity, -5)");
    expect(all.intersection(new Segment(1, 2))?.toJSON()).toEqual([1, 2]);
  });

  it("keeps fractional GPS times exact", () => {
    const s = new Segment(1187008000.25, 1187008001.75);
    expect(s.duration).toBe(1.5);
    expect(s.contains(1187008000.25)).toBe(true);
    expect(s.contains(1187008001.75)).toBe(false);
    expect(s.shift(0.5).toJSON()).toEqual([1187008000.75, 1187008002.25]);
  });

  it("equals, toJSON, toString; frozen", () => {
    const s = new Segment(1, 2);
    expect(s.equals(new Segment(1, 2))).toBe(true);
    expect(s.equals(new Segment(1, 3))).toBe(false);
    expect(JSON.stringify(s)).toBe("[1,2]");
    expect(s.toString()).toBe("[1, 2)");
    expect(() => JSON.stringify(new Segment(0, Infinity))).toThrow(/infinite/);
    expect(Object.isFrozen(s)).toBe(true);
  });
});
