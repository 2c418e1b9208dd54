import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { SegmentList } from "@timeslide/segments";
import { readInjectionTimes } from "@timeslide/strain";
import { CampaignError, loadCampaign, type LoadedCampaign } from "./load.js";
import { takeInventory } from "./inventory.js";
import { planCampaign, type Plan } from "./plan.js";

/** Loads a campaign file, reads its data's metadata and plans it: what `plan` and `submit` share. */
export async function prepareCampaign(file: string): Promise<{ campaign: LoadedCampaign; plan: Plan }> {
  const campaign = await loadCampaign(file);
  const inventory = await takeInventory(campaign);
  let injectionTimes: Float64Array | undefined;
  if (campaign.spec.injections) {
    const path = resolve(campaign.baseDir, campaign.spec.injections.file);
    try {
      // The whole layout is checked here (waveform shapes, rate, one per
      // detector), not only the times: a bad file found by the workers would
      // fail every injection job after the campaign was queued.
      injectionTimes = await readInjectionTimes(path, campaign.spec.ifos);
    } catch (e) {
      throw new CampaignError(campaign.file, [`${campaign.file}: injections.file: ${(e as Error).message}`]);
    }
  }
  let vetoes: SegmentList | undefined;
  if (campaign.spec.background.vetoes) {
    const path = resolve(campaign.baseDir, campaign.spec.background.vetoes);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (e) {
      throw new CampaignError(campaign.file, [`${campaign.file}: background.vetoes: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`]);
    }
    try {
      vetoes = SegmentList.fromText(text, path).coalesce();
    } catch (e) {
      throw new CampaignError(campaign.file, [`${campaign.file}: background.vetoes: ${(e as Error).message}`]);
    }
  }
  return { campaign, plan: planCampaign(campaign, { inventory, injectionTimes, vetoes }) };
}
