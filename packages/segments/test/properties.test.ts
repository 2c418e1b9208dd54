import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Segment, SegmentList } from "../src/index.js";

// Reference model: time on a grid of N cells, cell k = [base + k*step, base + (k+1)*step),
// as a boolean array. Every operation is checked against element-wise boolean logic.
// Two grids: small integers, and fractional GPS times (step 0.25 s, exact in float64).
const N = 40;
const PAD = 12; // cells kept either side of the grid, for shift and protract
const grids = [
  { name: "integers", base: 0, step: 1 },
  { name: "fractional GPS", base: 1187008000, step: 0.25 },
];
const RUNS = { numRuns: 300 };

type Grid = (typeof grids)[number];
type Cells = boolean[]; // index i is cell i - PAD

const pairArb = fc
  .tuple(fc.integer({ min: 0, max: N }), fc.integer({ min: 0, max: N }))
  .map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);
// unsorted, overlapping, touching and empty segments all occur
const pairsArb = fc.array(pairArb, { maxLength: 8 });

const toList = (g: Grid, pairs: Array<[number, number]>) =>
  new SegmentList(pairs.map(([a, b]) => new Segment(g.base + a * g.step, g.base + b * g.step)));

function cellsOfPairs(pairs: Array<[number, number]>): Cells {
  const c: Cells = new Array(N + 2 * PAD).fill(false);
  for (const [a, b] of pairs) for (let k = a; k < b; k++) c[k + PAD] = true;
  return c;
}

// What a list covers, sampled at each cell's start: exact for lists whose endpoints lie on the grid.
// Infinite ends are clipped to the padded grid.
function cellsOfList(g: Grid, l: SegmentList): Cells {
  const c: Cells = new Array(N + 2 * PAD).fill(false);
  for (let i = 0; i < c.length; i++) c[i] = l.contains(g.base + (i - PAD) * g.step);
  return c;
}

// The canonical (coalesced) list of a cell array: maximal runs.
function listOfCells(g: Grid, c: Cells, openEnds = false): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let i = 0;
  while (i < c.length) {
    if (!c[i]) { i++; continue; }
    let j = i;
    while (j < c.length && c[j]) j++;
    // with openEnds a run that reaches the padded edge stands for one reaching infinity
    const start = openEnds && i === 0 ? -Infinity : g.base + (i - PAD) * g.step;
    const end = openEnds && j === c.length ? Infinity : g.base + (j - PAD) * g.step;
    out.push([start, end]);
    i = j;
  }
  return out;
}

const pairsOf = (l: SegmentList) => l.segments.map((s) => [s.start, s.end]);
const count = (c: Cells) => c.filter(Boolean).length;

describe.each(grids)("SegmentList against boolean arrays ($name)", (g) => {
  it("coalesce gives the maximal runs: sorted, touching merged, empty dropped", () => {
    fc.assert(
      fc.property(pairsArb, (p) => {
        expect(pairsOf(toList(g, p).coalesce())).toEqual(listOfCells(g, cellsOfPairs(p)));
      }),
      RUNS,
    );
  });

  it("intersect, union, subtract are and, or, and-not", () => {
    fc.assert(
      fc.property(pairsArb, pairsArb, (p, q) => {
        const a = toList(g, p);
        const b = toList(g, q);
        const ca = cellsOfPairs(p);
        const cb = cellsOfPairs(q);
        expect(pairsOf(a.intersect(b))).toEqual(listOfCells(g, ca.map((x, i) => x && cb[i])));
        expect(pairsOf(a.union(b))).toEqual(listOfCells(g, ca.map((x, i) => x || cb[i])));
        expect(pairsOf(a.subtract(b))).toEqual(listOfCells(g, ca.map((x, i) => x && !cb[i])));
      }),
      RUNS,
    );
  });

  it("invert is not, reaching out to ±Infinity", () => {
    fc.assert(
      fc.property(pairsArb, (p) => {
        const inv = toList(g, p).invert();
        expect(pairsOf(inv)).toEqual(listOfCells(g, cellsOfPairs(p).map((x) => !x), true));
      }),
      RUNS,
    );
  });

  it("duration counts covered cells; contains agrees at every cell", () => {
    fc.assert(
      fc.property(pairsArb, (p) => {
        const l = toList(g, p);
        const c = cellsOfPairs(p);
        expect(l.duration).toBe(count(c) * g.step);
        expect(cellsOfList(g, l)).toEqual(c);
        // mid-cell and just-below-end times too
        for (let k = 0; k < N; k++) {
          expect(l.contains(g.base + (k + 0.5) * g.step)).toBe(c[k + PAD]);
        }
      }),
      RUNS,
    );
  });

  it("shift moves every cell by dt", () => {
    fc.assert(
      fc.property(pairsArb, fc.integer({ min: -PAD, max: PAD }), (p, d) => {
        const moved = toList(g, p).shift(d * g.step);
        const c = cellsOfPairs(p);
        const expected = c.map((_, i) => (i - d >= 0 && i - d < c.length ? c[i - d] : false));
        expect(cellsOfList(g, moved)).toEqual(expected);
        expect(moved.length).toBe(p.length);
      }),
      RUNS,
    );
  });

  it("protract is dilation and contract is erosion of the time covered", () => {
    fc.assert(
      fc.property(pairsArb, fc.integer({ min: 0, max: 6 }), (p, x) => {
        const l = toList(g, p);
        const c = cellsOfPairs(p);
        const near = (i: number, all: boolean) => {
          for (let j = i - x; j <= i + x; j++) {
            const v = j >= 0 && j < c.length && c[j];
            if (all ? !v : v) return !all;
          }
          return all;
        };
        const dilated = c.map((_, i) => near(i, false));
        const eroded = c.map((_, i) => near(i, true));
        expect(pairsOf(l.protract(x * g.step))).toEqual(listOfCells(g, dilated));
        expect(pairsOf(l.contract(x * g.step))).toEqual(listOfCells(g, eroded));
        expect(pairsOf(l.protract(-x * g.step))).toEqual(listOfCells(g, eroded));
      }),
      RUNS,
    );
  });

  it("extent spans the first to the last covered cell", () => {
    fc.assert(
      fc.property(pairsArb, (p) => {
        const c = cellsOfPairs(p);
        const first = c.indexOf(true);
        const ext = toList(g, p).extent();
        if (first < 0) expect(ext).toBeNull();
        else {
          const last = c.lastIndexOf(true);
          expect(ext?.toJSON()).toEqual([g.base + (first - PAD) * g.step, g.base + (last + 1 - PAD) * g.step]);
        }
      }),
      RUNS,
    );
  });
});

describe("SegmentList algebraic laws", () => {
  const g = grids[1];
  const list = pairsArb.map((p) => toList(g, p));
  const same = (x: SegmentList, y: SegmentList) => expect(pairsOf(x)).toEqual(pairsOf(y));

  it("De Morgan", () => {
    fc.assert(
      fc.property(list, list, (a, b) => {
        same(a.union(b).invert(), a.invert().intersect(b.invert()));
        same(a.intersect(b).invert(), a.invert().union(b.invert()));
      }),
      RUNS,
    );
  });

  it("idempotence, involution, complement", () => {
    fc.assert(
      fc.property(list, (a) => {
        const c = a.coalesce();
        same(a.union(a), c);
        same(a.intersect(a), c);
        same(c.coalesce(), c);
        same(a.invert().invert(), c);
        same(a.subtract(a), new SegmentList());
        same(a.intersect(a.invert()), new SegmentList());
        same(a.union(a.invert()), new SegmentList([[-Infinity, Infinity]]));
      }),
      RUNS,
    );
  });

  it("a - b = a & ~b; commutativity, associativity, distributivity", () => {
    fc.assert(
      fc.property(list, list, list, (a, b, c) => {
        same(a.subtract(b), a.intersect(b.invert()));
        same(a.union(b), b.union(a));
        same(a.intersect(b), b.intersect(a));
        same(a.union(b).union(c), a.union(b.union(c)));
        same(a.intersect(b).intersect(c), a.intersect(b.intersect(c)));
        same(a.intersect(b.union(c)), a.intersect(b).union(a.intersect(c)));
        same(a.union(b.intersect(c)), a.union(b).intersect(a.union(c)));
      }),
      RUNS,
    );
  });

  it("inclusion-exclusion for duration; shift preserves duration and round-trips", () => {
    fc.assert(
      fc.property(list, list, fc.integer({ min: -100, max: 100 }), (a, b, d) => {
        expect(a.union(b).duration + a.intersect(b).duration).toBe(a.duration + b.duration);
        const dt = d * 0.125;
        expect(a.shift(dt).duration).toBe(a.duration);
        expect(a.shift(dt).shift(-dt).equals(a)).toBe(true);
      }),
      RUNS,
    );
  });
});

describe("SegmentList text and JSON round trips over arbitrary float64", () => {
  const endpoint = fc.double({ noNaN: true });
  const seg = fc.tuple(endpoint, endpoint).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);

  it("toText then fromText gives the same segments bit for bit (infinities too)", () => {
    fc.assert(
      fc.property(fc.array(seg, { maxLength: 6 }), (p) => {
        const l = new SegmentList(p);
        const back = SegmentList.fromText(l.toText(), "roundtrip.txt");
        expect(back.equals(l)).toBe(true);
      }),
      RUNS,
    );
  });

  it("JSON.stringify then fromJSON gives the same segments (finite endpoints)", () => {
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
    const fseg = fc.tuple(finite, finite).map(([a, b]) => (a <= b ? [a, b] : [b, a]) as [number, number]);
    fc.assert(
      fc.property(fc.array(fseg, { maxLength: 6 }), (p) => {
        const l = new SegmentList(p);
        expect(SegmentList.fromJSON(JSON.parse(JSON.stringify(l))).equals(l)).toBe(true);
      }),
      RUNS,
    );
  });
});
