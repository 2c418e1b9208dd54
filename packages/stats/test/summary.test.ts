import { describe, expect, it } from "vitest";
import { BackgroundSummary, chooseCapacity, countAtLeastSorted, JULIAN_YEAR_S } from "../src/index.js";

function rng(seed: number) {
  return () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
}

interface Job {
  id: string;
  livetime: number;
  detection_statistic: Float64Array;
  time: Float64Array;
  shift: Float64Array;
}

function makeJobs(n: number, perJob: number, seed: number, quantum = 0): Job[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, j) => {
    const m = Math.floor(r() * perJob) + 1;
    const st = Float64Array.from({ length: m }, () => {
      const x = -Math.log(r()) * 2 - 3; // exponential tail, some negatives
      return quantum ? Math.round(x / quantum) * quantum : x; // quantised: many ties
    });
    return {
      id: `bg-${1000 + j}-k${j % 7}`,
      livetime: 100 + j,
      detection_statistic: st,
      time: Float64Array.from(st, (_, i) => 1187000000 + j * 1000 + i),
      shift: Float64Array.from({ length: 2 * m }, (_, i) => (i % 2 ? (j % 7) + 1 : 0)),
    };
  });
}

function build(jobs: Job[], capacity: number): BackgroundSummary {
  const s = new BackgroundSummary({ nIfo: 2, capacity });
  for (const j of jobs) s.addJob(j.id, j);
  return s;
}

function allSorted(jobs: Job[]): Float64Array {
  const all = Float64Array.from(jobs.flatMap((j) => Array.from(j.detection_statistic)));
  return all.sort().reverse();
}

describe("BackgroundSummary", () => {
  const jobs = makeJobs(40, 200, 11, 0.01);
  const sorted = allSorted(jobs);
  const T = jobs.reduce((a, j) => a + j.livetime, 0);

  it("keeps the loudest K exactly: same values and FAR as a full sort", () => {
    const K = 150;
    const s = build(jobs, K);
    expect(s.events).toBe(sorted.length);
    expect(s.livetime).toBe(T);
    const L = s.loudest();
    expect(L.detection_statistic.length).toBe(K);
    expect(Array.from(L.detection_statistic)).toEqual(Array.from(sorted.subarray(0, K)));
    // n(x) exact wherever x is above the loudest dropped statistic
    expect(s.exactAbove).toBe(sorted[K]);
    for (let i = 0; i < K; i++) {
      const x = sorted[i];
      const c = s.countAtLeast(x);
      if (x > s.exactAbove) expect(c).toEqual({ n: countAtLeastSorted(sorted, x), exact: true });
    }
    // FAR curve points in the exact region equal the full-sort curve
    const curve = s.farCurve().filter((p) => p.detection_statistic > s.exactAbove);
    for (const p of curve) expect(p.far_per_year).toBe((countAtLeastSorted(sorted, p.detection_statistic) * JULIAN_YEAR_S) / T);
    expect(curve.length).toBeGreaterThan(50);
  });

  it("below the exact region the histogram gives a conservative (never lower) count within 2^-14 of x, exact where it says so", () => {
    const s = build(jobs, 50);
    for (const x of [-2.95, -1, 0, 0.5, 1.234, s.exactAbove, ...sorted.subarray(60, 400)]) {
      const c = s.countAtLeast(x);
      const truth = countAtLeastSorted(sorted, x);
      if (c.exact) expect(c.n).toBe(truth);
      else {
        expect(c.n).toBeGreaterThanOrEqual(truth);
        expect(c.n).toBeLessThanOrEqual(countAtLeastSorted(sorted, x - Math.abs(x) * 2 ** -13));
      }
    }
    for (const p of s.farCurve()) {
      expect(p.far_per_year).toBe((countAtLeastSorted(sorted, p.detection_statistic) * JULIAN_YEAR_S) / T);
    }
    expect(s.farCurve().at(-1)!.far_per_year).toBe((sorted.length * JULIAN_YEAR_S) / T);
  });

  it("memory stays bounded: kept events never exceed the capacity", () => {
    const s = build(makeJobs(200, 500, 5), 64);
    expect(s.loudest().detection_statistic.length).toBe(64);
    expect(s.events).toBeGreaterThan(10_000);
  });

  it("merging is associative and commutative, and equals one summary over every job", () => {
    const K = 120;
    const [a, b, c] = [build(jobs.slice(0, 13), K), build(jobs.slice(13, 27), K), build(jobs.slice(27), K)];
    const whole = build(jobs, K);
    const left = build(jobs.slice(0, 13), K).merge(build(jobs.slice(13, 27), K)).merge(c);
    const right = a.merge(b.merge(build(jobs.slice(27), K)));
    const swapped = build(jobs.slice(27), K).merge(build(jobs.slice(0, 13), K)).merge(build(jobs.slice(13, 27), K));
    for (const m of [left, right, swapped]) {
      expect(m.livetime).toBe(whole.livetime);
      expect(m.events).toBe(whole.events);
      expect(m.jobCount).toBe(40);
      expect(Array.from(m.loudest().detection_statistic)).toEqual(Array.from(whole.loudest().detection_statistic));
      expect(m.bulk()).toEqual(whole.bulk());
      expect(m.farCurve()).toEqual(whole.farCurve());
      for (const x of [sorted[0], sorted[10], sorted[60], sorted[100]]) expect(m.countAtLeast(x)).toEqual(whole.countAtLeast(x));
    }
  });

  it("a job written twice counts once; merging summaries that share a job is refused", () => {
    const K = 1000; // everything kept: exact counts to compare
    const s = build(jobs.slice(0, 10), K);
    expect(s.addJob(jobs[3].id, jobs[3])).toBe(false);
    const once = build(jobs.slice(0, 10), K);
    expect(s.events).toBe(once.events);
    expect(s.livetime).toBe(once.livetime);
    // overlapping partial summaries (jobs 5..9 in both) are refused, naming a job: the bulk keeps no per-job record
    expect(() => build(jobs.slice(0, 10), K).merge(build(jobs.slice(5, 15), K))).toThrow(/merge: job bg-\d+-k\d+ is in both summaries/);
    // disjoint halves merge to the whole, with a small capacity too
    const m2 = build(jobs.slice(0, 7), 40).merge(build(jobs.slice(7, 15), 40));
    const ref2 = build(jobs.slice(0, 15), 40);
    const s15 = allSorted(jobs.slice(0, 15));
    for (let i = 0; i < 40; i++) {
      const x = s15[i];
      if (x > m2.exactAbove) expect(m2.countAtLeast(x).n).toBe(countAtLeastSorted(s15, x));
    }
    expect(m2.livetime).toBe(ref2.livetime);
    expect(m2.events).toBe(ref2.events);
    expect(m2.bulk()).toEqual(ref2.bulk());
  });

  it("keeps event provenance with the kept events", () => {
    const s = build(jobs, 5);
    const L = s.loudest();
    const top = jobs.find((j) => j.detection_statistic.includes(L.detection_statistic[0]))!;
    expect(L.job_id[0]).toBe(top.id);
    const i = top.detection_statistic.indexOf(L.detection_statistic[0]);
    expect(L.time[0]).toBe(top.time[i]);
    expect(Array.from(L.shift.subarray(0, 2))).toEqual([top.shift[2 * i], top.shift[2 * i + 1]]);
  });

  it("rejects inconsistent input, naming the job", () => {
    const s = new BackgroundSummary({ nIfo: 2 });
    expect(() => s.addJob("bg-x", { livetime: 1, detection_statistic: [1, 2], time: [0, 1], shift: [0, 1] })).toThrow(/bg-x.*shift/);
    expect(() => s.addJob("bg-y", { livetime: 1, detection_statistic: [NaN], time: [0], shift: [0, 1] })).toThrow(/bg-y.*NaN/);
    expect(() => s.merge(new BackgroundSummary({ nIfo: 3 }))).toThrow(/nIfo/);
  });

  it("chooses a capacity that keeps candidates exact where p < 1 − e^−20", () => {
    expect(chooseCapacity(31557600, 604800)).toBe(Math.max(10_000, Math.ceil((20 * 31557600) / 604800)));
    expect(chooseCapacity(1e9, 1e3)).toBe(20_000_000);
    expect(chooseCapacity(0, 10)).toBe(10_000);
  });
});
