export { CampaignSpec, removalSettings, psdFftLength, type CampaignSpecInput } from "./schema.js";
export { CampaignError, loadCampaign, parseCampaign, checkConsistency, type LoadedCampaign } from "./load.js";
export { takeInventory, type DataInventory } from "./inventory.js";
export {
  planCampaign,
  planSummary,
  analysableSegments,
  shiftOutputSpan,
  livetimeOptions,
  livetimeOptionsOf,
  campaignEdge,
  planJobs,
  DEFAULT_JOB_LIVETIME,
  DEFAULT_FACTORIZED_JOB_LIVETIME,
  factorizedShiftProblems,
  MAX_BACKGROUND_JOBS,
  type Plan,
  type Exclusions,
  type PlanSummary,
  type PlannedJob,
} from "./plan.js";
export { prepareCampaign } from "./prepare.js";
export { connectRedis, createRedis, redisOptions, REDIS_CA_ENV, LOG_REDACT, deleteKeys, ensureRedis, freePort, resolveRedisUrl, redactRedisUrl, redactUrls, checkEvictionPolicy, type EnsuredRedis } from "./redis.js";
export { readMeta, listCampaigns, recordJobResult, recordJobFailure, specHash, type CampaignMeta } from "./store.js";
export {
  submitCampaign,
  campaignStatus,
  cancelCampaign,
  openQueue,
  jobOptions,
  RETENTION,
  type SubmitResult,
  type CampaignStatus,
  type CancelResult,
} from "./queue.js";
export * from "./keys.js";
export * from "./jobs.js";
export { JOB_ID_PATTERN, readStoredCampaign, plannedJobs, PlannedJobs, storedExclusions, payloadMismatch, campaignPathProblems, dataRoots, globRoot, isInside, specOutput } from "./verify.js";
