import type { Command } from "commander";
import { CampaignError, connectRedis, prepareCampaign, redactRedisUrl, redisPrefix, resolveRedisUrl, submitCampaign } from "@timeslide/campaign";
import { discoverServers, parseEndpoints } from "@timeslide/kserve";
import { checkModelOnServers } from "@timeslide/worker";
import { run } from "../errors.js";
import { createProgress } from "../progress.js";
import { describePlan } from "./plan.js";

export function registerSubmit(program: Command): void {
  program
    .command("submit")
    .description("plan a campaign and put its jobs on the Redis queue (idempotent: submitting again adds nothing)")
    .argument("<campaign>", "campaign file (YAML)")
    .option("--json", "print the result as JSON")
    .option("--servers <list>", 'servers to check the model on, "host:port,..." or "registry" (default: the campaign\'s model.servers)')
    .option("--no-model-check", "do not ask the servers for the model's shapes before queueing")
    .addHelpText("after", "\nExample:\n  REDIS_URL=redis://queue-host:6379 timeslide submit campaign.yaml")
    .action((file: string, opts: { json?: boolean; servers?: string; modelCheck: boolean }) =>
      run(async () => {
        const { campaign, plan } = await prepareCampaign(file);
        const url = resolveRedisUrl(campaign.spec.queue.redis);
        const redis = await connectRedis(url);
        try {
          const warnings: string[] = [];
          let modelChecked: string[] = [];
          if (opts.modelCheck) {
            // Refuse a model whose shapes can't take the campaign's data now,
            // rather than have every job fail on the workers. The same check
            // as the worker's (resolveModel); servers that can't be reached
            // only warn: they may start after the campaign is queued.
            const servers = opts.servers ?? campaign.spec.model.servers;
            const endpoints =
              servers === "registry" ? await discoverServers(redis, redisPrefix()) : parseEndpoints(servers, opts.servers ? "--servers" : "model.servers");
            if (endpoints.length === 0) warnings.push(`model.servers: no server is registered under ${redisPrefix()} yet, so the model's shapes were not checked`);
            const check = await checkModelOnServers(campaign.spec, endpoints);
            if (check.problems.length) throw new CampaignError(campaign.file, check.problems.map((p) => `${campaign.file}: ${p}`));
            warnings.push(...check.warnings);
            modelChecked = check.checked;
          }
          if (!opts.json) process.stdout.write(describePlan(plan) + "\n");
          const progress = createProgress("submit", plan.jobs.length);
          const r = await submitCampaign({ redis, prefix: redisPrefix(), campaign, plan, onProgress: (d) => progress.update(d) });
          progress.stop();
          for (const w of [...plan.warnings, ...warnings, ...r.warnings]) process.stderr.write(`warning: ${w}\n`);
          if (opts.json) {
            process.stdout.write(JSON.stringify({ ...r, warnings: [...warnings, ...r.warnings], model_checked: modelChecked, redis: redactRedisUrl(url) }) + "\n");
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
