import { afterAll, describe, expect, it } from "vitest";
import { mkdtempSync, readdirSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import h5wasm from "h5wasm/node";
import { BackgroundSummary, JULIAN_YEAR_S, readBackground, readEvents, readEventsFile, writeBackground, writeEvents } from "../src/index.js";
import { FIXTURES } from "../../../test/fixtures.js";

const FIX = FIXTURES;
const dir = mkdtempSync(join(tmpdir(), "ts-stats-io-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("events files", () => {
  it("reads the h5py fixtures: dtypes, shapes and attrs", async () => {
    const bg = await readEventsFile(join(FIX, "background.h5"));
    expect(bg.events.detection_statistic.length).toBe(500);
    expect(bg.events.time.length).toBe(500);
    expect(bg.events.nIfo).toBe(2);
    expect(bg.events.shift.length).toBe(1000);
    expect(bg.events.livetime).toBe(12000);
    expect(bg.events.ifos).toEqual(["H1", "L1"]); // h5py fixed-length byte strings
    expect(bg.events.kind).toBe("background");
    expect(bg.events.injection_index).toBeUndefined();
    const fg = await readEvents(join(FIX, "foreground.h5"));
    expect(fg.detection_statistic.length).toBe(5);
    expect(fg.livetime).toBe(256);
    expect(Array.from(fg.shift).every((v) => v === 0)).toBe(true);
  });

  it("writes atomically and reads back exactly, with int64 injection_index", async () => {
    const path = join(dir, "jobs", "inj-1-k0.h5");
    const ev = {
      time: Float64Array.from([1187008070.25, 1187008071.5, 1187008200.75]),
      detection_statistic: Float64Array.from([3.5, -1.25, 7]),
      shift: Float64Array.from([0, 0, 0, 0, 0, 0]),
      nIfo: 2,
      injection_index: Int32Array.from([0, -1, 1]),
      livetime: 192.25,
      ifos: ["H1", "L1"],
      kind: "injection",
      job_id: "inj-1-k0",
    };
    await writeEvents(path, ev);
    await writeEvents(path, ev); // a retried job overwrites
    expect(readdirSync(join(dir, "jobs"))).toEqual(["inj-1-k0.h5"]); // no temporary left behind
    const back = await readEvents(path);
    expect(back).toEqual(ev);
  });

  it("writes and reads an empty event set", async () => {
    const path = join(dir, "empty.h5");
    await writeEvents(path, { time: new Float64Array(0), detection_statistic: new Float64Array(0), shift: new Float64Array(0), nIfo: 2, livetime: 64, ifos: ["H1", "L1"], kind: "background" });
    const back = await readEvents(path);
    expect(back.detection_statistic.length).toBe(0);
    expect(back.livetime).toBe(64);
  });

  it("refuses what it can't use, naming the file and field", async () => {
    const junk = join(dir, "junk.h5");
    writeFileSync(junk, "not hdf5");
    await expect(readEvents(junk)).rejects.toThrow(/junk\.h5: cannot open as HDF5/);
    await expect(readEvents(join(dir, "missing.h5"))).rejects.toThrow(/missing\.h5/);
    await expect(readEvents(join(FIX, "injections.h5"))).rejects.toThrow(/injections\.h5: \/events: expected a group/);
    // bad shape and missing livetime
    await h5wasm.ready;
    const bad = join(dir, "bad.h5");
    const f = new h5wasm.File(bad, "w");
    const g = f.create_group("events");
    g.create_dataset({ name: "time", data: new Float64Array(3), shape: [3], dtype: "<d" });
    g.create_dataset({ name: "detection_statistic", data: new Float64Array(3), shape: [3], dtype: "<d" });
    g.create_dataset({ name: "shift", data: new Float64Array(4), shape: [2, 2], dtype: "<d" });
    f.close();
    await expect(readEvents(bad)).rejects.toThrow(/bad\.h5: \/events attr livetime: expected/);
    const bad2 = join(dir, "bad2.h5");
    const f2 = new h5wasm.File(bad2, "w");
    const g2 = f2.create_group("events");
    g2.create_attribute("livetime", 5, null, "<d");
    g2.create_dataset({ name: "time", data: new Float64Array(3), shape: [3], dtype: "<d" });
    g2.create_dataset({ name: "detection_statistic", data: new Float64Array(3), shape: [3], dtype: "<d" });
    g2.create_dataset({ name: "shift", data: new Float64Array(4), shape: [2, 2], dtype: "<d" });
    f2.close();
    await expect(readEvents(bad2)).rejects.toThrow(/bad2\.h5: \/events\/shift: expected shape \[3, n_ifo\]/);
  });
});

describe("background files", () => {
  it("DESIGN.md values on the h5py fixtures, computed independently from the raw arrays", async () => {
    const bgRaw = await readEvents(join(FIX, "background.h5"));
    const fgRaw = await readEvents(join(FIX, "foreground.h5"));
    const bgStats = Array.from(bgRaw.detection_statistic);
    const distinct = [...new Set(bgStats)];
    expect(distinct.length).toBeLessThan(bgStats.length); // the fixture has ties
    const s = await readBackground(join(FIX, "background.h5"));
    expect(s.livetime).toBe(12000);
    expect(s.exactAbove).toBe(-Infinity);
    const expectedCurve = distinct
      .sort((a, b) => b - a)
      .map((x) => ({ detection_statistic: x, far_per_year: (bgStats.filter((y) => y >= x).length * 31557600) / 12000 }));
    expect(s.farCurve()).toEqual(expectedCurve);
    for (const x of fgRaw.detection_statistic) {
      const n = bgStats.filter((y) => y >= x).length;
      const r = s.significance(x, 256);
      expect(r.n_louder).toBe(n);
      expect(r.far_per_year).toBe(((n + 1) * 31557600) / 12000);
      expect(r.ifar_years).toBe(1 / (((n + 1) * 31557600) / 12000));
      expect(r.p_value).toBeCloseTo(1 - Math.exp((-256 * (n + 1)) / 12000), 14);
      expect(r.saturated).toBe(n === 0);
    }
  });

  it("background.h5 round trip keeps counts, exact region and histogram", async () => {
    let seed = 3;
    const r = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const s = new BackgroundSummary({ nIfo: 2, capacity: 30 });
    for (let j = 0; j < 8; j++) {
      const st = Float64Array.from({ length: 50 }, () => -Math.log(r()));
      s.addJob(`bg-${j}`, { livetime: 1000, detection_statistic: st, time: Float64Array.from(st, (_, i) => i), shift: new Float64Array(100).fill(j) });
    }
    const path = join(dir, "background.h5");
    await writeBackground(path, s, { ifos: ["H1", "L1"], campaign: "c1" });
    const back = await readBackground(path);
    expect(back.livetime).toBe(8000);
    expect(back.events).toBe(400);
    expect(back.exactAbove).toBe(s.exactAbove);
    expect(back.farCurve()).toEqual(s.farCurve());
    expect(back.jobIds().sort()).toEqual(s.jobIds().sort());
    for (const x of [0.1, 1, 2, 3, 5]) expect(back.countAtLeast(x)).toEqual(s.countAtLeast(x));
    expect(back.loudest().job_id).toEqual(s.loudest().job_id);
    expect(JULIAN_YEAR_S).toBe(31557600);
  });

  it("reads a copied foreign file the same as the original", async () => {
    const p = join(dir, "copy.h5");
    copyFileSync(join(FIX, "background.h5"), p);
    expect((await readBackground(p)).farCurve()).toEqual((await readBackground(join(FIX, "background.h5"))).farCurve());
  });
});
