import { describe, expect, it } from "vitest";
import { BackgroundSummary, efficiencyVsSnr, farThresholds, foundAtThresholds, injectionFars, loudestPerInjection, sensitiveVolume } from "../src/index.js";

const YEAR = 31557600;

describe("injections", () => {
  // background [4, 3, 2, 1] over 1 year
  const bg = new BackgroundSummary({ nIfo: 2 });
  bg.addJob("bg-0", { livetime: YEAR, detection_statistic: [4, 3, 2, 1], time: [0, 1, 2, 3], shift: [0, 1, 0, 1, 0, 1, 0, 1] });

  // five injections; events matched to 0, 1, 1, 3; 2 and 4 missed; -1 = unmatched event
  const loudest = loudestPerInjection(5, [5, 2.5, 3.5, 0.5, 9], [0, 1, 1, 3, -1]);

  it("takes the loudest matched event per injection", () => {
    expect(Array.from(loudest)).toEqual([5, 3.5, -Infinity, 0.5, -Infinity]);
    expect(() => loudestPerInjection(2, [1], [2])).toThrow(/out of range/);
  });

  it("candidate FAR of each injection, (n + 1) / T_bg, Infinity when missed", () => {
    const fars = injectionFars({ injected: 5, loudest }, bg);
    const expected = [1, 2, Infinity, 5, Infinity];
    expected.forEach((f, i) => (f === Infinity ? expect(fars[i]).toBe(Infinity) : expect(fars[i]).toBeCloseTo(f, 12)));
    expect(fars[3]).toBe(5);
  });

  it("found / missed and sensitive volume at FAR thresholds", () => {
    const fars = injectionFars({ injected: 5, loudest }, bg);
    expect(foundAtThresholds(fars, [0.5, 1, 2, 10])).toEqual([
      { far_per_year: 0.5, found: 0, efficiency: 0 },
      { far_per_year: 1, found: 1, efficiency: 0.2 },
      { far_per_year: 2, found: 2, efficiency: 0.4 },
      { far_per_year: 10, found: 3, efficiency: 0.6 },
    ]);
    const w = [1, 3, 1, 1, 4]; // Σw = 10
    const v = sensitiveVolume(fars, [1, 2], 100, w);
    expect(v[0].volume).toBe(10); // 100 · 1/10
    expect(v[0].error).toBeCloseTo((100 * Math.sqrt(1 - 1 / 5)) / 10, 12);
    expect(v[1].volume).toBe(40); // 100 · 4/10
    expect(v[1].error).toBeCloseTo((100 * Math.sqrt(10 - 16 / 5)) / 10, 12);
    // equal weights: V0 · sqrt(f (1 − f) / N)
    const eq = sensitiveVolume(fars, [2], 1);
    expect(eq[0].volume).toBeCloseTo(0.4, 15);
    expect(eq[0].error).toBeCloseTo(Math.sqrt((0.4 * 0.6) / 5), 15);
  });

  it("efficiency against SNR with binomial errors", () => {
    const fars = Float64Array.from([1, 1, 50, 1, Infinity, 1]);
    const snr = [5, 6, 7, 12, 14, 15];
    const bins = efficiencyVsSnr(fars, snr, 2, [4, 8, 16]);
    expect(bins).toEqual([
      { snr_low: 4, snr_high: 8, injected: 3, found: 2, efficiency: 2 / 3, error: Math.sqrt((2 / 3) * (1 / 3) / 3) },
      { snr_low: 8, snr_high: 16, injected: 3, found: 2, efficiency: 2 / 3, error: Math.sqrt((2 / 3) * (1 / 3) / 3) },
    ]);
    const auto = efficiencyVsSnr(fars, snr, 2);
    expect(auto.reduce((a, b) => a + b.injected, 0)).toBe(6); // the top edge is inclusive
  });

  it("default thresholds start at the smallest resolvable FAR", () => {
    const t = farThresholds(YEAR / 2);
    expect(t[0]).toBe(2);
    expect(t[4]).toBeCloseTo(20, 10);
    expect(t.at(-1)!).toBeLessThanOrEqual(1e4);
    expect(farThresholds(0)).toEqual([]);
  });
});
