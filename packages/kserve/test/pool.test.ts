import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { InferenceClient, outputOf, type InferResult } from "../src/client.js";
import { ServerPool, discoverServers, parseEndpoints, registerServer, registryKey } from "../src/pool.js";
import { SequenceStream, updateLength } from "../src/sequence.js";
import { startToyServer, type ToyServer } from "./helpers.js";
import { TOY_GEOMETRY as G, strain, updateAt } from "./reference.js";

const stat = (r: InferResult) => Array.from(outputOf(r, "stat").data as Float32Array);
const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function servers(n: number, asProcess = false): Promise<ToyServer[]> {
  const s = await Promise.all(Array.from({ length: n }, () => startToyServer([], { process: asProcess })));
  cleanup.push(() => Promise.all(s.map((x) => x.kill("SIGKILL"))));
  return s;
}

describe("parseEndpoints", () => {
  it("parses host:port lists and names the bad entry", () => {
    expect(parseEndpoints(" a:1, b.example:8001 ,a:1")).toEqual(["a:1", "b.example:8001"]);
    expect(parseEndpoints(["[::1]:8001"])).toEqual(["[::1]:8001"]);
    expect(() => parseEndpoints("a:1,nohost")).toThrow('servers[1]: "nohost" is not an endpoint: expected host:port');
    expect(() => parseEndpoints("a:70000")).toThrow(/port 70000 out of range/);
    expect(() => parseEndpoints(" , ")).toThrow(/no endpoints given/);
  });
});

describe("ServerPool", () => {
  it("balances by least outstanding requests within the per-server in-flight limit", async () => {
    const [a, b] = await servers(2);
    const pool = await ServerPool.create({ endpoints: `${a.endpoint},${b.endpoint}`, maxInFlightPerServer: 2 });
    cleanup.push(() => pool.close());
    let maxSeen = 0;
    const sampler = setInterval(() => {
      for (const s of pool.servers()) maxSeen = Math.max(maxSeen, s.inFlight);
    }, 5);
    const input = { name: "INPUT", datatype: "FP32" as const, shape: [1], data: new Float32Array([1]) };
    const results = await Promise.all(
      Array.from({ length: 12 }, () => pool.infer({ model: "slow", inputs: [input], parameters: { delay_ms: 60 } })),
    );
    clearInterval(sampler);
    expect(results).toHaveLength(12);
    expect(maxSeen).toBeLessThanOrEqual(2);
    expect(maxSeen).toBe(2);
    const served = pool.servers().map((s) => s.served);
    expect(served[0] + served[1]).toBe(12);
    expect(Math.min(...served)).toBeGreaterThanOrEqual(3); // both servers took a share
  });

  it("sequence updates respect the in-flight limit and keep their order", async () => {
    const [a] = await servers(1);
    const pool = await ServerPool.create({ endpoints: a.endpoint, maxInFlightPerServer: 2 });
    cleanup.push(() => pool.close());
    const K = 6;
    const n = K * updateLength(G);
    const data = [strain(G.channels, n, 1), strain(G.channels, n, 2), strain(G.channels, n, 3)];
    // reference: one sequence at a time, one update at a time
    const ref = pool.openSequence({ model: "snapshotter", geometry: G });
    const expected0: number[][] = [];
    for (let k = 0; k < K; k++) expected0.push(stat(await ref.send(updateAt(data[0], n, G, k), { end: k === K - 1 })));
    let maxSeen = 0;
    const sampler = setInterval(() => (maxSeen = Math.max(maxSeen, pool.servers()[0].inFlight)), 1);
    const seqs = data.map(() => pool.openSequence({ model: "snapshotter", geometry: G }));
    // every update of every sequence queued at once: 18 requests, at most 2 in flight
    const got = await Promise.all(seqs.map((seq, s) => Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data[s], n, G, k)).then(stat)))));
    clearInterval(sampler);
    expect(got[0]).toEqual(expected0);
    expect(got[1]).not.toEqual(expected0);
    expect(maxSeen).toBeLessThanOrEqual(2);
    expect(pool.servers()[0].inFlight).toBe(0);
  });

  it("health checks take a dead server out and requests go to the living one", async () => {
    const [a, b] = await servers(2, true);
    const pool = await ServerPool.create({ endpoints: [a.endpoint, b.endpoint], healthIntervalMs: 60_000 });
    cleanup.push(() => pool.close());
    expect(pool.servers().every((s) => s.healthy)).toBe(true);
    await a.kill("SIGKILL");
    // unary requests to the dead server fail over to the other one
    for (let i = 0; i < 4; i++) {
      const r = await pool.infer({ model: "echo", inputs: [{ name: "x", datatype: "INT32", shape: [1], data: new Int32Array([i]) }] });
      expect(Array.from(outputOf(r, "x").data as Int32Array)).toEqual([i]);
    }
    await pool.checkHealth();
    const states = Object.fromEntries(pool.servers().map((s) => [s.endpoint, s.healthy]));
    expect(states).toEqual({ [a.endpoint]: false, [b.endpoint]: true });
  });

  it("a model that is not ready makes a server unhealthy for that pool", async () => {
    const [a] = await servers(1);
    const c = new InferenceClient(a.endpoint);
    cleanup.push(() => c.close());
    await c.waitForReady();
    await c.unloadModel("snapshotter");
    const pool = await ServerPool.create({ endpoints: a.endpoint, model: "snapshotter", serverWaitMs: 300 });
    cleanup.push(() => pool.close());
    expect(pool.servers()[0]).toMatchObject({ healthy: false, lastError: "model snapshotter not ready" });
    const seq = pool.openSequence({ model: "snapshotter", geometry: G });
    await expect(seq.send(new Float32Array(12))).rejects.toThrow(/no healthy server for the sequence/);
    // A sequence waits (serverWaitMs) for a server that comes back rather than failing at once.
    const waiting = pool.openSequence({ model: "snapshotter", geometry: G }).send(new Float32Array(12));
    await c.loadModel("snapshotter");
    await pool.checkHealth();
    expect(pool.servers()[0].healthy).toBe(true);
    const patient = await ServerPool.create({ endpoints: a.endpoint, model: "snapshotter", serverWaitMs: 10_000 });
    cleanup.push(() => patient.close());
    await c.unloadModel("snapshotter");
    await patient.checkHealth();
    const later = patient.openSequence({ model: "snapshotter", geometry: G }).send(new Float32Array(12));
    await new Promise((r) => setTimeout(r, 700));
    await c.loadModel("snapshotter");
    await expect(later).resolves.toBeDefined();
    await waiting.catch(() => undefined);
  });

  it("failover: killing a server mid-sequence gives outputs identical to an uninterrupted run", async () => {
    const K = 12;
    const n = K * updateLength(G);
    const nseq = 4;
    const data = Array.from({ length: nseq }, (_, i) => strain(G.channels, n, 100 + i));

    // uninterrupted reference on a single server
    const [ref] = await servers(1);
    const refClient = new InferenceClient(ref.endpoint);
    cleanup.push(() => refClient.close());
    const refStream = refClient.openStream();
    const expected: number[][][] = [];
    for (let s = 0; s < nseq; s++) {
      const seq = new SequenceStream({ carrier: refStream, model: "snapshotter", geometry: G });
      expected.push(await Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data[s], n, G, k)).then(stat))));
    }
    await refStream.end();

    const [a, b] = await servers(2, true);
    const pool = await ServerPool.create({ endpoints: [a.endpoint, b.endpoint], maxInFlightPerServer: 4, healthIntervalMs: 60_000 });
    cleanup.push(() => pool.close());
    const moves: Array<{ from: string; to: string; replayed: number; resent: number }> = [];
    const seqs = data.map(() => pool.openSequence({ model: "snapshotter", geometry: G, deadlineMs: 10_000, onFailover: (m) => moves.push(m) }));
    const got: number[][][] = seqs.map(() => []);
    // Each sequence keeps up to 3 updates in flight; the victim dies after 5 answered updates.
    const victim = a;
    let killed = false;
    await Promise.all(
      seqs.map(async (seq, s) => {
        const inflight: Promise<void>[] = [];
        for (let k = 0; k < K; k++) {
          if (!killed && s === 0 && k === 6) {
            killed = true;
            await victim.kill("SIGKILL");
          }
          inflight.push(seq.send(updateAt(data[s], n, G, k), { end: k === K - 1 }).then((r) => void got[s].push(stat(r))));
          if (inflight.length >= 3) await inflight.shift();
        }
        await Promise.all(inflight);
      }),
    );
    expect(killed).toBe(true);
    // neither lost nor duplicated: same count, same values, same order
    for (let s = 0; s < nseq; s++) {
      expect(got[s]).toHaveLength(K);
      expect(got[s]).toEqual(expected[s]);
    }
    // the sequences on the victim moved (the others were untouched)
    // sequences were spread two per server; the victim's two moved, once each
    const onVictim = moves.filter((m) => m.from === victim.endpoint);
    expect(onVictim.length).toBe(2);
    expect(moves.length).toBe(2);
    for (const m of onVictim) {
      expect(m.to).toBe(b.endpoint);
      expect(m.replayed).toBe(2); // ceil(12 / 6) updates rebuild the 12-sample state
    }
    expect(seqs.reduce((a, s) => a + s.counters.failovers, 0)).toBe(onVictim.length);
    // every sequence ended: none is still counted on a server
    expect(pool.servers().map((s) => s.sequences)).toEqual([0, 0]);
  });
});

describe("Redis registry", () => {
  const url = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
  const prefix = `timeslide-test:${randomBytes(6).toString("hex")}`;
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(url, { lazyConnect: false, maxRetriesPerRequest: 2 });
  });
  afterAll(async () => {
    await redis.del(registryKey(prefix));
    redis.disconnect();
  });

  it("servers register with a TTL, refresh it, and disappear when stopped or expired", async () => {
    const r1 = await registerServer(redis, prefix, "10.0.0.1:8001", 2);
    const r2 = await registerServer(redis, prefix, "10.0.0.2:8001", 2);
    expect(await discoverServers(redis, prefix)).toEqual(["10.0.0.1:8001", "10.0.0.2:8001"]);
    await new Promise((r) => setTimeout(r, 2300)); // past the TTL: still there because refreshed
    expect(await discoverServers(redis, prefix)).toEqual(["10.0.0.1:8001", "10.0.0.2:8001"]);
    await r1.stop();
    expect(await discoverServers(redis, prefix)).toEqual(["10.0.0.2:8001"]);
    // a crashed server's lease lapses: emulate with an entry that expired a second ago
    const [sec] = await redis.time();
    await redis.zadd(registryKey(prefix), Number(sec) * 1000 - 1000, "10.0.0.3:8001");
    expect(await discoverServers(redis, prefix)).toEqual(["10.0.0.2:8001"]);
    expect(await redis.zscore(registryKey(prefix), "10.0.0.3:8001")).toBeNull();
    await r2.stop();
    expect(await discoverServers(redis, prefix)).toEqual([]);
    await expect(registerServer(redis, prefix, "bad endpoint", 5)).rejects.toThrow(/not an endpoint/);
  });

  it("a pool discovers registered servers and serves through them", async () => {
    const [a, b] = await servers(2);
    const regs = [await registerServer(redis, prefix, a.endpoint, 5), await registerServer(redis, prefix, b.endpoint, 5)];
    cleanup.push(() => Promise.all(regs.map((r) => r.stop())));
    const pool = await ServerPool.create({ discovery: { redis, prefix, intervalMs: 60_000 } });
    cleanup.push(() => pool.close());
    expect(pool.servers().map((s) => [s.endpoint, s.healthy]).sort()).toEqual([[a.endpoint, true], [b.endpoint, true]].sort());
    const rs = await Promise.all(
      Array.from({ length: 4 }, (_, i) => pool.infer({ model: "echo", inputs: [{ name: "x", datatype: "INT32", shape: [1], data: new Int32Array([i]) }] })),
    );
    expect(rs.map((r) => (outputOf(r, "x").data as Int32Array)[0])).toEqual([0, 1, 2, 3]);
    // a server that deregisters takes no new work
    await regs[0].stop();
    await pool.discover();
    for (let i = 0; i < 3; i++) await pool.infer({ model: "echo", inputs: [] });
    const served = Object.fromEntries(pool.servers().map((s) => [s.endpoint, s.served]));
    expect(served[b.endpoint]).toBeGreaterThanOrEqual(4);
    expect(served[a.endpoint] + served[b.endpoint]).toBe(7);
    expect(served[a.endpoint]).toBeLessThanOrEqual(3);
  });
});
