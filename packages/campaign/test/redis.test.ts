import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connectRedis, ensureRedis, LOG_REDACT, redactUrls, redisOptions } from "@timeslide/campaign";

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

describe("Redis TLS options and redaction", () => {
  it("takes the CA for rediss:// from TIMESLIDE_REDIS_CA, and only for rediss://", () => {
    const dir = mkdtempSync(join(tmpdir(), "timeslide-ca-"));
    try {
      const ca = join(dir, "ca.pem");
      writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n");
      const o = redisOptions("rediss://:pw@redis.example.org:6380", { TIMESLIDE_REDIS_CA: ca });
      expect(String((o.tls as { ca: Buffer }).ca)).toContain("BEGIN CERTIFICATE");
      expect(redisOptions("redis://127.0.0.1:6379", { TIMESLIDE_REDIS_CA: ca })).toEqual({});
      expect(redisOptions("rediss://127.0.0.1:6380", {})).toEqual({}); // ioredis: TLS with the system roots
      expect(() => redisOptions("rediss://127.0.0.1:6380", { TIMESLIDE_REDIS_CA: join(dir, "missing.pem") })).toThrow(/TIMESLIDE_REDIS_CA=.*missing\.pem: cannot read the CA certificate file: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("redacts credentials of any URL in a text, and in logged url fields", () => {
    expect(redactUrls("cannot register in Redis at rediss://user:s3cret@h:6380/0: WRONGPASS")).toBe("cannot register in Redis at rediss://***@h:6380/0: WRONGPASS");
    expect(redactUrls("redis://h:6379 and redis://:p@h2:1")).toBe("redis://h:6379 and redis://***@h2:1");
    expect(LOG_REDACT.censor("rediss://:s3cret@h:6380")).toBe("rediss://***@h:6380");
    expect(LOG_REDACT.censor(42)).toBe(42);
  });
});
