import type { Command } from "commander";
import { connectRedis, prepareCampaign, redactRedisUrl, redisPrefix, resolveRedisUrl, submitCampaign } from "@timeslide/campaign";
import { run } from "../errors.js";
import { createProgress } from "../progress.js";
import { describePlan } from "./plan.js";

export function registerSubmit(program: Command): void {
  program
    .command("submit")
    .description("plan a campaign and put its jobs on the Redis queue (idempotent: submitting again adds nothing)")
    .argument("<campaign>", "campaign file (YAML)")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExample:\n  REDIS_URL=redis://queue-host:6379 timeslide submit campaign.yaml")
    .action((file: string, opts: { json?: boolean }) =>
      run(async () => {
        const { campaign, plan } = await prepareCampaign(file);
        const url = resolveRedisUrl(campaign.spec.queue.redis);
        const redis = await connectRedis(url);
        try {
          if (!opts.json) process.stdout.write(describePlan(plan) + "\n");
          const progress = createProgress("submit", plan.jobs.length);
          const r = await submitCampaign({ redis, prefix: redisPrefix(), campaign, plan, onProgress: (d) => progress.update(d) });
          progress.stop();
          for (const w of [...plan.warnings, ...r.warnings]) process.stderr.write(`warning: ${w}\n`);
          if (opts.json) {
            process.stdout.write(JSON.stringify({ ...r, redis: redactRedisUrl(url) }) + "\n");
          } else if (r.alreadySubmitted) {
            process.stdout.write(`campaign ${r.campaign} was already submitted (${r.total} jobs): nothing added\n`);
          } else {
            process.stdout.write(
              `submitted ${r.campaign} to ${redactRedisUrl(url)}: ${r.added} job(s) added` +
                (r.existing ? `, ${r.existing} already queued or done` : "") +
                `\nworkers: timeslide worker ${r.campaign}; progress: timeslide status ${r.campaign} --watch\n`,
            );
          }
        } finally {
          redis.disconnect();
        }
      }),
    );
}
