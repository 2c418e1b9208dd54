import type { Command } from "commander";
import { cancelCampaign, connectRedis, redisPrefix, resolveRedisUrl } from "@timeslide/campaign";
import { run } from "../errors.js";

export function registerCancel(program: Command): void {
  program
    .command("cancel")
    .description("cancel a campaign: remove its waiting jobs (running jobs finish); --purge removes everything it has in Redis")
    .argument("<campaign>", "campaign name")
    .option("--purge", "also remove the queue, metadata and recorded results from Redis (result files stay)")
    .option("--redis <url>", "Redis URL (default: REDIS_URL, else redis://localhost:6379)")
    .option("--json", "print JSON")
    .addHelpText("after", "\nExamples:\n  timeslide cancel o3a-chunk1\n  timeslide cancel o3a-chunk1 --purge")
    .action((name: string, opts: { purge?: boolean; redis?: string; json?: boolean }) =>
      run(async () => {
        const redis = await connectRedis(opts.redis ?? resolveRedisUrl());
        try {
          const r = await cancelCampaign(redis, redisPrefix(), name, opts.purge);
          process.stdout.write(
            opts.json ? JSON.stringify(r) + "\n" : `${r.purged ? "purged" : "cancelled"} ${r.campaign}: ${r.removed} waiting job(s) removed\n`,
          );
        } finally {
          redis.disconnect();
        }
      }),
    );
}
