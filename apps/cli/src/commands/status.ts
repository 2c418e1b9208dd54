import type { Command } from "commander";
import { formatDuration } from "@timeslide/segments";
import { campaignStatus, connectRedis, listCampaigns, redisPrefix, resolveRedisUrl, type CampaignStatus } from "@timeslide/campaign";
import { run } from "../errors.js";
import { createProgress } from "../progress.js";

function describe(s: CampaignStatus): string {
  const l = s.livetime;
  const pct = l.background_planned_s > 0 ? ((100 * l.background_s) / l.background_planned_s).toFixed(1) : "100.0";
  const j = s.jobs;
  return [
    `campaign ${s.campaign}: ${s.done ? "done" : s.state}`,
    `  jobs:     ${j.completed}/${j.total} completed, ${j.active} active, ${j.waiting} waiting, ${j.delayed} delayed, ${j.failed} failed` +
      (j.retrying ? `, ${j.retrying} awaiting retry` : ""),
    `  livetime: background ${formatDuration(l.background_s)} of ${formatDuration(l.background_planned_s)} (${pct}%), ` +
      `foreground ${formatDuration(l.foreground_s)} of ${formatDuration(l.foreground_planned_s)}` +
      (l.lost_s ? `, lost to failures ${formatDuration(l.lost_s)}` : ""),
    `  rate:     ${s.rate ? `${formatDuration(s.rate)} of background per second` : "-"}` +
      (s.eta_s !== null && !s.done ? `, ETA ${formatDuration(s.eta_s)}` : ""),
  ].join("\n");
}

export function registerStatus(program: Command): void {
  program
    .command("status")
    .description("progress of a campaign: jobs by state, livetime done against planned, rate and ETA")
    .argument("[campaign]", "campaign name (omit with --list)")
    .option("--watch", "keep watching until the campaign is done (a bar on a terminal, JSON lines otherwise)")
    .option("--interval <s>", "seconds between updates with --watch", "2")
    .option("--json", "print JSON")
    .option("--list", "list submitted campaigns")
    .option("--redis <url>", "Redis URL (default: REDIS_URL, else redis://localhost:6379)")
    .addHelpText("after", "\nExamples:\n  timeslide status o3a-chunk1 --watch\n  timeslide status --list")
    .action((name: string | undefined, opts: { watch?: boolean; interval: string; json?: boolean; list?: boolean; redis?: string }) =>
      run(async () => {
        const redis = await connectRedis(opts.redis ?? resolveRedisUrl());
        const prefix = redisPrefix();
        try {
          if (opts.list || !name) {
            const names = await listCampaigns(redis, prefix);
            process.stdout.write(opts.json ? JSON.stringify(names) + "\n" : names.length ? names.join("\n") + "\n" : "no campaigns submitted\n");
            return;
          }
          let s = await campaignStatus(redis, prefix, name);
          if (!opts.watch) {
            process.stdout.write(opts.json ? JSON.stringify(s) + "\n" : describe(s) + "\n");
            return;
          }
          const interval = Number(opts.interval);
          if (!(interval > 0)) throw new Error(`status: --interval: expected a number of seconds > 0, got "${opts.interval}"`);
          const every = Math.max(0.2, interval) * 1000;
          const tty = process.stderr.isTTY && !opts.json && !process.env.CI;
          const bar = tty ? createProgress(`${name} background`, Math.max(1, Math.round(s.livetime.background_planned_s))) : undefined;
          let stop = false;
          process.once("SIGINT", () => (stop = true));
          for (;;) {
            if (bar) bar.update(Math.round(s.livetime.background_s));
            else process.stdout.write(JSON.stringify({ ...s, time: new Date().toISOString() }) + "\n");
            if (s.done || stop || s.state === "cancelled") break;
            await new Promise((r) => setTimeout(r, every));
            s = await campaignStatus(redis, prefix, name);
          }
          bar?.stop();
          if (tty) process.stdout.write(describe(s) + "\n");
        } finally {
          redis.disconnect();
        }
      }),
    );
}
