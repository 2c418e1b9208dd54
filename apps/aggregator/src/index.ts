export { aggregateCampaign, type AggregateOptions, type AggregateResult } from "./aggregate.js";
export { aggregateIfComplete, claimAggregation, releaseAggregation, type ClaimOutcome } from "./trigger.js";
export { farFromFiles, type FarResult } from "./far.js";
export { foregroundRows, farCurveBlock, livetimeBlock, injectionBlock, type InjectionSet, type ForegroundRow } from "./build.js";
