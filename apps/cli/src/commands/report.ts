import type { Command } from "commander";
import { connectRedis, redisPrefix, resolveRedisUrl } from "@timeslide/campaign";
import { run } from "../errors.js";

export function registerReport(program: Command): void {
  program
    .command("report")
    .description("aggregate a campaign now: background/foreground/injections.h5, report.json, report.html (partial while it runs)")
    .argument("<campaign>", "campaign name")
    .option("--out <dir>", "output directory (default: the campaign's output)")
    .option("--redis <url>", "Redis URL (default: REDIS_URL, else redis://localhost:6379)")
    .option("--json", "print report.json to stdout")
    .addHelpText("after", "\nExamples:\n  timeslide report o3a-chunk1\n  timeslide report o3a-chunk1 --out /tmp/o3a-partial")
    .action((campaign: string, opts: { out?: string; redis?: string; json?: boolean }) =>
      run(async () => {
        const { aggregateCampaign } = await import("@timeslide/aggregator"); // loaded on use (plotting stack)
        const redis = await connectRedis(opts.redis ?? resolveRedisUrl());
        try {
          const res = await aggregateCampaign({ redis, prefix: redisPrefix(), campaign, out: opts.out });
          if (opts.json) process.stdout.write(JSON.stringify(res.report) + "\n");
          else {
            const l = res.report.livetime;
            process.stdout.write(
              `${res.partial ? "partial report (campaign still running)" : "report"} for ${campaign}: ` +
                `${res.report.jobs.completed}/${res.report.jobs.total} jobs, ${res.report.jobs.failed} failed, ` +
                `background ${l.background_s} s (${l.background_years.toPrecision(4)} yr), foreground ${l.foreground_s} s\n` +
                `  ${res.files.report_html}\n  ${res.files.report_json}\n`,
            );
          }
        } finally {
          redis.disconnect();
        }
      }),
    );
}
