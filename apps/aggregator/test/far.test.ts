import { describe, expect, it } from "vitest";
import h5wasm from "h5wasm/node";
import { farFromFiles } from "../src/index.js";
import { FIXTURES } from "../../../test/fixtures.js";

const FIX = FIXTURES;
const YEAR = 31557600;

// Raw arrays straight from h5wasm, no timeslide code involved.
async function raw(path: string): Promise<{ stat: number[]; time: number[]; livetime: number }> {
  await h5wasm.ready;
  const f = new h5wasm.File(path, "r");
  const g = f.get("events") as InstanceType<typeof h5wasm.Group>;
  const stat = Array.from((g.get("detection_statistic") as InstanceType<typeof h5wasm.Dataset>).value as Float64Array);
  const time = Array.from((g.get("time") as InstanceType<typeof h5wasm.Dataset>).value as Float64Array);
  const livetime = Number(g.attrs.livetime.value);
  f.close();
  return { stat, time, livetime };
}

describe("far on event files written by h5py", () => {
  it("gives exactly the DESIGN.md values", async () => {
    const bg = await raw(`${FIX}/background.h5`);
    const fg = await raw(`${FIX}/foreground.h5`);
    const res = await farFromFiles({ background: `${FIX}/background.h5`, foreground: `${FIX}/foreground.h5` });
    expect(res.livetime).toEqual({ background_s: bg.livetime, background_years: bg.livetime / YEAR, foreground_s: fg.livetime });
    expect(res.livetime.background_s).toBe(12000);
    expect(res.livetime.foreground_s).toBe(256);

    // FAR curve: n(x) / T_bg at every distinct statistic, ties counted as louder
    const n = (x: number) => bg.stat.reduce((a, y) => a + (y >= x ? 1 : 0), 0);
    const distinct = [...new Set(bg.stat)].sort((a, b) => b - a);
    expect(distinct.length).toBeLessThan(bg.stat.length);
    expect(res.far_curve).toEqual(distinct.map((x) => ({ detection_statistic: x, far_per_year: (n(x) * YEAR) / 12000 })));

    // candidates, in time order
    const order = fg.time.map((t, i) => [t, i]).sort((a, b) => a[0] - b[0]).map(([, i]) => i);
    expect(res.foreground).toHaveLength(5);
    res.foreground.forEach((c, k) => {
      const x = fg.stat[order[k]];
      const far = ((n(x) + 1) * YEAR) / 12000;
      expect(c.time).toBe(fg.time[order[k]]);
      expect(c.detection_statistic).toBe(x);
      expect(c.far_per_year).toBe(far);
      expect(c.ifar_years).toBe(1 / far);
      expect(c.p_value).toBeCloseTo(1 - Math.exp((-256 * (n(x) + 1)) / 12000), 15);
      expect(c.saturated).toBe(n(x) === 0);
    });
  });

  it("background only: no foreground rows", async () => {
    const res = await farFromFiles({ background: `${FIX}/background.h5` });
    expect(res.foreground).toEqual([]);
    expect(res.livetime.foreground_s).toBe(0);
  });

  it("names the file that is not an events file", async () => {
    await expect(farFromFiles({ background: `${FIX}/injections.h5` })).rejects.toThrow(/injections\.h5: \/events/);
  });
});
