import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { Redis, type RedisOptions } from "ioredis";

/** Environment variable naming a PEM file of CA certificates trusted for rediss:// (TLS) Redis URLs. */
export const REDIS_CA_ENV = "TIMESLIDE_REDIS_CA";

/**
 * The ioredis options every Redis connection of timeslide starts from (CLI,
 * coordinator, worker and its threads, BullMQ, the server's registration,
 * the aggregator), so TLS settings live in one place: for a rediss:// URL,
 * the CA in TIMESLIDE_REDIS_CA (else the system roots). ioredis itself turns
 * TLS on for rediss://; a plain redis:// URL ignores the CA.
 */
export function redisOptions(url: string, env: NodeJS.ProcessEnv = process.env): RedisOptions {
  if (!/^rediss:\/\//i.test(url)) return {};
  const caPath = env[REDIS_CA_ENV];
  if (!caPath) return {};
  let ca: Buffer;
  try {
    ca = readFileSync(caPath);
  } catch (e) {
    throw new Error(`${REDIS_CA_ENV}=${caPath}: cannot read the CA certificate file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return { tls: { ca } };
}

/** A Redis client for `url` with the shared options (see redisOptions) under `opts`. */
export function createRedis(url: string, opts: RedisOptions = {}, env: NodeJS.ProcessEnv = process.env): Redis {
  return new Redis(url, { ...redisOptions(url, env), ...opts });
}

/** The Redis URL to use: REDIS_URL overrides the campaign's queue.redis. */
export function resolveRedisUrl(fromCampaign?: string, env: NodeJS.ProcessEnv = process.env): string {
  return env.REDIS_URL || fromCampaign || "redis://localhost:6379";
}

/** A URL safe to print: the password is replaced. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return url.replace(/\/\/[^@/]*@/, "//***@");
  }
}

/** Any text with the credentials of every scheme://user:password@ URL in it replaced (error messages that may quote a URL). */
export function redactUrls(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, "$1***@");
}

/**
 * pino `redact` settings for loggers that may be handed a URL (a redis URL in
 * `redis`, `url` or `redisUrl`, at the top or one level down): the password is
 * replaced, the rest kept, so the logs still say which Redis was used.
 */
export const LOG_REDACT = {
  paths: ["redis", "url", "redisUrl", "*.redis", "*.url", "*.redisUrl"],
  censor: (v: unknown) => (typeof v === "string" ? redactUrls(v) : v),
};

/**
 * Connects and waits until Redis answers, failing fast with a message that
 * says what to do, instead of ioredis's endless silent reconnects.
 */
export async function connectRedis(url: string, opts: RedisOptions = {}, timeoutMs = 5000): Promise<Redis> {
  const redis = createRedis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null, // required by BullMQ workers; harmless elsewhere
    enableReadyCheck: true,
    connectTimeout: timeoutMs,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...opts,
  });
  let lastError: Error | undefined;
  redis.on("error", (e: Error) => (lastError = e)); // reported through connect() below and per command
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    // connect() only says "Connection is closed." after a TLS failure: the error event has the cause.
    const cause = lastError && lastError.message !== (e as Error).message ? `${lastError.message} (${(e as Error).message})` : (e as Error).message;
    const tlsHint =
      /^rediss:/i.test(url) && /certificate|self[- ]signed|CERT_|SSL|TLS/i.test(cause)
        ? ` For a Redis whose certificate a private CA signed, set ${REDIS_CA_ENV} to that CA's PEM file.`
        : "";
    throw new Error(
      `cannot reach Redis at ${redactRedisUrl(url)}: ${redactUrls(cause)}.${tlsHint} ` +
        `Start one (apt-get install redis-server; redis-server --port 6379) or point REDIS_URL at one.`,
    );
  }
  return redis;
}

/** A warning when Redis may evict keys (queue state would silently vanish). */
export async function checkEvictionPolicy(redis: Redis): Promise<string | undefined> {
  try {
    const r = (await redis.config("GET", "maxmemory-policy")) as string[];
    const policy = r?.[1];
    if (policy && policy !== "noeviction")
      return `Redis maxmemory-policy is ${policy}: under memory pressure it may evict queue keys and lose jobs; set it to noeviction`;
  } catch {
    // CONFIG is often disabled on managed Redis; nothing to say then.
  }
  return undefined;
}

export interface EnsuredRedis {
  url: string;
  /** where it came from, for messages */
  source: "REDIS_URL" | "localhost" | "private";
  /** stops a private redis-server (no-op otherwise) */
  stop(): Promise<void>;
}

/**
 * A Redis to use: REDIS_URL if set (it must answer), else 127.0.0.1:6379,
 * else a private `redis-server` on a free port (no persistence), stopped by
 * `stop()`. Throws a message that says what to install when none can be had.
 */
export async function ensureRedis(env: NodeJS.ProcessEnv = process.env, localUrl = "redis://127.0.0.1:6379"): Promise<EnsuredRedis> {
  const { spawn, spawnSync } = await import("node:child_process");
  const noop = async () => {};
  const answers = async (url: string) => {
    try {
      (await connectRedis(url, {}, 1500)).disconnect();
      return true;
    } catch {
      return false;
    }
  };
  if (env.REDIS_URL) {
    if (await answers(env.REDIS_URL)) return { url: env.REDIS_URL, source: "REDIS_URL", stop: noop };
    throw new Error(`REDIS_URL=${redactRedisUrl(env.REDIS_URL)} does not answer; start that Redis or unset REDIS_URL`);
  }
  if (await answers(localUrl)) return { url: localUrl, source: "localhost", stop: noop };
  if (spawnSync("redis-server", ["--version"]).error)
    throw new Error(
      `no Redis answers on ${redactRedisUrl(localUrl)} and redis-server is not installed:` +
        " install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis) or set REDIS_URL=redis://host:port",
    );
  const port = await freePort();
  const child = spawn("redis-server", ["--bind", "127.0.0.1", "--port", String(port), "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  const url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50 && !(await answers(url)); i++) await new Promise((r) => setTimeout(r, 100));
  if (!(await answers(url))) {
    child.kill("SIGKILL");
    throw new Error(`started redis-server on port ${port} but it does not answer`);
  }
  return {
    url,
    source: "private",
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

/** Deletes every key matching `pattern` (SCAN, so a big keyspace is never blocked); returns how many. */
export async function deleteKeys(redis: Redis, pattern: string): Promise<number> {
  let cursor = "0";
  let n = 0;
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
    if (keys.length) n += await redis.del(...keys);
    cursor = next;
  } while (cursor !== "0");
  return n;
}

/** A TCP port free on 127.0.0.1 right now (for a private redis-server or inference server). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}
