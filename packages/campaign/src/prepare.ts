import { resolve } from "node:path";
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
      injectionTimes = await readInjectionTimes(path);
    } catch (e) {
      throw new CampaignError(campaign.file, [`${campaign.file}: injections.file: ${(e as Error).message}`]);
    }
  }
  return { campaign, plan: planCampaign(campaign, { inventory, injectionTimes }) };
}
