export { CampaignSpec, type CampaignSpecInput } from "./schema.js";
export { CampaignError, loadCampaign, parseCampaign, checkConsistency, type LoadedCampaign } from "./load.js";
export * from "./keys.js";
export * from "./jobs.js";
