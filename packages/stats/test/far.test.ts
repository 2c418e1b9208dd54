import { describe, expect, it } from "vitest";
import { BackgroundSummary, JULIAN_YEAR_S, farCurveSorted, significance, countAtLeastSorted, thinFarCurve } from "../src/index.js";

const YEAR = 31557600;

function summaryOf(stats: number[], livetime: number, capacity = 100): BackgroundSummary {
  const s = new BackgroundSummary({ nIfo: 2, capacity });
  s.addJob("bg-1", { livetime, detection_statistic: stats, time: stats.map((_, i) => 1000 + i), shift: stats.flatMap(() => [0, 1]) });
  return s;
}

describe("FAR and significance (DESIGN.md conventions)", () => {
  // background [5, 3, 3, 2, 1] over T_bg = 100 s, foreground T_fg = 10 s
  const bg = [2, 5, 1, 3, 3];
  const s = summaryOf(bg, 100);

  it("uses the Julian year", () => {
    expect(JULIAN_YEAR_S).toBe(YEAR);
  });

  it("background FAR curve at distinct statistics, ties counted as louder", () => {
    expect(s.farCurve()).toEqual([
      { detection_statistic: 5, far_per_year: 315576 },
      { detection_statistic: 3, far_per_year: 946728 },
      { detection_statistic: 2, far_per_year: 1262304 },
      { detection_statistic: 1, far_per_year: 1577880 },
    ]);
    expect(farCurveSorted([3, 3, 3], 10)).toEqual([{ detection_statistic: 3, far_per_year: 9467280 }]);
  });

  it("candidate tied with background counts the ties (n + 1)", () => {
    const r = s.significance(3, 10);
    expect(r.n_louder).toBe(3);
    expect(r.far_per_year).toBe(1262304); // 4 / 100 s × 31557600
    expect(r.ifar_years).toBe(1 / 1262304);
    expect(r.p_value).toBeCloseTo(0.32967995396436067, 15); // 1 − e^−0.4
    expect(r.saturated).toBe(false);
    expect(r.exact).toBe(true);
  });

  it("candidate tied with the loudest background event is not saturated", () => {
    const r = s.significance(5, 10);
    expect(r.n_louder).toBe(1);
    expect(r.far_per_year).toBe(631152); // 2 / 100 × year
    expect(r.saturated).toBe(false);
  });

  it("candidate between background values", () => {
    const r = s.significance(2.5, 10);
    expect(r.n_louder).toBe(3);
    expect(r.far_per_year).toBe(1262304);
  });

  it("candidate louder than all background is saturated at 1 / T_bg", () => {
    const r = s.significance(7.25, 10);
    expect(r.n_louder).toBe(0);
    expect(r.far_per_year).toBe(315576);
    expect(r.ifar_years).toBe(1 / 315576);
    expect(r.p_value).toBeCloseTo(0.09516258196404048, 15); // 1 − e^−0.1
    expect(r.saturated).toBe(true);
  });

  it("quietest candidate: every background event is louder", () => {
    const r = s.significance(-10, 10);
    expect(r.n_louder).toBe(5);
    expect(r.far_per_year).toBe(1893456);
    expect(r.p_value).toBeCloseTo(1 - Math.exp(-0.6), 15);
  });

  it("empty background with livetime: every candidate saturated at 1 / T_bg", () => {
    const e = summaryOf([], 200);
    expect(e.farCurve()).toEqual([]);
    const r = e.significance(0.1, 20);
    expect(r).toMatchObject({ n_louder: 0, far_per_year: YEAR / 200, saturated: true });
    expect(r.p_value).toBeCloseTo(1 - Math.exp(-0.1), 15);
  });

  it("no background livetime at all: FAR infinite, p = 1", () => {
    const r = significance(0, 0, 10);
    expect(r.far_per_year).toBe(Infinity);
    expect(r.ifar_years).toBe(0);
    expect(r.p_value).toBe(1);
    expect(r.saturated).toBe(true);
    expect(new BackgroundSummary({ nIfo: 2 }).significance(1, 5).far_per_year).toBe(Infinity);
  });

  it("no foreground livetime: p = 0", () => {
    expect(significance(3, 100, 0).p_value).toBe(0);
  });

  it("rejects negative livetimes", () => {
    expect(() => significance(0, -1, 1)).toThrow(/livetimes/);
  });

  it("countAtLeastSorted counts ties as louder", () => {
    const d = [9, 7, 7, 7, 4];
    expect([10, 9, 8, 7, 6, 4, 0].map((x) => countAtLeastSorted(d, x))).toEqual([0, 1, 1, 4, 4, 5, 5]);
  });

  it("thinning keeps the head, the tail and is monotone", () => {
    const curve = Array.from({ length: 5000 }, (_, i) => ({ detection_statistic: -i, far_per_year: i + 1 }));
    const t = thinFarCurve(curve, 300, 50);
    expect(t.length).toBeLessThanOrEqual(300);
    expect(t.slice(0, 50)).toEqual(curve.slice(0, 50));
    expect(t[t.length - 1]).toEqual(curve[4999]);
    for (let i = 1; i < t.length; i++) expect(t[i].far_per_year).toBeGreaterThan(t[i - 1].far_per_year);
  });

  it("thinning spaces points in log(FAR): a coarse histogram tail after many exact points keeps its share", () => {
    // 10^4 exact points up to FAR 10^4, then 40 histogram edges from 2·10^4 to 4·10^6 (as a bounded summary gives)
    const exact = Array.from({ length: 10_000 }, (_, i) => ({ detection_statistic: 10 - i * 1e-4, far_per_year: i + 1 }));
    const tail = Array.from({ length: 40 }, (_, i) => ({ detection_statistic: 8.9 - i * 0.05, far_per_year: 2e4 * Math.pow(200, i / 39) }));
    const t = thinFarCurve([...exact, ...tail], 500, 100);
    const kept = t.filter((p) => p.far_per_year >= 2e4).length;
    expect(kept).toBeGreaterThan(20);
    expect(t.length).toBeLessThanOrEqual(500);
  });
});
