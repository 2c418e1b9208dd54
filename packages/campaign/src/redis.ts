import { Redis, type RedisOptions } from "ioredis";

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

/**
 * Connects and waits until Redis answers, failing fast with a message that
 * says what to do, instead of ioredis's endless silent reconnects.
 */
export async function connectRedis(url: string, opts: RedisOptions = {}, timeoutMs = 5000): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: null, // required by BullMQ workers; harmless elsewhere
    enableReadyCheck: true,
    connectTimeout: timeoutMs,
    retryStrategy: (times) => Math.min(times * 200, 2000),
    ...opts,
  });
  redis.on("error", () => {}); // reported through connect() below and per command
  try {
    await Promise.race([
      redis.connect(),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    await redis.ping();
  } catch (e) {
    redis.disconnect();
    throw new Error(
      `cannot reach Redis at ${redactRedisUrl(url)}: ${(e as Error).message}. ` +
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
