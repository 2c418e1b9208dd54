import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { startServer } from "../src/index.js";
import { handWrittenRepository } from "./helpers.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `test-server-${randomBytes(4).toString("hex")}`;
const redis = new Redis(REDIS_URL, { lazyConnect: true });

afterAll(async () => {
  await redis.del(`${prefix}:servers`);
  await redis.quit();
});

describe("registration in Redis", () => {
  it("registers the advertised endpoint with a TTL and leaves on close", async () => {
    await redis.connect();
    const server = await startServer({
      repository: handWrittenRepository(),
      host: "127.0.0.1",
      port: 0,
      logger: pino({ level: "silent" }),
      register: { redis: REDIS_URL, prefix, ttlSeconds: 30 },
    });
    expect(server.registered).toBe(`127.0.0.1:${server.port}`);
    const [member, score] = await redis.zrange(`${prefix}:servers`, "0", "-1", "WITHSCORES");
    expect(member).toBe(`127.0.0.1:${server.port}`);
    const [s] = await redis.time();
    expect(Number(score)).toBeGreaterThan(Number(s) * 1000 + 25_000);
    await server.close();
    expect(await redis.zrange(`${prefix}:servers`, "0", "-1")).toEqual([]);
  });

  it("refuses to start when Redis cannot be reached", async () => {
    await expect(
      startServer({
        repository: handWrittenRepository(),
        host: "127.0.0.1",
        port: 0,
        logger: pino({ level: "silent" }),
        register: { redis: "redis://127.0.0.1:1", prefix },
      }),
    ).rejects.toThrow(/cannot register in Redis at redis:\/\/127.0.0.1:1/);
  });
});
