import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { SegmentList, countRanges, vetoedSamples } from "../src/index.js";

/** Sample by sample, window by window: does any detector's window (own time, wrapped on the ring) overlap a veto? */
function bruteForce(out0: number, n: number, shift: number[], vetoes: Array<[number, number]>, K: number, isr: number, ring?: [number, number]): boolean[] {
  const wrap = (u: number) => (ring ? ring[0] + ((((u - ring[0]) % (ring[1] - ring[0])) + (ring[1] - ring[0])) % (ring[1] - ring[0])) : u);
  const res = 1 / 64; // fine sub-grid of each window (windows and vetoes sit on a 1/16 s grid)
  return Array.from({ length: n }, (_, j) => {
    const t = out0 + j / isr;
    return shift.some((d) => {
      for (let u = t - K + d + res / 2; u < t + d; u += res) {
        const w = wrap(u);
        if (vetoes.some(([a, b]) => w >= a && w < b)) return true;
      }
      return false;
    });
  });
}

describe("vetoed background samples", () => {
  it("are exactly the samples whose window, in any detector's own time, overlaps a veto (non-circular and on the ring)", () => {
    const grid = (lo: number, hi: number) => fc.integer({ min: lo * 16, max: hi * 16 }).map((x) => x / 16);
    fc.assert(
      fc.property(
        fc.record({
          n: fc.integer({ min: 1, max: 60 }),
          isr: fc.constantFrom(1, 2, 4),
          K: grid(0.25, 3),
          d: grid(0, 40),
          vetoes: fc.array(fc.tuple(grid(-20, 80), grid(1 / 16, 6)), { maxLength: 5 }),
          circular: fc.boolean(),
        }),
        (p) => {
          const out0 = 10;
          const vetoes = new SegmentList(p.vetoes.map(([a, l]) => [a, a + l] as [number, number])).coalesce();
          const ring: [number, number] | undefined = p.circular ? [2, 50] : undefined;
          const shift = [0, p.d];
          const ranges = vetoedSamples(out0, p.n, shift, vetoes.segments, { kernelLength: p.K, inferenceSamplingRate: p.isr, ring });
          const mask = new Array<boolean>(p.n).fill(false);
          for (const [a, b] of ranges) {
            expect(a).toBeGreaterThanOrEqual(0);
            expect(b).toBeLessThanOrEqual(p.n);
            for (let j = a; j < b; j++) mask[j] = true;
          }
          const segs = vetoes.segments.map((s) => [s.start, s.end] as [number, number]);
          const clipped = ring ? segs.map(([a, b]) => [Math.max(a, ring[0]), Math.min(b, ring[1])] as [number, number]).filter(([a, b]) => b > a) : segs;
          expect(mask).toEqual(bruteForce(out0, p.n, shift, clipped, p.K, p.isr, ring));
          expect(countRanges(ranges)).toBe(mask.filter(Boolean).length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a veto far from the shifted windows removes nothing; one under the slid detector removes its windows", () => {
    const v = new SegmentList([[100, 101]]).coalesce().segments;
    const g = { kernelLength: 1, inferenceSamplingRate: 1 };
    expect(vetoedSamples(0, 10, [0, 0], v, g)).toEqual([]);
    // detector 2 slid by 95 s: its window [t − 1 + 95, t + 95) overlaps [100, 101) for t in (5, 7)
    expect(vetoedSamples(0, 10, [0, 95], v, g)).toEqual([[6, 7]]);
  });
});
