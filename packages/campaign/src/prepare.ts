import { resolve } from "node:path";
import h5wasm from "h5wasm/node";
import { CampaignError, loadCampaign, type LoadedCampaign } from "./load.js";
import { takeInventory } from "./inventory.js";
import { planCampaign, type Plan } from "./plan.js";

/** Reads `injections/time` (GPS of each injection) from an injection file. */
export async function readInjectionTimes(path: string): Promise<Float64Array> {
  await h5wasm.ready;
  let f: InstanceType<typeof h5wasm.File>;
  try {
    f = new h5wasm.File(path, "r");
  } catch (e) {
    throw new Error(`${path}: cannot open as HDF5 (${(e as Error).message})`);
  }
  try {
    const ds = f.get("injections/time");
    if (!ds || !(ds instanceof h5wasm.Dataset)) throw new Error(`${path}: injections/time: dataset missing (expected float64 [M] GPS times)`);
    if (ds.shape?.length !== 1) throw new Error(`${path}: injections/time: expected a 1-D dataset, got shape [${ds.shape}]`);
    const v = ds.value;
    if (!(v instanceof Float64Array || v instanceof Float32Array)) throw new Error(`${path}: injections/time: expected float64 GPS times, got ${ds.dtype}`);
    return Float64Array.from(v);
  } finally {
    f.close();
  }
}

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
