import { describe, expect, it } from "vitest";
import { SegmentList, formatGps } from "../src/index.js";

describe("SegmentList text", () => {
  it("reads 'start end' lines with comments and blank lines, as given (not coalesced)", () => {
    const text = "# H1 science segments\n\n1187008000 1187008040   # before the glitch\n  1187008052\t1187008128.5\n1187008000 1187008010\n";
    const l = SegmentList.fromText(text, "segs.txt");
    expect(l.toJSON()).toEqual([
      [1187008000, 1187008040],
      [1187008052, 1187008128.5],
      [1187008000, 1187008010],
    ]);
  });

  it("reads the segwizard layout 'index start end duration' and CRLF", () => {
    const text = "# seg\tstart\tstop\tduration\r\n0\t1187008000\t1187008040\t40\r\n1\t1187008052.25\t1187008128\t75.75\r\n";
    expect(SegmentList.fromText(text).toJSON()).toEqual([
      [1187008000, 1187008040],
      [1187008052.25, 1187008128],
    ]);
  });

  it("reads infinities as Python writes them", () => {
    const l = SegmentList.fromText("-inf 5\n10 inf\n-Infinity +INF\n");
    expect(l.segments.map((s) => [s.start, s.end])).toEqual([
      [-Infinity, 5],
      [10, Infinity],
      [-Infinity, Infinity],
    ]);
  });

  it("errors name source:line and the bad text", () => {
    expect(() => SegmentList.fromText("1 2\n3 abc\n", "segs.txt")).toThrow('segs.txt:2: expected a number in column 2, got "abc"');
    expect(() => SegmentList.fromText("1 2 3\n", "segs.txt")).toThrow(/segs\.txt:1: expected "start end" or "index start end duration", got 3 columns: "1 2 3"/);
    expect(() => SegmentList.fromText("# c\n\n20 10\n", "segs.txt")).toThrow(/segs\.txt:3: start 20 is after end 10/);
    expect(() => SegmentList.fromText("0 10 20 5\n", "w.txt")).toThrow(/w\.txt:1: duration 5 does not match end - start = 10/);
    expect(() => SegmentList.fromText("x 10 20 10\n", "w.txt")).toThrow(/w\.txt:1: expected an integer index in column 1, got "x"/);
    // Number() would take these; a segment file should not
    expect(() => SegmentList.fromText("0x10 20\n")).toThrow(/<text>:1: expected a number in column 1/);
    expect(() => SegmentList.fromText("1,2 3\n")).toThrow(/column 1/);
    expect(() => SegmentList.fromText("nan 3\n")).toThrow(/column 1, got "nan"/);
  });

  it("writes one 'start end' line per segment, exactly", () => {
    const l = new SegmentList([
      [1187008000.1, 1187008040.3],
      [0.1 + 0.2, 1e21],
      [-Infinity, Infinity],
    ]);
    expect(l.toText()).toBe("1187008000.1 1187008040.3\n0.30000000000000004 1e+21\n-inf inf\n");
    expect(SegmentList.fromText(l.toText()).equals(l)).toBe(true);
    expect(new SegmentList().toText()).toBe("");
    expect(formatGps(-0)).toBe("0");
  });
});

describe("SegmentList JSON", () => {
  it("round-trips through JSON.stringify", () => {
    const l = new SegmentList([
      [1187008000.5, 1187008040],
      [1187008052, 1187008128],
    ]);
    const text = JSON.stringify(l);
    expect(text).toBe("[[1187008000.5,1187008040],[1187008052,1187008128]]");
    expect(SegmentList.fromJSON(JSON.parse(text)).equals(l)).toBe(true);
  });

  it("accepts the plan's {segments: [...]} object", () => {
    expect(SegmentList.fromJSON({ segments: [[0, 1]] }).toJSON()).toEqual([[0, 1]]);
  });

  it("refuses infinite endpoints when writing rather than writing null", () => {
    expect(() => JSON.stringify(new SegmentList([[0, Infinity]]))).toThrow(/infinite endpoint/);
  });

  it("errors name the source, the index and what was expected", () => {
    expect(() => SegmentList.fromJSON([[0, 1], [2, "3"]], "plan.json")).toThrow(/^plan\.json: \[1\]\[1\]: .*expected number.*expected \[\[start, end\], \.\.\.\]/);
    expect(() => SegmentList.fromJSON([[0, 1], [5, 2]], "plan.json")).toThrow(/plan\.json: \[1\]: expected start <= end/);
    expect(() => SegmentList.fromJSON([[0, 1, 2]], "plan.json")).toThrow(/plan\.json: \[0\]: Too big/);
    expect(() => SegmentList.fromJSON({ segments: [[null, 1]] }, "plan.json")).toThrow(/plan\.json: segments\[0\]\[0\]: .*received null/);
    expect(() => SegmentList.fromJSON("nope", "plan.json")).toThrow(/^plan\.json: top level: /);
  });
});
