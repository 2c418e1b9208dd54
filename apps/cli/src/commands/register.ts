import type { Command } from "commander";
import { pino, type Logger } from "pino";
import { z } from "zod";
import { connectRedis, LOG_REDACT, redactRedisUrl, redisPrefix, resolveRedisUrl } from "@timeslide/campaign";
import { grpcTlsFromEnv, InferenceClient, parseEndpoints, registerServer, registryKey, type Registration } from "@timeslide/kserve";
import { run } from "../errors.js";

type Redis = Awaited<ReturnType<typeof connectRedis>>;

// A sidecar for inference servers that cannot register themselves in the
// Redis registry (Triton): it watches the server's health over gRPC and keeps
// the registry entry alive only while the server is ready.

const endpoint = (flag: string) =>
  z
    .string({ error: `${flag}: required (host:port)` })
    .trim()
    .min(1, `${flag}: required (host:port)`)
    .transform((s, ctx) => {
      try {
        const list = parseEndpoints(s, flag);
        if (list.length !== 1) throw new Error(`${flag}: expected one host:port, got ${list.length}`);
        return list[0];
      } catch (e) {
        ctx.addIssue({ code: "custom", message: (e as Error).message });
        return z.NEVER;
      }
    });
const seconds = (flag: string) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, `${flag}: expected seconds (a non-negative number)`)
    .transform(Number);

const Flags = z.object({
  endpoint: endpoint("--endpoint"),
  advertise: endpoint("--advertise").optional(),
  ttl: seconds("--ttl").pipe(z.number().min(1, "--ttl: expected at least 1 s")),
  redis: z.string().trim().min(1, "--redis: expected a redis:// or rediss:// URL").optional(),
  model: z.string().trim().min(1, "--model: expected a model name").optional(),
  readyTimeout: seconds("--ready-timeout"),
});

export type RegisterFlags = z.infer<typeof Flags>;

export const REGISTER_DEFAULTS = { ttl: "15", readyTimeout: "0" };

/** Checks flags (missing ones take the command's defaults). */
export function parseRegisterFlags(raw: Record<string, unknown>): RegisterFlags {
  const given = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== undefined));
  const parsed = Flags.safeParse({ ...REGISTER_DEFAULTS, ...given });
  if (!parsed.success) throw new Error(`register: ${parsed.error.issues.map((i) => i.message).join("; ")}`);
  const o = parsed.data;
  if (o.redis && !/^rediss?:\/\//.test(o.redis)) throw new Error(`register: --redis: expected a redis:// or rediss:// URL, got "${redactRedisUrl(o.redis)}"`);
  return o;
}

export interface Sidecar {
  /** Resolves when the sidecar has stopped (deregistered). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * Waits until `endpoint` is ready (and `model`, if given), registers
 * `advertise` under `<prefix>:servers`, and probes every ttl/3 s. While a
 * probe fails the entry is not refreshed and its lease lapses after at most
 * `ttl` (a short blip does not drop it); a ready probe renews it.
 */
export function startSidecar(o: RegisterFlags & { redisClient: Redis; prefix: string; log: Logger }): Sidecar {
  const advertise = o.advertise ?? o.endpoint;
  const key = registryKey(o.prefix);
  const intervalMs = Math.max(250, (o.ttl * 1000) / 3);
  const probeDeadlineMs = Math.max(500, Math.min(5000, intervalMs));
  const client = new InferenceClient({ endpoint: o.endpoint, tls: grpcTlsFromEnv() }); // health probes as the workers dial
  const abort = new AbortController();
  const log = o.log.child({ endpoint: o.endpoint, advertise, prefix: o.prefix, model: o.model });
  let registration: Registration | undefined;
  let everRegistered = false;
  let timer: NodeJS.Timeout | undefined;
  let wake: (() => void) | undefined;

  const ready = async (): Promise<boolean> => {
    const probe = { deadlineMs: probeDeadlineMs, signal: abort.signal };
    try {
      return (await client.serverReady(probe)) && (!o.model || (await client.modelReady(o.model, "", probe)));
    } catch {
      return false;
    }
  };

  // registerServer refreshes on its own timer; pausing it means stop() (which
  // removes the entry) and putting the entry back with the lease it had, so
  // it lapses by itself unless the server recovers first.
  const pause = async () => {
    const reg = registration;
    registration = undefined;
    if (!reg) return;
    const score = await o.redisClient.zscore(key, advertise).catch(() => null);
    await reg.stop().catch(() => undefined);
    if (score !== null) await o.redisClient.zadd(key, Number(score), advertise).catch(() => undefined);
  };

  const loop = async () => {
    log.info({ timeout_s: o.readyTimeout || "none" }, "waiting for the inference server to be ready");
    await client.waitForReady({ model: o.model, timeoutMs: o.readyTimeout > 0 ? o.readyTimeout * 1000 : Number.POSITIVE_INFINITY, maxDelayMs: 5000, signal: abort.signal });
    while (!abort.signal.aborted) {
      const ok = await ready();
      if (abort.signal.aborted) break;
      if (ok && !registration) {
        try {
          registration = await registerServer(o.redisClient, o.prefix, advertise, o.ttl);
          everRegistered = true;
          log.info({ ttl: o.ttl }, "inference server ready: registered");
        } catch (err) {
          // Redis away for a moment: the next round tries again.
          log.warn({ err: (err as Error).message }, "cannot register in Redis; retrying");
        }
      } else if (!ok && registration) {
        await pause();
        log.warn({ lapses_within_s: o.ttl }, "inference server not ready: registration no longer refreshed");
      }
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, intervalMs);
      });
    }
  };

  let stopping: Promise<void> | undefined;
  const finish = async () => {
    clearTimeout(timer);
    wake?.();
    await registration?.stop().catch(() => undefined);
    // Again after stop(): a refresh already in flight when stop() ran lands
    // after its ZREM (same connection, so this one lands last); and a paused
    // entry goes now rather than at the end of its lease.
    await o.redisClient.zrem(key, advertise).catch(() => undefined);
    registration = undefined;
    client.close();
    log.info(everRegistered ? "deregistered" : "stopped (never registered)");
  };
  const stop = () => {
    stopping ??= (async () => {
      abort.abort();
      clearTimeout(timer); // end the wait between probes now
      wake?.();
      await done.catch(() => undefined);
    })();
    return stopping;
  };
  const done = loop()
    .catch((err: Error) => {
      if (!abort.signal.aborted) throw err;
    })
    .finally(finish);
  return { done, stop };
}

export function registerRegister(program: Command): void {
  program
    .command("register")
    .description("sidecar for inference servers that cannot register themselves (Triton): register an endpoint in Redis while it is ready")
    .option("--endpoint <host:port>", "gRPC endpoint to watch (required), e.g. localhost:8001")
    .option("--advertise <host:port>", "endpoint workers should dial (default: --endpoint)")
    .option("--ttl <s>", "registry lease, refreshed every ttl/3 while the server is ready", REGISTER_DEFAULTS.ttl)
    .option("--redis <url>", "Redis URL (default: REDIS_URL, else redis://localhost:6379)")
    .option("--model <name>", "also require this model to be ready, e.g. detector-stream")
    .option("--ready-timeout <s>", "give up if the server is not ready within this (0: wait for ever)", REGISTER_DEFAULTS.readyTimeout)
    .addHelpText(
      "after",
      [
        "",
        "Entries go to the sorted set <TIMESLIDE_PREFIX>:servers (prefix default",
        "timeslide), where workers started with --servers registry find them.",
        "SIGTERM / SIGINT removes the entry and exits.",
        "",
        "Examples:",
        "  timeslide register --endpoint localhost:8001 --advertise $(hostname -f):8001 --model detector-stream",
        "  REDIS_URL=rediss://:secret@queue:6380 timeslide register --endpoint gpu7:8001 --ttl 30",
      ].join("\n"),
    )
    .action((raw: Record<string, unknown>) =>
      run(async () => {
        const o = parseRegisterFlags(raw);
        const log = pino({ base: { process: "register" }, redact: LOG_REDACT });
        const url = o.redis ?? resolveRedisUrl();
        const redis = await connectRedis(url);
        const prefix = redisPrefix();
        log.info({ redis: redactRedisUrl(url), prefix }, "sidecar started");
        const sidecar = startSidecar({ ...o, redisClient: redis, prefix, log });
        // Repeated signals (Slurm signals every process of a job, and
        // start-triton.sh passes one on) must not kill the sidecar before it
        // has removed its entry; a second Ctrl-C still stops at once.
        let stopping = false;
        const onSignal = (signal: string) => {
          if (stopping) {
            if (signal === "SIGINT") process.exit(130);
            return;
          }
          stopping = true;
          log.info({ signal }, "shutting down");
          void sidecar.stop();
        };
        process.on("SIGTERM", () => onSignal("SIGTERM"));
        process.on("SIGINT", () => onSignal("SIGINT"));
        try {
          await sidecar.done;
        } finally {
          await redis.quit().catch(() => redis.disconnect());
        }
      }),
    );
}
