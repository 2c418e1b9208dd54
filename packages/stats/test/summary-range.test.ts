// The bulk of the background summary follows the statistic's own range and
// scale, whatever the model: a narrow positive range (a sigmoid-like score
// in 0.138–0.171), logits in −20…+20 and a statistic over nine decades. For
// 10^6 events each, n(x) from the summary is checked against exact counting
// at every distinct value: exact above the kept loudest events and where it
// says so, otherwise never under the truth and never over the count at
// x − 2^-13·|x| (one bin: 2^-14 of the value).
import { describe, expect, it } from "vitest";
import { BackgroundSummary, StatisticHistogram, binKey, countAtLeastSorted } from "../src/index.js";

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const N = 1_000_000;
const ranges: Array<[string, (r: () => number) => number]> = [
  // float32-rounded, as a model's output is: many ties
  ["narrow 0.138–0.171", (r) => Math.fround(0.138 + 0.033 * r() ** 3)],
  ["logits −20…+20", (r) => Math.max(-20, Math.min(20, Math.log(r() / (1 - r())) * 3))],
  ["wide 1e-3…1e6", (r) => 10 ** (-3 + 9 * r())],
];

function summarize(stats: Float64Array, jobs: number, capacity: number): BackgroundSummary {
  const s = new BackgroundSummary({ nIfo: 1, capacity });
  const per = Math.ceil(stats.length / jobs);
  for (let j = 0; j < jobs; j++) {
    const st = stats.subarray(j * per, Math.min(stats.length, (j + 1) * per));
    s.addJob(`bg-${j}-k1`, { livetime: 1000, detection_statistic: st, time: new Float64Array(st.length), shift: new Float64Array(st.length) });
  }
  return s;
}

describe("background summary over the statistic's whole range", () => {
  for (const [name, draw] of ranges)
    it(`${name}: n(x) within one 2^-14 bin of x, never an under-count, exact where it says so`, () => {
      const r = rng(name.length * 7919);
      const stats = Float64Array.from({ length: N }, () => draw(r));
      const sorted = Float64Array.from(stats).sort().reverse();
      const s = summarize(stats, 100, 10_000);
      expect(s.exactAbove).toBe(sorted[10_000]);
      // every distinct value of the loudest 2·10^4 and then every 10th distinct value (n changes only at values)
      const distinct = [...new Set(sorted)];
      const xs = distinct.filter((_, i) => i < 20_000 || i % 10 === 0);
      let inexact = 0;
      const wrong: string[] = [];
      for (const x of xs) {
        const c = s.countAtLeast(x);
        const truth = countAtLeastSorted(sorted, x);
        if (c.exact) {
          if (c.n !== truth) wrong.push(`x=${x}: exact n ${c.n}, truth ${truth}`);
          continue;
        }
        inexact++;
        const bound = countAtLeastSorted(sorted, x - Math.abs(x) * 2 ** -13);
        if (c.n < truth || c.n > bound) wrong.push(`x=${x}: n ${c.n} outside [${truth}, ${bound}]`);
      }
      expect(wrong.slice(0, 5)).toEqual([]);
      expect(inexact).toBeGreaterThan(1000); // the bulk was exercised
      // the FAR curve below the exact region is exact at every point it lists, and has many
      const below = s.farCurve().filter((p) => p.detection_statistic <= s.exactAbove);
      expect(below.length).toBeGreaterThan(100);
      for (const p of below.slice(0, 2000)) expect(p.far_per_year * 1000 * 100).toBeCloseTo(countAtLeastSorted(sorted, p.detection_statistic) * 31557600, 3);
    });

  it("fixed-width bins could not do this: on 0.138–0.171, 0.05-wide bins put everything below the loudest 10^4 in one bin", () => {
    const r = rng(3);
    const stats = Float64Array.from({ length: 200_000 }, () => Math.fround(0.138 + 0.033 * r() ** 3));
    const sorted = Float64Array.from(stats).sort().reverse();
    const s = summarize(stats, 20, 1000);
    const x = sorted.filter((y) => y >= 0.149).at(-1)!; // below the loudest 10^3, in the old bin [0.10, 0.15)
    const truth = countAtLeastSorted(sorted, x);
    const fixed = sorted.filter((y) => Math.floor(y / 0.05) >= Math.floor(x / 0.05)).length; // the old bins' answer: all of them
    expect(fixed).toBe(sorted.length);
    expect(fixed / truth).toBeGreaterThan(2.5);
    expect(s.countAtLeast(x).n / truth).toBeLessThan(1.001);
  });

  it("folding jobs in any order, or merging disjoint summaries, gives identical bins; the file columns round-trip", () => {
    const r = rng(5);
    const stats = Float64Array.from({ length: 50_000 }, () => Math.log(r() / (1 - r())));
    const a = summarize(stats, 50, 500);
    const reversed = new BackgroundSummary({ nIfo: 1, capacity: 500 });
    for (let j = 49; j >= 0; j--) {
      const st = stats.subarray(j * 1000, (j + 1) * 1000);
      reversed.addJob(`bg-${j}-k1`, { livetime: 1000, detection_statistic: st, time: new Float64Array(1000), shift: new Float64Array(1000) });
    }
    expect(reversed.bulk()).toEqual(a.bulk());
    expect(reversed.farCurve()).toEqual(a.farCurve());
    const cols = a.bulk();
    const back = StatisticHistogram.fromColumns(cols, "test");
    expect(back.toColumns()).toEqual(cols);
    expect(() => StatisticHistogram.fromColumns({ ...cols, min: cols.min.map((m) => m * 2) }, "edited")).toThrow(/edited: bin 0: key/);
  });

  it("bins are monotone in the value, across signs, zero and infinities", () => {
    const xs = [-Infinity, -1e300, -20, -1, -0.5, -1e-300, 0, 1e-300, 1e-10, 0.138, 0.1380001, 0.171, 1, 20, 1e300, Infinity];
    for (let i = 1; i < xs.length; i++) expect(binKey(xs[i])).toBeGreaterThanOrEqual(binKey(xs[i - 1]));
    expect(binKey(0.138)).toBeLessThan(binKey(0.1381));
    expect(binKey(-0)).toBe(binKey(0));
  });
});
