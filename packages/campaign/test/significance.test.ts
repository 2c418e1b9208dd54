import { describe, expect, it } from "vitest";
import { CampaignError, parseCampaign, removalSettings } from "@timeslide/campaign";

const yaml = (extra: string) => `name: sig
ifos: [H1, L1]
data: { files: [x] }
background: { shifts: 2 }
postprocess: { cluster_window: 6 }
${extra}`;

describe("campaign: significance block", () => {
  it("absent: no removal, window = cluster window; defaults resolved", () => {
    const c = parseCampaign(yaml(""), "/tmp/sig.yaml");
    expect(c.spec.significance).toBeUndefined();
    expect(removalSettings(c.spec)).toEqual({ maxRemovals: 0, window: 6 });
    const d = parseCampaign(yaml("significance: {}\n"), "/tmp/sig.yaml");
    expect(removalSettings(d.spec)).toEqual({ maxRemovals: 0, window: 6 });
  });

  it("hierarchical_removal and removal_window as given", () => {
    const c = parseCampaign(yaml("significance: { hierarchical_removal: 2, removal_window: 8.5 }\n"), "/tmp/sig.yaml");
    expect(removalSettings(c.spec)).toEqual({ maxRemovals: 2, window: 8.5 });
  });

  it.each([
    ["significance: { hierarchical_removal: -1 }\n", /significance\.hierarchical_removal: expected an integer number of removals ≥ 0, got -1/],
    ["significance: { hierarchical_removal: 1.5 }\n", /significance\.hierarchical_removal: expected an integer number of removals ≥ 0, got 1\.5/],
    ["significance: { removal_window: 0 }\n", /significance\.removal_window: expected a window in s > 0, got 0/],
    ["significance: { hierarchical_remval: 1 }\n", /significance: unknown field "hierarchical_remval"/],
  ])("refuses %s", (extra, message) => {
    expect(() => parseCampaign(yaml(extra), "/tmp/sig.yaml")).toThrow(CampaignError);
    expect(() => parseCampaign(yaml(extra), "/tmp/sig.yaml")).toThrow(message);
  });
});
