// What workers check before trusting Redis: the plan rebuilt from the stored
// metadata is the submitted plan, job by job; paths outside the data and
// output roots are named and refused.
import { describe, expect, it } from "vitest";
import { resolve } from "node:path";
import {
  campaignPathProblems,
  globRoot,
  isInside,
  payloadMismatch,
  planSummary,
  plannedJobs,
  prepareCampaign,
  specOutput,
} from "@timeslide/campaign";
import { FIXTURES, tempDir, writeCampaign } from "./helpers.js";

describe("workers' checks of what they read from Redis", () => {
  it("rebuild the submitted plan exactly from the stored segments, shift table and spec", async () => {
    const { dir, cleanup } = tempDir();
    try {
      const file = writeCampaign(
        dir,
        `name: verify
ifos: [H1, L1]
data: { files: ["${FIXTURES}/gwosc/*.hdf5"], sample_rate: 256, segments: { flags: [DATA, CBC_CAT1], min_duration: 50 } }
inference: { psd_length: 16, kernel_length: 1, inference_sampling_rate: 4 }
background: { shifts: 9, step: 3, max_job_duration: 40, job_livetime: 60 }
injections: { file: "${FIXTURES}/injections.h5" }
`,
      );
      const { campaign, plan } = await prepareCampaign(file);
      const meta = { campaign: "verify", plan: planSummary(plan), shift_table: plan.shiftTable };
      const times = Float64Array.from([1187008070.25, 1187008200.5]);
      const rebuilt = plannedJobs(meta, campaign.spec, times);
      expect([...rebuilt.keys()].map((id) => [id, rebuilt.get(id)])).toEqual(plan.jobs.map((j) => [j.id, j.payload]));
      expect(plan.counts.injection).toBeGreaterThan(0);
      // Without the injection times every chunk gets an injection job: a superset, same livetimes.
      const loose = plannedJobs(meta, campaign.spec);
      for (const j of plan.jobs) expect(loose.get(j.id)).toEqual(j.payload);

      const j = plan.jobs.find((x) => x.payload.kind === "background")!;
      expect(payloadMismatch(j.id, j.payload, rebuilt)).toBeUndefined();
      expect(payloadMismatch(j.id, { ...j.payload, livetime: j.payload.livetime + 1 }, rebuilt)).toMatch(
        new RegExp(`^job ${j.id}: payload field livetime is ${j.payload.livetime + 1}, the campaign's plan says ${j.payload.livetime}`),
      );
      expect(payloadMismatch("bg-1-k1", j.payload, rebuilt)).toMatch(/job bg-1-k1: not a job of campaign verify's plan/);

      // Paths: the planned files and output pass; anything else is named.
      const good = { campaign: "verify", base_dir: campaign.baseDir, output: campaign.output, files: plan.files };
      expect(campaignPathProblems(good, campaign.spec)).toEqual([]);
      expect(specOutput(campaign.spec, campaign.baseDir)).toBe(campaign.output);
      const bad = { ...good, output: "/tmp", files: { ...plan.files, H1: [...plan.files.H1, "/etc/passwd"], V1: [] } };
      const problems = campaignPathProblems(bad, campaign.spec);
      expect(problems).toHaveLength(3);
      expect(problems.join("\n")).toMatch(/output "\/tmp" is not the campaign's output directory/);
      expect(problems.join("\n")).toMatch(new RegExp(`files\\.H1\\[${plan.files.H1.length}\\] "/etc/passwd" is outside the data roots of data\\.files \\(${FIXTURES}/gwosc\\)`));
      expect(problems.join("\n")).toMatch(/files lists detector "V1", not one of ifos H1, L1/);
    } finally {
      cleanup();
    }
  });

  it("glob roots and containment", () => {
    expect(globRoot("data/*.hdf5")).toBe("data");
    expect(globRoot("/d/o3/**/H-*.hdf5")).toBe("/d/o3");
    expect(globRoot("/*.hdf5")).toBe("/");
    expect(globRoot("*.hdf5")).toBe(".");
    expect(globRoot("data/H-H1-1-4096.hdf5")).toBe("data/H-H1-1-4096.hdf5");
    expect(isInside("/a/b", "/a/b/c.h5")).toBe(true);
    expect(isInside("/a/b", "/a/b/../c.h5")).toBe(false);
    expect(isInside("/a/b", "/a/bc/d.h5")).toBe(false);
    expect(isInside("/a/b", resolve("/a/b"))).toBe(true);
  });
});
