import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { connectRedis, ensureRedis } from "@timeslide/campaign";

// .ci/run installs redis-server when no Redis answers; with a remote REDIS_URL it may be absent.
const hasRedisServer = !spawnSync("redis-server", ["--version"]).error;

describe("finding a Redis", () => {
  it("uses REDIS_URL when it answers, and refuses one that does not", async () => {
    const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
    const r = await ensureRedis({ REDIS_URL: url });
    expect(r).toMatchObject({ url, source: "REDIS_URL" });
    await expect(ensureRedis({ REDIS_URL: "redis://:secret@127.0.0.1:1" })).rejects.toThrow(/REDIS_URL=redis:\/\/:\*\*\*@127\.0\.0\.1:1\/? does not answer/);
  });

  it.skipIf(!hasRedisServer)("starts a private redis-server on a free port when none answers, and stops it", async () => {
    const r = await ensureRedis({}, "redis://127.0.0.1:1"); // nothing listens on port 1
    expect(r.source).toBe("private");
    const redis = await connectRedis(r.url);
    expect(await redis.ping()).toBe("PONG");
    redis.disconnect();
    await r.stop();
    await expect(connectRedis(r.url, {}, 1000)).rejects.toThrow(/cannot reach Redis/);
  });
});
