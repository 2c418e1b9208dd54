import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { pino } from "pino";
import { LOG_REDACT } from "@timeslide/campaign";
import { z } from "zod";
import { startServer } from "@timeslide/server";
import { run } from "../errors.js";

const optsSchema = z.object({
  repo: z.string({ error: "a model repository directory is required (--repo DIR)" }).min(1),
  port: z.coerce.number().int().min(0).max(65535),
  host: z.string().min(1),
  threads: z.coerce.number().int().min(1),
  register: z.string().optional(),
  advertise: z.string().optional(),
  ttl: z.coerce.number().positive(),
  metricsPort: z.coerce.number().int().min(0).max(65535).optional(),
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
});

/** PEM file contents, or a message naming the flag. */
function readPem(flag: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new Error(`serve: --${flag} ${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve a Triton model repository (ONNX models, ensembles) over the KServe-v2 gRPC API with ONNX Runtime")
    .option("--repo <dir>", "model repository in the Triton layout (required; alias --model-repo)")
    .option("--model-repo <dir>", "same as --repo")
    .option("--port <n>", "gRPC port", "8001")
    .option("--host <host>", "address to bind", "0.0.0.0")
    .option("--threads <n>", "ONNX Runtime intra-op threads per model instance", "1")
    .option("--register <redis>", "register in Redis for discovery: a redis:// URL, or 'redis' for REDIS_URL / redis://localhost:6379")
    .option("--advertise <host:port>", "endpoint clients should dial (default: host name and port)")
    .option("--ttl <s>", "registry entry lifetime, refreshed every ttl/3", "15")
    .option("--metrics-port <port>", "serve Prometheus metrics (requests, batch sizes, queue and compute time) on this HTTP port")
    .option("--tls-cert <pem>", "serve gRPC over TLS with this certificate (chain) file; needs --tls-key (clients: TIMESLIDE_GRPC_CA)")
    .option("--tls-key <pem>", "the private key of --tls-cert")
    .addHelpText(
      "after",
      "\nExamples:\n  timeslide serve --repo models --port 8001 --threads 2\n  timeslide serve --repo models --register redis\n  timeslide serve --repo models --tls-cert server.pem --tls-key server.key",
    )
    .action((raw: Record<string, string | undefined>) =>
      run(async () => {
        const parsed = optsSchema.safeParse({ ...raw, repo: raw.modelRepo ?? raw.repo });
        if (!parsed.success) {
          const i = parsed.error.issues[0];
          throw new Error(`serve: --${String(i.path[0])}: ${i.message}`);
        }
        const o = parsed.data;
        if (Boolean(o.tlsCert) !== Boolean(o.tlsKey)) throw new Error("serve: --tls-cert and --tls-key go together");
        const tls = o.tlsCert && o.tlsKey ? { certChain: readPem("tls-cert", o.tlsCert), privateKey: readPem("tls-key", o.tlsKey) } : undefined;
        const redis = o.register === "redis" ? process.env.REDIS_URL || "redis://localhost:6379" : o.register;
        const log = pino({ name: "timeslide-server", redact: LOG_REDACT });
        const server = await startServer({
          repository: o.repo,
          host: o.host,
          port: o.port,
          threads: o.threads,
          metricsPort: o.metricsPort,
          logger: log,
          tls,
          register: redis ? { redis, advertise: o.advertise, ttlSeconds: o.ttl } : undefined,
        });
        // Serve until interrupted; close() leaves the registry and lets in-flight requests finish.
        await new Promise<void>((resolve) => {
          // A repeated SIGTERM (Slurm signals every process of a job, and its
          // wrapper passes one on) must not kill the server before it has left
          // the registry; a second Ctrl-C still stops at once.
          let stopping = false;
          const stop = (signal: NodeJS.Signals) => {
            if (stopping) {
              if (signal === "SIGINT") process.exit(130);
              return;
            }
            stopping = true;
            log.info("shutting down");
            void server.close().then(resolve);
          };
          process.on("SIGINT", stop);
          process.on("SIGTERM", stop);
        });
      }),
    );
}
