// background.vetoes: planned livetime exact, zero lag untouched, the target met after vetoes.
import { describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SegmentList, countRanges, vetoedSamples } from "@timeslide/segments";
import { parseCampaign, planCampaign, prepareCampaign, shiftIndices, shiftOutputSpan, livetimeOptions, type DataInventory } from "@timeslide/campaign";
import { tempDir, writeCampaign, writeGwoscFile } from "./helpers.js";

const T = 1_000_000_000;
const segs: Array<[number, number]> = [[T, T + 700], [T + 800, T + 1300]];

function campaign(bg: string) {
  return parseCampaign(
    `name: veto
ifos: [H1, L1]
data: { files: [x], sample_rate: 256, segments: { min_duration: 1 } }
inference: { psd_length: 16, kernel_length: 1, inference_sampling_rate: 4, fduration: 1 }
background: ${bg}
`,
    "/tmp/veto.yaml",
  );
}
const list = new SegmentList(segs);
const inventory: DataInventory = { files: {}, sampleRate: { H1: 256, L1: 256 }, coverage: {}, good: { H1: list, L1: list }, warnings: [] };
const vetoes = new SegmentList([[T + 100, T + 104], [T + 650, T + 660], [T + 1000, T + 1001]]).coalesce();

describe("background vetoes", () => {
  for (const circular of [false, true])
    it(`take exactly the vetoed samples from the background and nothing from zero lag (${circular ? "circular" : "non-circular"})`, () => {
      const c = campaign(`{ shifts: 30, step: 7, max_job_duration: 200, job_livetime: 2000, circular: ${circular} }`);
      const plain = planCampaign(c, { inventory });
      const vetoed = planCampaign(c, { inventory, vetoes });
      expect(vetoed.livetime.foreground_s).toBe(plain.livetime.foreground_s);
      expect(vetoed.livetime.injection_s).toBe(plain.livetime.injection_s);
      expect(vetoed.livetime.vetoed_s).toBeGreaterThan(0);
      expect(vetoed.livetime.background_s + vetoed.livetime.vetoed_s).toBeCloseTo(plain.livetime.background_s, 9);
      // independently: per segment and shift over the whole output span (no jobs)
      const o = livetimeOptions(c, vetoed.edge);
      let removed = 0;
      for (const [s, e] of segs)
        for (const v of vetoed.shiftTable.slice(1)) {
          const out = shiftOutputSpan([s, e], [s, e], v, o);
          const n = Math.round((out[1] - out[0]) * 4);
          removed += countRanges(
            vetoedSamples(out[0], n, v, vetoes.segments, { kernelLength: 1, inferenceSamplingRate: 4, ring: circular ? [s + o.edge, e - o.edge] : undefined }),
          );
        }
      expect(vetoed.livetime.vetoed_s).toBe(removed / 4);
      const sum = vetoed.jobs.filter((j) => j.payload.kind === "background").reduce((a, j) => a + j.payload.livetime, 0);
      expect(sum).toBeCloseTo(vetoed.livetime.background_s, 9);
      expect(vetoed.jobs.every((j) => shiftIndices(j.payload).length > 0)).toBe(true);
    });

  it("a livetime target is met after vetoes", () => {
    const c = campaign("{ livetime: 20000s, step: 7, max_job_duration: 200 }");
    const plain = planCampaign(c, { inventory });
    const vetoed = planCampaign(c, { inventory, vetoes });
    expect(plain.livetime.background_s).toBeGreaterThanOrEqual(20000);
    expect(vetoed.livetime.background_s).toBeGreaterThanOrEqual(20000);
    expect(vetoed.shiftTable.length).toBeGreaterThan(plain.shiftTable.length);
  });

  it("plan reads the veto file and names it when it can't", async () => {
    const { dir, cleanup } = tempDir();
    try {
      await writeGwoscFile(join(dir, "H-H1-a.hdf5"), { ifo: "H1", start: T, duration: 200, rate: 64 });
      await writeGwoscFile(join(dir, "L-L1-a.hdf5"), { ifo: "L1", start: T, duration: 200, rate: 64 });
      const yaml = (v: string) => `name: vfile
ifos: [H1, L1]
data: { files: ["*.hdf5"], sample_rate: 64, segments: { min_duration: 45 } }
inference: { psd_length: 16, kernel_length: 1, highpass: 16 }
background: { shifts: 3, step: 2, vetoes: ${v} }
`;
      writeFileSync(join(dir, "known-events.txt"), `# GPS start end\n${T + 50} ${T + 52}\n`);
      const { plan } = await prepareCampaign(writeCampaign(dir, yaml("known-events.txt")));
      expect(plan.vetoes?.segments.map((s) => [s.start, s.end])).toEqual([[T + 50, T + 52]]);
      expect(plan.livetime.vetoed_s).toBeGreaterThan(0);
      await expect(prepareCampaign(writeCampaign(dir, yaml("missing.txt")))).rejects.toThrow(/background\.vetoes: cannot read .*missing\.txt \(ENOENT\)/);
      writeFileSync(join(dir, "bad.txt"), "1 2 3\n");
      await expect(prepareCampaign(writeCampaign(dir, yaml("bad.txt")))).rejects.toThrow(/background\.vetoes: .*bad\.txt:1: expected "start end"/);
    } finally {
      cleanup();
    }
  });
});
