import { describe, expect, it } from "vitest";
import { BackgroundSummary, JULIAN_YEAR_S, hierarchicalRemoval, RemovedStatistics, type RemovalTake } from "../src/index.js";

const Y = JULIAN_YEAR_S;

/**
 * A background of events (time, statistic) over T_bg, and a removal that
 * takes every event within w of the candidate's time (once) and a fixed
 * livetime per removal: enough to check the arithmetic independently.
 */
function setup(events: Array<[number, number]>, T: number, w = 5, livetimePer = 10) {
  const s = new BackgroundSummary({ nIfo: 2, capacity: 1000 });
  s.addJob("bg-1", { livetime: T, detection_statistic: events.map((e) => e[1]), time: events.map((e) => e[0]), shift: events.flatMap(() => [0, 1]) });
  const taken = new Set<number>();
  const calls: number[] = [];
  const remove = (c: { time: number }): RemovalTake => {
    calls.push(c.time);
    const stats: number[] = [];
    events.forEach(([t, x], i) => {
      if (Math.abs(t - c.time) < w && !taken.has(i)) {
        taken.add(i);
        stats.push(x);
      }
    });
    return { statistics: stats, livetime_s: livetimePer };
  };
  return { s, remove, calls };
}

const far = (n: number, T: number) => ((n + 1) * Y) / T;

describe("hierarchical removal arithmetic", () => {
  it("RemovedStatistics counts r(x) with ties as louder", () => {
    const r = new RemovedStatistics();
    r.add([3, 1]);
    r.add([3, 7]);
    expect(r.size).toBe(4);
    expect([8, 7, 3.5, 3, 2, 1, 0].map((x) => r.countAtLeast(x))).toEqual([0, 1, 1, 3, 3, 4, 4]);
  });

  it("N = 0: exclusive equals inclusive, nothing removed", async () => {
    const { s, remove, calls } = setup([[100, 50], [200, 4], [300, 3]], 1000);
    const res = await hierarchicalRemoval({ candidates: [{ time: 100, detection_statistic: 60 }], countAtLeast: (x) => s.countAtLeast(x), backgroundLivetime: 1000, foregroundLivetime: 10, maxRemovals: 0, remove });
    expect(res.removed).toEqual([]);
    expect(calls).toEqual([]);
    expect(res.exclusive).toEqual(res.inclusive);
    expect(res.inclusive[0].far_per_year).toBe(far(0, 1000));
  });

  it("removes a saturated candidate; the next one's exclusive FAR drops; stops at the first one not saturated", async () => {
    // A (60) is louder than everything; its copies (50, 45) near t=100 inflate B (40);
    // after removing A's neighbourhood, B (40) is louder than the rest (30 at t=500...): saturated;
    // C (20) is not saturated even then (30 and 25 remain): removal stops there.
    const bg: Array<[number, number]> = [[98, 50], [103, 45], [500, 30], [700, 25], [800, 3], [900, 2]];
    const { s, remove, calls } = setup(bg, 1000, 5, 10);
    const candidates = [
      { time: 700.5, detection_statistic: 20 }, // C
      { time: 100, detection_statistic: 60 }, // A
      { time: 400, detection_statistic: 40 }, // B
    ];
    const res = await hierarchicalRemoval({ candidates, countAtLeast: (x) => s.countAtLeast(x), backgroundLivetime: 1000, foregroundLivetime: 100, maxRemovals: 5, remove });
    // A removed first (its exclusive = inclusive, nothing removed before it), then B (saturated after A's removal), then C is not saturated: stop
    expect(calls).toEqual([100, 400]);
    expect(res.removed).toEqual([
      { candidate: 1, time: 100, detection_statistic: 60, events_removed: 2, livetime_removed_s: 10 },
      { candidate: 2, time: 400, detection_statistic: 40, events_removed: 0, livetime_removed_s: 10 },
    ]);
    expect(res.backgroundLivetimeLeft).toBe(980);
    // inclusive: the whole background
    expect(res.inclusive.map((x) => x.n_louder)).toEqual([4, 0, 2]);
    expect(res.inclusive[2].far_per_year).toBe(far(2, 1000));
    expect(res.inclusive[2].saturated).toBe(false);
    // exclusive: A against nothing removed; B against A's removal; C against both
    expect(res.exclusive[1].far_per_year).toBe(far(0, 1000));
    expect(res.exclusive[2].far_per_year).toBe(far(0, 990));
    expect(res.exclusive[2].saturated).toBe(true);
    expect(res.exclusive[0].n_louder).toBe(2);
    expect(res.exclusive[0].far_per_year).toBe(far(2, 980));
    expect(res.exclusive[0].p_value).toBeCloseTo(1 - Math.exp((-100 * 3) / 980), 14);
  });

  it("the N limit stops removals even when the next candidate is saturated", async () => {
    const bg: Array<[number, number]> = [[98, 50], [103, 45], [500, 30]];
    const { s, remove, calls } = setup(bg, 1000, 5, 10);
    const candidates = [{ time: 100, detection_statistic: 60 }, { time: 400, detection_statistic: 40 }];
    const res = await hierarchicalRemoval({ candidates, countAtLeast: (x) => s.countAtLeast(x), backgroundLivetime: 1000, foregroundLivetime: 100, maxRemovals: 1, remove });
    expect(calls).toEqual([100]);
    expect(res.removed.map((r) => r.time)).toEqual([100]);
    // B: not removed, but its exclusive FAR is against the background after A's removal: saturated
    expect(res.inclusive[1].saturated).toBe(false);
    expect(res.exclusive[1]).toMatchObject({ n_louder: 0, saturated: true, far_per_year: far(0, 990) });
  });

  it("no removal when the loudest candidate is not saturated (its own copies are louder)", async () => {
    const { s, remove, calls } = setup([[99, 61], [101, 59]], 1000);
    const res = await hierarchicalRemoval({ candidates: [{ time: 100, detection_statistic: 60 }], countAtLeast: (x) => s.countAtLeast(x), backgroundLivetime: 1000, foregroundLivetime: 10, maxRemovals: 3, remove });
    expect(calls).toEqual([]);
    expect(res.removed).toEqual([]);
    expect(res.exclusive[0]).toEqual(res.inclusive[0]);
    expect(res.inclusive[0].n_louder).toBe(1);
  });

  it("a tie with a background event is not saturated (ties count as louder)", async () => {
    const { s, remove, calls } = setup([[500, 60]], 1000);
    await hierarchicalRemoval({ candidates: [{ time: 100, detection_statistic: 60 }], countAtLeast: (x) => s.countAtLeast(x), backgroundLivetime: 1000, foregroundLivetime: 10, maxRemovals: 3, remove });
    expect(calls).toEqual([]);
  });

  it("equal candidates: the earlier is removed first", async () => {
    const { s, remove, calls } = setup([[10, 1]], 1000);
    const res = await hierarchicalRemoval({
      candidates: [{ time: 300, detection_statistic: 9 }, { time: 200, detection_statistic: 9 }],
      countAtLeast: (x) => s.countAtLeast(x),
      backgroundLivetime: 1000,
      foregroundLivetime: 10,
      maxRemovals: 1,
      remove,
    });
    expect(calls).toEqual([200]);
    expect(res.exclusive[0].far_per_year).toBe(far(0, 990));
    expect(res.exclusive[1].far_per_year).toBe(far(0, 1000));
  });

  it("refuses a removal that takes more livetime than is left, or more events than the background holds", async () => {
    const { s } = setup([[98, 5]], 100);
    await expect(
      hierarchicalRemoval({ candidates: [{ time: 100, detection_statistic: 9 }], countAtLeast: (x) => s.countAtLeast(x), backgroundLivetime: 100, foregroundLivetime: 1, maxRemovals: 1, remove: () => ({ statistics: [5], livetime_s: 101 }) }),
    ).rejects.toThrow(/not within the 100 s/);
    await expect(
      hierarchicalRemoval({
        candidates: [{ time: 100, detection_statistic: 9 }, { time: 300, detection_statistic: 1 }],
        countAtLeast: (x) => s.countAtLeast(x),
        backgroundLivetime: 100,
        foregroundLivetime: 1,
        maxRemovals: 1,
        remove: () => ({ statistics: [5, 5], livetime_s: 1 }),
      }),
    ).rejects.toThrow(/must be background events/);
  });
});
