// Runs the campaign's aggregation off the worker's event loop (it reads every
// job file): started when a campaign looks complete; aggregateIfComplete
// makes sure exactly one process, campaign-wide, does it.
import { workerData, parentPort } from "node:worker_threads";
import pino from "pino";
import { aggregateIfComplete } from "@timeslide/aggregator";
import { campaignPathProblems, createRedis, LOG_REDACT, readStoredCampaign, specOutput } from "@timeslide/campaign";

const { redisUrl, prefix, campaign } = workerData as { redisUrl: string; prefix: string; campaign: string };
const redis = createRedis(redisUrl, { maxRetriesPerRequest: 3 }); // rediss:// CA as the worker's
const logger = pino({ base: { process: "aggregator", campaign }, redact: LOG_REDACT }, pino.destination(2));
try {
  // The output in the campaign metadata can be edited in Redis: reports are
  // written only where the campaign's spec says (the workers' check).
  const { meta, spec } = await readStoredCampaign(redis, prefix, campaign);
  const problems = campaignPathProblems(meta, spec);
  if (problems.length) throw new Error(`${problems.join("; ")}: not aggregating`);
  const r = await aggregateIfComplete({ redis, prefix, campaign, logger, out: specOutput(spec, meta.base_dir) });
  parentPort?.postMessage(r ? { aggregated: true, out: r.out } : { aggregated: false });
} catch (e) {
  logger.error({ err: (e as Error).message }, "aggregation failed");
  parentPort?.postMessage({ aggregated: false, error: (e as Error).message });
} finally {
  redis.disconnect();
}
