// BackgroundRemover on hand-made job files: every sample and event checked by
// brute force against DESIGN.md's condition |t + δ_i − t_c| < w (on a
// circular ring: for some image t_c + mR), vetoed samples not counted,
// overlapping removals counting each sample and event once.
import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gridGroup, writeEvents, type GridRow } from "@timeslide/stats";
import { BackgroundRemover } from "../src/removal.js";

const dir = mkdtempSync(join(tmpdir(), "ts-removal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ISR = 2;
const OFF = 1; // kernel/2 + integration/2

interface Shift {
  k: number;
  v: number[];
  first: number;
  count: number;
  vetoed?: Array<[number, number]>;
  /** sample indices with an event */
  events: number[];
}

async function jobFile(name: string, shifts: Shift[], ring?: [number, number], withGrid = true) {
  const time: number[] = [];
  const stat: number[] = [];
  const shift: number[] = [];
  const rows: GridRow[] = [];
  for (const s of shifts) {
    rows.push({ shiftIndex: s.k, shift: s.v, first: s.first, count: s.count, eventStart: time.length, eventCount: s.events.length, vetoed: s.vetoed ?? [] });
    for (const q of s.events) {
      time.push(s.first + q / ISR - OFF);
      stat.push(100 + q + s.k / 10); // distinct statistics, so the removed ones can be told apart
      shift.push(...s.v);
    }
  }
  const produced = shifts.reduce((a, s) => a + s.count - (s.vetoed ?? []).reduce((b, [x, y]) => b + y - x, 0), 0);
  const path = join(dir, `${name}.h5`);
  await writeEvents(
    path,
    { time: Float64Array.from(time), detection_statistic: Float64Array.from(stat), shift: Float64Array.from(shift), nIfo: 2, livetime: produced / ISR, ifos: ["H1", "L1"], kind: "background", job_id: name },
    {},
    withGrid ? { grid: gridGroup({ inferenceSamplingRate: ISR, eventTimeOffset: OFF, ...(ring ? { ring } : {}), rows }, 2) } : {},
  );
  return { job_id: name, path, livetime: produced / ISR };
}

/** Brute force: samples (produced) and events of these shifts meeting the condition for any of the candidates' images. */
function expected(shifts: Shift[], tcs: number[], w: number, ring?: [number, number]) {
  const images = (tc: number) => (ring && tc >= ring[0] && tc < ring[1] ? Array.from({ length: 41 }, (_, m) => tc + (m - 20) * (ring[1] - ring[0])) : [tc]);
  const hit = (t: number, v: number[]) => tcs.some((tc) => v.some((d) => images(tc).some((u) => Math.abs(t + d - u) < w)));
  let samples = 0;
  const stats: number[] = [];
  for (const s of shifts) {
    for (let j = 0; j < s.count; j++) {
      if ((s.vetoed ?? []).some(([a, b]) => j >= a && j < b)) continue;
      if (hit(s.first + j / ISR - OFF, s.v)) samples++;
    }
    for (const q of s.events) if (hit(s.first + q / ISR - OFF, s.v)) stats.push(100 + q + s.k / 10);
  }
  return { samples, stats: stats.sort((a, b) => a - b) };
}

const sorted = (a: ArrayLike<number>) => Array.from(a).sort((x, y) => x - y);

describe("BackgroundRemover", () => {
  it("non-circular: events and produced samples of the zone, vetoed samples not counted; a second, overlapping removal counts only what is new", async () => {
    const shifts: Shift[] = [
      { k: 1, v: [0, 10], first: 1000, count: 400, events: [10, 70, 80, 81, 100, 150, 300] },
      { k: 2, v: [0, 20], first: 1000, count: 360, vetoed: [[60, 70]], events: [5, 40, 59, 75, 120, 200] },
    ];
    const job = await jobFile("bg-1000-k1", shifts);
    const other = await jobFile("bg-5000-k1", [{ k: 1, v: [0, 10], first: 5000, count: 100, events: [1, 2, 3] }]);
    const w = 4;
    const r = new BackgroundRemover(
      [
        job,
        { ...other, payload: { v: 1, campaign: "c", kind: "background", segment: [4984, 5100], span: [4984, 5100], shifts: [[1, 1]], livetime: 50 } },
        // same segment as t_c, but a later chunk whose detectors read far from it: never opened (the path does not exist)
        {
          job_id: "bg-1600-k1",
          path: join(dir, "does-not-exist.h5"),
          livetime: 100,
          payload: { v: 1, campaign: "c", kind: "background", segment: [984, 3000], span: [1600, 2000], shifts: [[1, 2]], livetime: 100 },
          ownTimes: [[1600, 2000], [1610, 2020]],
        },
      ],
      w,
      OFF,
    );
    const tc1 = 1040.3;
    const first = await r.remove(tc1);
    const e1 = expected(shifts, [tc1], w);
    expect(e1.samples).toBeGreaterThan(30);
    expect(first.livetime_s).toBe(e1.samples / ISR);
    expect(sorted(first.statistics)).toEqual(e1.stats);
    expect(first.files_read).toBe(1); // the other job's segment is far from t_c: not opened
    expect([...first.samples_by_shift.keys()].sort()).toEqual([1, 2]);

    const tc2 = 1043.7; // overlaps the first zone
    const second = await r.remove(tc2);
    const both = expected(shifts, [tc1, tc2], w);
    expect(first.livetime_s + second.livetime_s).toBe(both.samples / ISR);
    expect(sorted([...Array.from(first.statistics), ...Array.from(second.statistics)])).toEqual(both.stats);
    expect(second.livetime_s).toBeLessThan(e1.samples / ISR); // the overlap was not counted again
  });

  it("circular: the slid detector's stream holds t_c at every t_c + mR of the ring", async () => {
    const ring: [number, number] = [1000, 1100];
    // L1 slid by 90 s on a 100 s ring: own time t + 90 wraps, so t_c = 1007 appears near t = 1017 (image 1107) and near t = 1007 in H1
    const shifts: Shift[] = [{ k: 3, v: [0, 90], first: 1010, count: 178, events: [0, 10, 14, 15, 30, 100, 170] }];
    const job = await jobFile("bg-1000-k3", shifts, ring);
    const w = 4;
    const r = new BackgroundRemover([job], w, OFF);
    const tc = 1007;
    const got = await r.remove(tc);
    const e = expected(shifts, [tc], w, ring);
    // without the images only H1's zone near 1007 would count: the ring's image adds L1's
    const plain = expected(shifts, [tc], w);
    expect(e.samples).toBeGreaterThan(plain.samples);
    expect(got.livetime_s).toBe(e.samples / ISR);
    expect(sorted(got.statistics)).toEqual(e.stats);
  });

  it("refuses a job file without a grid, and a grid that does not add up to the job's livetime", async () => {
    const old = await jobFile("bg-old-k1", [{ k: 1, v: [0, 10], first: 1000, count: 10, events: [1] }], undefined, false);
    await expect(new BackgroundRemover([old], 4, OFF).remove(1002)).rejects.toThrow(/no \/grid .*run the job again or set significance\.hierarchical_removal: 0/);
    const bad = await jobFile("bg-bad-k1", [{ k: 1, v: [0, 10], first: 1000, count: 10, events: [1] }]);
    await expect(new BackgroundRemover([{ ...bad, livetime: 7 }], 4, OFF).remove(1002)).rejects.toThrow(/holds 5 s of produced samples but the job's livetime is 7 s/);
  });
});
