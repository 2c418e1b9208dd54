import { describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import fc from "fast-check";
import h5wasm from "h5wasm/node";
import { JULIAN_YEAR, Segment, SegmentList, livetimeSamples, shiftVector } from "@timeslide/segments";
import { DEFAULT_FACTORIZED_JOB_LIVETIME, DEFAULT_JOB_LIVETIME, MAX_BACKGROUND_JOBS, parseCampaign, planCampaign, planJobs, prepareCampaign, shiftIndices, shiftOutputSpan, livetimeOptions, livetimeOptionsOf, type DataInventory } from "@timeslide/campaign";
import { resamplingHalfSupport } from "@timeslide/strain";
import { FIXTURES, tempDir, writeCampaign } from "./helpers.js";

const CLI = join(import.meta.dirname, "../../../apps/cli/dist/main.js");

/** Good seconds of one detector from its files' DQ masks, computed bit by bit (no segment code). */
async function goodSeconds(ifo: string, t0: number, n: number, flags: string[]): Promise<boolean[]> {
  await h5wasm.ready;
  const good = new Array<boolean>(n).fill(false);
  for (const start of [1187008000, 1187008128]) {
    const f = new h5wasm.File(join(FIXTURES, "gwosc", `${ifo[0]}-${ifo}_GWOSC_512HZ_R1-${start}-128.hdf5`), "r");
    const names = (f.get("quality/simple/DQShortnames") as any).value as string[];
    const mask = (f.get("quality/simple/DQmask") as any).value as Int32Array;
    const bits = flags.map((fl) => 1 << names.indexOf(fl));
    mask.forEach((m, i) => (good[start - t0 + i] = bits.every((b) => (m & b) !== 0)));
    f.close();
  }
  return good;
}

function runs(good: boolean[], t0: number): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let s = -1;
  good.forEach((g, i) => {
    if (g && s < 0) s = i;
    if (!g && s >= 0) (out.push([t0 + s, t0 + i]), (s = -1));
  });
  if (s >= 0) out.push([t0 + s, t0 + good.length]);
  return out;
}

describe("plan on GWOSC files written by h5py", () => {
  for (const circular of [false, true])
    it(`reports the segments and livetimes an independent interval computation gives, to the sample (${circular ? "circular" : "non-circular"}, with the segment-end edge)`, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const psd = 16, isr = 4, minDuration = 50, step = 3, nShifts = 7, fduration = 1;
        const file = writeCampaign(
          dir,
          `name: fixture-plan
ifos: [H1, L1]
data:
  files: ["${FIXTURES}/gwosc/H-H1_*.hdf5", "${FIXTURES}/gwosc/L-L1_*.hdf5"]
  sample_rate: 256
  segments: { flags: [DATA, CBC_CAT1], min_duration: ${minDuration} }
inference: { psd_length: ${psd}, kernel_length: 1, inference_sampling_rate: ${isr}, fduration: ${fduration} }
background: { shifts: ${nShifts}, step: ${step}, max_job_duration: 40, circular: ${circular} }
`,
        );
        const out = execFileSync(process.execPath, [CLI, "plan", file, "--json"], { encoding: "utf8" });
        const plan = JSON.parse(out);

        // the files are at 512 Hz, analysed at 256 Hz: the edge is half the
        // whitening filter plus the resampler's half-support (under 0.5 s)
        const r = resamplingHalfSupport(512, 256);
        expect(r).toBeGreaterThan(0);
        expect(r).toBeLessThanOrEqual(0.5);
        expect(plan.edge_s).toBe(fduration / 2 + r);
        const edge = plan.edge_s;

        const t0 = 1187008000, n = 256;
        const h1 = await goodSeconds("H1", t0, n, ["DATA", "CBC_CAT1"]);
        const l1 = await goodSeconds("L1", t0, n, ["DATA", "CBC_CAT1"]);
        const coincident = runs(h1.map((g, i) => g && l1[i]), t0);
        const kept = coincident.filter(([a, b]) => b - a >= minDuration);
        expect(coincident.length).toBeGreaterThan(kept.length); // one coincident segment is too short
        expect(kept.some(([a, b]) => a < 1187008128 && b > 1187008128)).toBe(true); // one crosses the file boundary
        expect(plan.segments).toEqual(kept);

        const samples = (x: number) => Math.max(0, Math.floor(x * isr + 1e-9)) / isr;
        const fg = kept.reduce((acc, [a, b]) => acc + samples(b - a - psd - edge), 0);
        let bg = 0;
        for (let k = 1; k <= nShifts; k++)
          for (const [a, b] of kept) {
            if (!circular) bg += samples(b - a - k * step - psd - edge);
            else {
              // disguised zero lag: the slide, modulo the ring L − 2·edge, within the light-travel time
              const ring = b - a - 2 * edge;
              const d = (k * step) % ring;
              if (d >= 0.0101 && ring - d >= 0.0101) bg += samples(b - a - psd - edge);
            }
          }
        expect(plan.livetime.foreground_s).toBeCloseTo(fg, 9);
        expect(plan.livetime.background_s).toBeCloseTo(bg, 9);
        expect(plan.shifts).toEqual(Array.from({ length: nShifts }, (_, i) => [0, (i + 1) * step]));
        expect(plan.jobs.foreground).toBeGreaterThan(kept.length); // segments were split (max_job_duration 40 s)
      } finally {
        cleanup();
      }
    });

  it("chooses the smallest number of shifts that reaches a livetime target", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = writeCampaign(
        dir,
        `name: fixture-target
ifos: [H1, L1]
data:
  files: ["${FIXTURES}/gwosc/*.hdf5"]
  sample_rate: 512
  segments: { min_duration: 32 }
inference: { psd_length: 16, kernel_length: 1 }
background: { livetime: 2000s, step: 1.5 }
`,
      );
      const plan = JSON.parse(execFileSync(process.execPath, [CLI, "plan", file, "--json"], { encoding: "utf8" }));
      const lengths = plan.segments.map(([a, b]: number[]) => b - a);
      const total = (n: number) => {
        let s = 0;
        for (let k = 1; k <= n; k++) for (const L of lengths) s += Math.max(0, Math.floor((L - 1.5 * k - 16 - 0.5) * 4) / 4); // files at the analysis rate: edge = fduration/2
        return s;
      };
      const N = plan.shifts.length;
      expect(total(N)).toBeGreaterThanOrEqual(2000);
      expect(total(N - 1)).toBeLessThan(2000);
      expect(plan.livetime.background_s).toBe(total(N));
    } finally {
      cleanup();
    }
  });
});

describe("refusals name the file, the field and what was expected", () => {
  const base = (extra: Partial<Record<"files" | "bg" | "ifos" | "seg" | "top", string>> = {}) => `name: refuse
ifos: ${extra.ifos ?? "[H1, L1]"}
data:
  files: ${extra.files ?? `["${FIXTURES}/gwosc/*.hdf5"]`}
  sample_rate: 512
  segments: ${extra.seg ?? "{ min_duration: 32 }"}
inference: { psd_length: 16, kernel_length: 1 }
background: ${extra.bg ?? "{ shifts: 3 }"}
${extra.top ?? ""}`;

  const cases: Array<[string, string, RegExp]> = [
    ["unknown field", base({ top: "outptu: x\n" }), /campaign\.yaml: \(top level\): unknown field "outptu"/],
    ["step as a string", base({ bg: '{ shifts: 3, step: "1s" }' }), /campaign\.yaml: background\.step: expected a number of seconds, got "1s"/],
    ["step below light travel", base({ bg: "{ shifts: 3, step: 0.005 }" }), /background\.step: expected a number > 0\.0100 s \(the H1–L1 light-travel time\), got 0\.005/],
    ["glob matching nothing", base({ files: '["nothing/*.hdf5"]' }), /data\.files\[0\]: "nothing\/\*\.hdf5" matches no file/],
    ["detector with no files", base({ ifos: "[H1, V1]", bg: "{ shifts: 3, step: 1 }" }), /no file holds V1 data/],
    ["no analysable time", base({ seg: "{ min_duration: 500 }" }), /data gives no analysable time: good data H1 \d+ s, L1 \d+ s/],
    ["both livetime and shifts", base({ bg: "{ shifts: 3, livetime: 1d }" }), /background: give exactly one of livetime/],
    ["unreachable target", base({ bg: "{ livetime: 10y }" }), /background\.livetime: 10\.00 y cannot be reached with step 1 s/],
    [
      "factorized step not a whole number of embeddings",
      base({ bg: "{ shifts: 3, step: 1.1 }", top: "model: { name: detector-slides, factorized: true }\n" }),
      /campaign\.yaml: background\.step: model\.factorized: true needs every shift to be a whole multiple of 1\/inference\.inference_sampling_rate \(1\/4 = 0\.25 s\); got 1\.1 s/,
    ],
    [
      "factorized explicit shifts not whole numbers of embeddings",
      base({ bg: "{ shifts: [[0, 2], [0, 3.1], [0, 0.3]] }", top: "model: { name: detector-slides, factorized: true }\n" }),
      /background\.shifts: model\.factorized: true needs every shift to be a whole multiple of 1\/inference\.inference_sampling_rate \(1\/4 = 0\.25 s\): shifts\[1\] has 3\.1, shifts\[2\] has 0\.3/,
    ],
    ["rate that does not divide", base().replace("sample_rate: 512", "sample_rate: 300"), /data\.sample_rate: expected a rate that divides H1's 512 Hz/],
  ];
  for (const [label, yaml, message] of cases) {
    it(label, async () => {
      const { dir, cleanup } = tempDir();
      try {
        const file = writeCampaign(dir, yaml);
        await expect(prepareCampaign(file)).rejects.toThrow(message);
      } finally {
        cleanup();
      }
    });
  }

  it("the command exits with status 2 and the message on stderr", () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = writeCampaign(dir, cases[1][1]);
      const r = spawnSync(process.execPath, [CLI, "plan", file], { encoding: "utf8" });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(cases[1][2]);
      expect(r.stdout).toBe("");
    } finally {
      cleanup();
    }
  });
});

describe("splitting segments into jobs", () => {
  const arb = fc.record({
    lengths: fc.array(fc.integer({ min: 20, max: 900 }), { minLength: 1, maxLength: 6 }),
    psd: fc.integer({ min: 4, max: 32 }),
    isr: fc.constantFrom(1, 2, 4, 16),
    maxJob: fc.integer({ min: 40, max: 400 }),
    step: fc.constantFrom(0.25, 1, 3, 7.5),
    nShifts: fc.integer({ min: 1, max: 40 }),
    jobLivetime: fc.integer({ min: 1, max: 3000 }),
    circular: fc.boolean(),
    fileRate: fc.constantFrom(256, 1024, 4096),
  });

  it("changes no livetime, keeps spans inside segments and names every job uniquely", () => {
    fc.assert(
      fc.property(arb, (p) => {
        fc.pre(p.maxJob > p.psd + 1);
        let t = 1_000_000_000;
        const segs: Array<[number, number]> = p.lengths.map((L) => {
          const s: [number, number] = [t, t + L];
          t += L + 10;
          return s;
        });
        const c = parseCampaign(
          `name: prop
ifos: [H1, L1]
data: { files: [x], sample_rate: 256, segments: { min_duration: 1 } }
inference: { psd_length: ${p.psd}, kernel_length: 1, inference_sampling_rate: ${p.isr}, fduration: 1 }
background: { shifts: ${p.nShifts}, step: ${p.step}, max_job_duration: ${p.maxJob}, job_livetime: ${p.jobLivetime}, circular: ${p.circular} }
`,
          "/tmp/prop.yaml",
        );
        const list = new SegmentList(segs);
        const inventory: DataInventory = { files: {}, sampleRate: { H1: p.fileRate, L1: 256 }, coverage: {}, good: { H1: list, L1: list }, warnings: [] };
        const edge = 0.5 + resamplingHalfSupport(p.fileRate, 256);
        const o = livetimeOptions(c, edge);
        const fgTotal = p.lengths.reduce((a, L) => a + livetimeSamples(L, [0, 0], o), 0);
        fc.pre(fgTotal > 0);
        const plan = planCampaign(c, { inventory });
        expect(plan.edge).toBe(edge);

        // livetime per kind equals the DESIGN.md formula summed over whole segments
        let bg = 0;
        for (let k = 1; k <= p.nShifts; k++) for (const L of p.lengths) bg += livetimeSamples(L, shiftVector(k, p.step, 2), o);
        expect(plan.livetime.background_s).toBe(bg / p.isr);
        expect(plan.livetime.foreground_s).toBe(fgTotal / p.isr);
        const sum = (kind: string) => plan.jobs.filter((j) => j.payload.kind === kind).reduce((a, j) => a + j.payload.livetime * p.isr, 0);
        expect(sum("background")).toBe(bg);
        expect(sum("foreground")).toBe(fgTotal);

        const ids = new Set<string>();
        for (const j of plan.jobs) {
          expect(j.id).not.toContain(":");
          expect(ids.has(j.id)).toBe(false);
          ids.add(j.id);
          const [s, e] = j.payload.segment;
          const [c0, c1] = j.payload.span;
          expect(c0).toBeGreaterThanOrEqual(s);
          expect(c1).toBeLessThanOrEqual(e);
          expect(c1 - c0).toBeLessThanOrEqual(p.maxJob);
          const shifts = shiftIndices(j.payload);
          // packed up to job_livetime, but never fewer than one shift
          if (shifts.length > 1) expect(j.payload.livetime).toBeLessThanOrEqual(p.jobLivetime);
          // the job's own livetime is the sum of its per-shift output spans
          let own = 0;
          for (const k of shifts) {
            const [a, b] = shiftOutputSpan(j.payload.segment, j.payload.span, plan.shiftTable[k], o);
            own += b - a;
            // every detector's shifted output, and the filters' support after it, stay inside the segment
            if (!p.circular && b > a) expect(b + Math.max(...plan.shiftTable[k]) + edge).toBeLessThanOrEqual(e + 1e-9);
            if (p.circular) expect(b + edge).toBeLessThanOrEqual(e + 1e-9);
          }
          expect(own).toBeCloseTo(j.payload.livetime, 9);
        }
      }),
      { numRuns: 150 },
    );
  });
});

describe("data the planner refuses", () => {
  it("refuses files of one detector with inconsistent sample spacing, naming both files", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { writeGwoscFile } = await import("./helpers.js");
      await writeGwoscFile(join(dir, "H-H1-1000000000-64.hdf5"), { ifo: "H1", start: 1_000_000_000, duration: 64, rate: 256 });
      await writeGwoscFile(join(dir, "H-H1-1000000064-64.hdf5"), { ifo: "H1", start: 1_000_000_064, duration: 64, rate: 128 });
      await writeGwoscFile(join(dir, "L-L1-1000000000-128.hdf5"), { ifo: "L1", start: 1_000_000_000, duration: 128, rate: 256 });
      const file = writeCampaign(
        dir,
        `name: spacing
ifos: [H1, L1]
data: { files: ["*.hdf5"], sample_rate: 128, segments: { min_duration: 32 } }
inference: { psd_length: 16, kernel_length: 1, highpass: 16 }
background: { shifts: 2 }
`,
      );
      const r = spawnSync(process.execPath, [CLI, "plan", file], { encoding: "utf8" });
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/H1 files disagree on the sample spacing: .*H-H1-1000000064-64\.hdf5 has 0\.0078125 s \(128 Hz\), .*H-H1-1000000000-64\.hdf5 has 0\.00390625 s \(256 Hz\)/);
    } finally {
      cleanup();
    }
  });

  it("plans files it wrote itself: gaps in both detectors and a file boundary", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { writeGwoscFile } = await import("./helpers.js");
      const t = 1_000_000_000;
      await writeGwoscFile(join(dir, "H-H1-a.hdf5"), { ifo: "H1", start: t, duration: 200, rate: 64, bad: [[50, 60]] });
      await writeGwoscFile(join(dir, "H-H1-b.hdf5"), { ifo: "H1", start: t + 200, duration: 200, rate: 64 });
      await writeGwoscFile(join(dir, "L-L1-a.hdf5"), { ifo: "L1", start: t, duration: 400, rate: 64, bad: [[300, 305]] });
      const file = writeCampaign(
        dir,
        `name: own
ifos: [H1, L1]
data: { files: ["H-*.hdf5", "L-*.hdf5"], sample_rate: 64, segments: { min_duration: 45 } }
inference: { psd_length: 16, kernel_length: 1, highpass: 16, inference_sampling_rate: 2 }
background: { shifts: 1, step: 2 }
`,
      );
      const plan = JSON.parse(execFileSync(process.execPath, [CLI, "plan", file, "--json"], { encoding: "utf8" }));
      expect(plan.segments).toEqual([[t, t + 50], [t + 60, t + 300], [t + 305, t + 400]]);
      // each segment: L − psd_length − edge (files at the analysis rate: edge = fduration/2 = 0.5 s), less max δ = 2 s for the slide
      expect(plan.edge_s).toBe(0.5);
      expect(plan.livetime.foreground_s).toBe(33.5 + 223.5 + 78.5);
      expect(plan.livetime.background_s).toBe(31.5 + 221.5 + 76.5);
    } finally {
      cleanup();
    }
  });
});

describe("defaults that do not warn, plans that give nothing", () => {
  const text = (bg: string, inference = "{ psd_length: 16 }") => `name: defaults
ifos: [H1, L1]
data: { files: ["${FIXTURES}/gwosc/*.hdf5"], sample_rate: 512, segments: { min_duration: 32 } }
inference: ${inference}
background: ${bg}
`;

  it("the default step is max(1 s, kernel_length): a campaign with the defaults has no warning", () => {
    const c = parseCampaign(text("{ shifts: 3 }"), "campaign.yaml");
    expect(c.spec.background.step).toBe(1.5);
    expect(c.warnings).toEqual([]);
    expect(parseCampaign(text("{ shifts: 3 }", "{ psd_length: 16, kernel_length: 0.5 }"), "campaign.yaml").spec.background.step).toBe(1);
    // A step chosen below the kernel still warns.
    expect(parseCampaign(text("{ shifts: 3, step: 1 }"), "campaign.yaml").warnings).toEqual([expect.stringMatching(/background\.step 1 s is shorter than inference\.kernel_length 1\.5 s/)]);
  });

  it("a plan that gives 0 s of background says so", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const { plan } = await prepareCampaign(writeCampaign(dir, text("{ shifts: [[0, 1000]] }")));
      expect(plan.livetime.background_s).toBe(0);
      expect(plan.warnings).toEqual([expect.stringMatching(/^background: the plan gives 0 s of background livetime \(1 shift\(s\), largest 1000 s; longest segment \d+ s/)]);
    } finally {
      cleanup();
    }
  });
});

describe("a thousand years", () => {
  it("plans more than 2·10^5 jobs in seconds, in queue order, without spreading them on the stack", () => {
    // 30 segments of a day, circular, 8000 shifts: ~2.4·10^5 background jobs of 1 h of livetime each
    const c = parseCampaign(
      `name: big
ifos: [H1, L1]
data: { files: ["x"], sample_rate: 4 }
inference: { kernel_length: 1.5, inference_sampling_rate: 4, psd_length: 64, fduration: 1, highpass: 1 }
background: { shifts: 8000, step: 2, max_job_duration: 86400, job_livetime: 3600, circular: true }
`,
      "big.yaml",
    );
    const segments = Array.from({ length: 30 }, (_, i) => new Segment(1e9 + i * 100_000, 1e9 + i * 100_000 + 86_400));
    const shiftTable = Array.from({ length: 8001 }, (_, k) => shiftVector(k, 2, 2));
    const { jobs, totals } = planJobs(c.spec, { edge: 0.5 }, segments, shiftTable);
    expect(jobs.length).toBeGreaterThan(200_000);
    const firstBg = jobs.findIndex((j) => j.payload.kind === "background");
    expect(jobs.slice(0, firstBg).every((j) => j.payload.kind === "foreground")).toBe(true);
    expect(jobs.slice(firstBg).every((j) => j.payload.kind === "background")).toBe(true);
    // every shift of every segment planned once, livetime exactly the sum of the jobs'
    let sum = 0;
    for (const j of jobs) if (j.payload.kind === "background") sum += j.payload.livetime * 4;
    expect(sum).toBe(totals.background);
    const perSegment = livetimeSamples(86_400, [0, 2], livetimeOptionsOf(c.spec, 0.5));
    expect(totals.background).toBe(perSegment * 30 * 8000);
  });

  it("a factorized campaign packs 32× more livetime per job by default (one encoding per detector, a cheap head per shift); whole multiples of 1/isr plan", () => {
    const yaml = (factorized: boolean) => `name: packed
ifos: [H1, L1]
data: { files: ["x"], sample_rate: 4 }
model: { name: detector-${factorized ? "slides" : "stream"}, factorized: ${factorized} }
inference: { kernel_length: 1.5, inference_sampling_rate: 4, psd_length: 64, fduration: 1, highpass: 1 }
background: { shifts: 2000, step: 2.25, max_job_duration: 4096 }
`;
    const segments = [new Segment(1e9, 1e9 + 40_000)];
    const shiftTable = Array.from({ length: 2001 }, (_, k) => shiftVector(k, 2.25, 2));
    const count = (factorized: boolean) => {
      const c = parseCampaign(yaml(factorized), "packed.yaml");
      const { jobs, totals } = planJobs(c.spec, { edge: 0.5 }, segments, shiftTable);
      const bg = jobs.filter((j) => j.payload.kind === "background");
      return { bg, totals, most: Math.max(...bg.map((j) => j.payload.livetime)) };
    };
    const whole = count(false);
    const fact = count(true);
    expect(fact.totals.background).toBe(whole.totals.background);
    expect(whole.most).toBeLessThanOrEqual(DEFAULT_JOB_LIVETIME);
    expect(fact.most).toBeLessThanOrEqual(DEFAULT_FACTORIZED_JOB_LIVETIME);
    expect(fact.most).toBeGreaterThan(DEFAULT_JOB_LIVETIME * 16);
    expect(fact.bg.length * 16).toBeLessThan(whole.bg.length);
  });

  it("ten thousand years without job_livetime: jobs grow instead of their number (about MAX_BACKGROUND_JOBS)", () => {
    const c = parseCampaign(
      `name: huge
ifos: [H1, L1]
data: { files: ["x"], sample_rate: 4 }
inference: { kernel_length: 1.5, inference_sampling_rate: 4, psd_length: 64, fduration: 1, highpass: 1 }
background: { shifts: 122000, step: 2, max_job_duration: 86400, circular: true }
`,
      "huge.yaml",
    );
    expect(c.spec.background.job_livetime).toBeUndefined();
    const segments = Array.from({ length: 30 }, (_, i) => new Segment(1e9 + i * 300_000, 1e9 + i * 300_000 + 86_400));
    const shiftTable = Array.from({ length: 122_001 }, (_, k) => shiftVector(k, 2, 2));
    const { jobs, totals } = planJobs(c.spec, { edge: 0.5 }, segments, shiftTable);
    const bg = jobs.filter((j) => j.payload.kind === "background");
    expect(totals.background / 4 / JULIAN_YEAR).toBeGreaterThan(10_000);
    // a job closes when its next shift would overflow the budget: each is at least budget − one shift full
    expect(bg.length).toBeLessThanOrEqual(MAX_BACKGROUND_JOBS * 1.06 + 30);
    expect(bg.length).toBeGreaterThan(MAX_BACKGROUND_JOBS * 0.9);
    const most = Math.max(...bg.slice(0, 1000).map((j) => j.payload.livetime));
    expect(most).toBeGreaterThan(DEFAULT_JOB_LIVETIME * 5); // ~18 d a job, not 2 d
  });
});
