import type { Command } from "commander";
import { pino } from "pino";
import { z } from "zod";
import { connectRedis, LOG_REDACT, redactRedisUrl, redisPrefix, resolveRedisUrl } from "@timeslide/campaign";
import { DEFAULT_HOST, DEFAULT_PORT, DEFAULT_REFRESH_MS } from "@timeslide/dashboard/defaults"; // light: the server loads on use
import { run } from "../errors.js";

const Flags = z.object({
  port: z.coerce.number({ error: "--port: expected a port number" }).int("--port: expected a port number").min(0, "--port: 0-65535").max(65535, "--port: 0-65535"),
  host: z.string().trim().min(1, "--host: expected an address to bind"),
  redis: z.string().trim().regex(/^rediss?:\/\//, "--redis: expected a redis:// or rediss:// URL").optional(),
  refresh: z.coerce.number({ error: "--refresh: expected seconds" }).min(0.2, "--refresh: at least 0.2 s"),
});

export function registerDashboard(program: Command): void {
  program
    .command("dashboard")
    .description("a live, read-only web page: campaigns (jobs, livetime, rate, ETA, failures, FAR reach), inference servers, workers")
    .option("--port <n>", "HTTP port", String(DEFAULT_PORT))
    .option("--host <addr>", "address to bind (loopback by default: the page has no login)", DEFAULT_HOST)
    .option("--redis <url>", "Redis URL (default: REDIS_URL, else redis://localhost:6379)")
    .option("--refresh <s>", "seconds between refreshes", String(DEFAULT_REFRESH_MS / 1000))
    .addHelpText(
      "after",
      "\nExamples:\n  timeslide dashboard                      # http://127.0.0.1:8080/\n  ssh -L 8080:127.0.0.1:8080 login-node    # then run it there and open the page here",
    )
    .action((raw: Record<string, unknown>) =>
      run(async () => {
        const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
        const parsed = Flags.safeParse(given);
        if (!parsed.success) throw new Error(`dashboard: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
        const o = parsed.data;
        const { startDashboard } = await import("@timeslide/dashboard");
        const log = pino({ name: "timeslide-dashboard", redact: LOG_REDACT });
        const url = o.redis ?? resolveRedisUrl();
        const redis = await connectRedis(url);
        log.info({ redis: redactRedisUrl(url), prefix: redisPrefix() }, "reading campaigns");
        const dash = await startDashboard({ redis, prefix: redisPrefix(), port: o.port, host: o.host, refreshMs: Math.round(o.refresh * 1000), logger: log });
        process.stdout.write(`timeslide dashboard: ${dash.url}\n`);
        await new Promise<void>((resolve) => {
          const stop = () => void dash.close().then(resolve);
          process.once("SIGINT", stop);
          process.once("SIGTERM", stop);
        });
        redis.disconnect();
      }),
    );
}
