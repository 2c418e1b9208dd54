import type { Command } from "commander";
import pino from "pino";
import { connectRedis, LOG_REDACT, redactRedisUrl, redisPrefix, resolveRedisUrl } from "@timeslide/campaign";
import { grpcTlsFromEnv } from "@timeslide/kserve";
import { startWorker } from "@timeslide/worker";
import { run } from "../errors.js";

export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("take jobs from the queue and run them through the inference servers (until SIGTERM / SIGINT)")
    .argument("[campaigns...]", "campaigns to work on (default: every submitted campaign)")
    .option("-c, --concurrency <n>", "jobs at once, each in its own thread", "1")
    .option("--sequences <n>", "shifts streamed at once per job (default: the servers' sequence slots for the model ÷ --concurrency, at most 16; 4 when the servers do not limit sequences)")
    .option("--servers <list>", 'inference servers "host:port,..." or "registry" (default: the campaign\'s model.servers)')
    .option("--metrics-port <port>", "serve Prometheus metrics on this port")
    .option("--grace <s>", "seconds a shutdown waits for running jobs before handing them back", "30")
    .option("--deadline <s>", "seconds one inference request may take before it is failed over to another server (or retried)", "60")
    .option("--lock <s>", "job lock duration (s): a job whose worker died is handed to another after about this long", "60")
    .option("--whole-model", "factorized campaigns: run the pair's declared whole model (factorized_whole_model) instead of encoder + head (comparisons; also TIMESLIDE_WHOLE_MODEL=1)")
    .option("--embedding-memory <MiB>", "factorized campaigns: MiB of a job's embeddings kept in memory; past it they spill to <output>/scratch (default 256)")
    .option("--redis <url>", "Redis URL (default: REDIS_URL, else redis://localhost:6379)")
    .addHelpText("after", "\nExamples:\n  timeslide worker o3a-chunk1 --concurrency 2 --servers gpu1:8001,gpu2:8001\n  REDIS_URL=redis://queue:6379 timeslide worker --servers registry --metrics-port 9100")
    .action((campaigns: string[], opts: { concurrency: string; sequences?: string; servers?: string; metricsPort?: string; grace: string; deadline: string; lock: string; redis?: string; wholeModel?: boolean; embeddingMemory?: string }) =>
      run(async () => {
        const lock = Number(opts.lock);
        if (!(lock >= 1)) throw new Error(`worker: --lock: expected a number of seconds >= 1, got "${opts.lock}"`);
        const count = (flag: string, v: string) => {
          const n = Number(v);
          if (!Number.isInteger(n) || n < 1) throw new Error(`worker: --${flag}: expected a whole number >= 1, got "${v}"`);
          return n;
        };
        const concurrency = count("concurrency", opts.concurrency);
        const sequences = opts.sequences !== undefined ? count("sequences", opts.sequences) : undefined;
        const deadline = Number(opts.deadline);
        if (!(deadline > 0)) throw new Error(`worker: --deadline: expected a number of seconds > 0, got "${opts.deadline}"`);
        const grace = Number(opts.grace);
        if (!(grace >= 0)) throw new Error(`worker: --grace: expected a number of seconds >= 0, got "${opts.grace}"`);
        if (opts.metricsPort !== undefined && !(Number.isInteger(Number(opts.metricsPort)) && Number(opts.metricsPort) >= 0))
          throw new Error(`worker: --metrics-port: expected a port number, got "${opts.metricsPort}"`);
        const embeddingMemory = opts.embeddingMemory !== undefined ? Number(opts.embeddingMemory) : undefined;
        if (embeddingMemory !== undefined && !(embeddingMemory > 0)) throw new Error(`worker: --embedding-memory: expected a number of MiB > 0, got "${opts.embeddingMemory}"`);
        const log = pino({ base: { process: "worker" }, redact: LOG_REDACT });
        const grpcTls = grpcTlsFromEnv(); // an unreadable TIMESLIDE_GRPC_CA stops the worker here, not every job
        const url = opts.redis ?? resolveRedisUrl();
        const redis = await connectRedis(url);
        const w = await startWorker({
          redis,
          redisUrl: url,
          prefix: redisPrefix(),
          campaigns,
          concurrency,
          sequences,
          servers: opts.servers,
          metricsPort: opts.metricsPort !== undefined ? Number(opts.metricsPort) : undefined,
          shutdownGraceMs: grace * 1000,
          lockDuration: lock * 1000,
          requestDeadlineMs: deadline * 1000,
          wholeModel: opts.wholeModel || process.env.TIMESLIDE_WHOLE_MODEL === "1",
          embeddingMemoryBytes: embeddingMemory !== undefined ? Math.round(embeddingMemory * 1024 * 1024) : undefined,
          log,
        });
        log.info({ redis: redactRedisUrl(url), grpcTls: Boolean(grpcTls), metricsPort: w.metricsPort }, "worker started");
        await new Promise<void>((resolve) => {
          // A batch system may signal twice: Slurm's scancel / requeue sends
          // SIGTERM to every process of the job, and the job's wrapper passes
          // its own on. A repeated SIGTERM must not cut the grace period short
          // (Node's default action would kill the worker mid-hand-back); a
          // second Ctrl-C (SIGINT) still stops at once.
          let stopping = false;
          const stop = (signal: string) => {
            if (stopping) {
              if (signal === "SIGINT") process.exit(130);
              log.info({ signal }, "already shutting down");
              return;
            }
            stopping = true;
            log.info({ signal }, "shutting down");
            void w.close().then(resolve);
          };
          process.on("SIGTERM", () => stop("SIGTERM"));
          process.on("SIGINT", () => stop("SIGINT"));
        });
        redis.disconnect();
      }),
    );
}
