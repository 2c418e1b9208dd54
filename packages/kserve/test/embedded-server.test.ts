// Our client against timeslide's embedded ONNX Runtime server, run as a
// separate process exactly as deployed (apps/server/dist/main.js), on a
// model repository written by @timeslide/model-repo: the demo detector,
// the snapshotter with implicit state, and the streaming ensemble.
// Needs `npm run build` at the root (the server and model-repo dists).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import { InferenceClient, outputOf, type InferResult } from "../src/client.js";
import { Redis } from "ioredis";
import { randomBytes } from "node:crypto";
import { ServerPool, discoverServers, registryKey } from "../src/pool.js";
import { SequenceStream, type SnapshotGeometry } from "../src/sequence.js";
import { strain, updateAt, windowsAfter } from "./reference.js";

const MAIN = fileURLToPath(new URL("../../../apps/server/dist/main.js", import.meta.url));
const MODEL_REPO_DIST = fileURLToPath(new URL("../../model-repo/dist/index.js", import.meta.url));
const available = existsSync(MAIN) && existsSync(MODEL_REPO_DIST);
if (!available) console.warn(`embedded-server tests skipped: build first (missing ${existsSync(MAIN) ? MODEL_REPO_DIST : MAIN})`);

const G: SnapshotGeometry = { channels: 2, kernel: 64, stride: 8, batch: 4 };

interface Proc {
  endpoint: string;
  proc: ChildProcess;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

async function startEmbedded(repo: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  const port = await freePort();
  const args = [MAIN, "--repo", repo, "--port", String(port), "--host", "127.0.0.1", ...extra.map((a) => a.replace("{port}", String(port)))];
  const proc = spawn(process.execPath, args, { stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, ...env } });
  let stderr = "";
  proc.stderr!.on("data", (d) => (stderr += d));
  const endpoint = `127.0.0.1:${port}`;
  const c = new InferenceClient(endpoint);
  try {
    await c.waitForReady({ timeoutMs: 20_000, model: "detector-stream" });
  } catch (e) {
    proc.kill("SIGKILL");
    throw new Error(`embedded server did not become ready: ${(e as Error).message}\n${stderr}`);
  } finally {
    c.close();
  }
  return {
    endpoint,
    proc,
    kill: (signal = "SIGKILL") =>
      new Promise<void>((res) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return res();
        proc.once("exit", () => res());
        proc.kill(signal);
      }),
  };
}

const stat = (r: InferResult) => Array.from(outputOf(r, "detection_statistic").data as Float32Array);

describe.skipIf(!available)("client against the embedded server", () => {
  let repo: string;
  let a: Proc;
  let b: Proc;
  let client: InferenceClient;

  beforeAll(async () => {
    const { writeDemoRepository } = await import("@timeslide/model-repo");
    repo = mkdtempSync(join(tmpdir(), "kserve-embedded-"));
    writeDemoRepository(repo, { nIfo: G.channels, kernel: G.kernel, stride: G.stride, batch: G.batch, nTemplates: 4, maxBatchSize: 16 });
    // the same stream with a 200 ms sequence idle timeout
    writeDemoRepository(repo, {
      nIfo: G.channels, kernel: G.kernel, stride: G.stride, batch: G.batch, nTemplates: 4, maxBatchSize: 16,
      sequenceIdleMicroseconds: 200_000, detectorName: "detector-idle", snapshotterName: "snapshotter-idle", ensembleName: "detector-stream-idle",
    });
    [a, b] = await Promise.all([startEmbedded(repo), startEmbedded(repo)]);
    client = new InferenceClient(a.endpoint);
  }, 60_000);

  afterAll(async () => {
    client?.close();
    await Promise.all([a?.kill("SIGTERM"), b?.kill("SIGTERM")]);
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  it("answers every RPC the client implements", async () => {
    expect(await client.serverLive()).toBe(true);
    expect(await client.serverReady()).toBe(true);
    expect(await client.healthCheck()).toBe("SERVING");
    const sm = await client.serverMetadata();
    expect(sm.name).toBeTruthy();
    expect(sm.extensions).toContain("sequence");
    const mm = await client.modelMetadata("detector");
    expect(mm.inputs[0]).toMatchObject({ name: "whitened", datatype: "FP32", shape: ["-1", String(G.channels), String(G.kernel)] });
    const cfg = await client.modelConfig("snapshotter");
    expect(cfg.scheduling_choice).toBe("sequence_batching");
    expect(cfg.sequence_batching?.state[0]).toMatchObject({ input_name: "snapshot", output_name: "snapshot_out" });
    const ens = await client.modelConfig("detector-stream");
    expect(ens.platform).toBe("ensemble");
    expect(ens.ensemble_scheduling?.step.map((s) => s.model_name)).toEqual(["snapshotter", "detector"]);
    const index = await client.repositoryIndex();
    expect(index.map((m) => m.name).sort()).toEqual(expect.arrayContaining(["detector", "detector-stream", "snapshotter"]));
    const before = (await client.modelStatistics("detector"))[0];
    await client.infer({
      model: "detector",
      inputs: [{ name: "whitened", datatype: "FP32", shape: [3, G.channels, G.kernel], data: new Float32Array(3 * G.channels * G.kernel) }],
    });
    const after = (await client.modelStatistics("detector"))[0];
    expect(Number(after.inference_count) - Number(before.inference_count)).toBe(3);
    await expect(client.modelMetadata("no-such-model")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it("explicit unload and load", async () => {
    const c = new InferenceClient(b.endpoint);
    try {
      await c.unloadModel("detector-stream");
      expect(await c.modelReady("detector-stream")).toBe(false);
      await c.loadModel("detector-stream");
      expect(await c.modelReady("detector-stream")).toBe(true);
    } finally {
      c.close();
    }
  });

  it("streaming through the snapshotter ensemble equals every full window (float32 rounding)", async () => {
    const K = 6;
    const n = K * G.stride * G.batch;
    const data = strain(G.channels, n, 2024);
    const stream = client.openStream();
    const seq = new SequenceStream({ carrier: stream, model: "detector-stream", geometry: G });
    const streamed = await Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data, n, G, k), { end: k === K - 1 }).then(stat)));
    await stream.end();
    for (let k = 0; k < K; k++) {
      const full = stat(
        await client.infer({
          model: "detector",
          inputs: [{ name: "whitened", datatype: "FP32", shape: [G.batch, G.channels, G.kernel], data: windowsAfter(data, n, G, k) }],
        }),
      );
      expect(streamed[k]).toHaveLength(G.batch);
      // same windows, same model: equal to float32 rounding
      streamed[k].forEach((v, j) => expect(Math.abs(v - full[j])).toBeLessThanOrEqual(4 * 2 ** -23 * Math.max(1, Math.abs(full[j]))));
    }
  });

  it("interleaved sequences on one stream stay independent; a new sequence starts from zero", async () => {
    const n = 3 * G.stride * G.batch;
    const x = strain(G.channels, n, 1);
    const y = strain(G.channels, n, 2);
    const stream = client.openStream();
    const sx = new SequenceStream({ carrier: stream, model: "detector-stream", geometry: G, sequenceId: "x-seq" });
    const sy = new SequenceStream({ carrier: stream, model: "detector-stream", geometry: G });
    const rx: number[][] = [];
    const ry: number[][] = [];
    for (let k = 0; k < 3; k++) {
      const [a1, b1] = await Promise.all([sx.send(updateAt(x, n, G, k)), sy.send(updateAt(y, n, G, k))]);
      rx.push(stat(a1));
      ry.push(stat(b1));
    }
    // the same data alone on a fresh sequence gives the same outputs
    const solo = new SequenceStream({ carrier: stream, model: "detector-stream", geometry: G });
    for (let k = 0; k < 3; k++) expect(stat(await solo.send(updateAt(x, n, G, k)))).toEqual(rx[k]);
    expect(rx).not.toEqual(ry);
    await stream.end();
  });

  it("a sequence the server dropped as idle is rebuilt in place with identical outputs", async () => {
    const K = 5;
    const n = K * G.stride * G.batch;
    const data = strain(G.channels, n, 55);
    const stream = client.openStream();
    const ref = new SequenceStream({ carrier: stream, model: "detector-stream-idle", geometry: G });
    const expected = await Promise.all(Array.from({ length: K }, (_, k) => ref.send(updateAt(data, n, G, k)).then(stat)));
    const seq = new SequenceStream({ carrier: stream, model: "detector-stream-idle", geometry: G });
    const got: number[][] = [];
    for (let k = 0; k < 2; k++) got.push(stat(await seq.send(updateAt(data, n, G, k))));
    await new Promise((r) => setTimeout(r, 800)); // idle > 200 ms: the server drops the sequence
    for (let k = 2; k < K; k++) got.push(stat(await seq.send(updateAt(data, n, G, k))));
    expect(seq.counters.restarts).toBeGreaterThanOrEqual(1); // more if the machine is slow enough to idle again
    expect(got).toEqual(expected);
    await stream.end();
  });

  it("registers itself in Redis; a pool discovers it and serves through it; gone after shutdown", async () => {
    const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { maxRetriesPerRequest: 2 });
    const prefix = `timeslide-test:${randomBytes(6).toString("hex")}`;
    try {
      const srv = await startEmbedded(repo, ["--register", process.env.REDIS_URL ?? "redis://127.0.0.1:6379", "--advertise", "127.0.0.1:{port}", "--ttl", "5"], {
        TIMESLIDE_PREFIX: prefix,
      });
      expect(await discoverServers(redis, prefix)).toEqual([srv.endpoint]);
      const pool = await ServerPool.create({ discovery: { redis, prefix }, model: "detector" });
      try {
        expect(pool.servers()).toEqual([expect.objectContaining({ endpoint: srv.endpoint, healthy: true })]);
        const r = await pool.infer({
          model: "detector",
          inputs: [{ name: "whitened", datatype: "FP32", shape: [1, G.channels, G.kernel], data: new Float32Array(G.channels * G.kernel) }],
        });
        expect(outputOf(r, "detection_statistic").shape).toEqual([1, 1]);
      } finally {
        pool.close();
      }
      await srv.kill("SIGTERM");
      expect(await discoverServers(redis, prefix)).toEqual([]);
    } finally {
      await redis.del(registryKey(prefix));
      redis.disconnect();
    }
  });

  it("failover: killing a server mid-sequence gives outputs identical to an uninterrupted run", async () => {
    const K = 10;
    const n = K * G.stride * G.batch;
    const nseq = 4;
    const data = Array.from({ length: nseq }, (_, i) => strain(G.channels, n, 300 + i));
    // uninterrupted reference on server a
    const ref = client.openStream();
    const expected: number[][][] = [];
    for (let s = 0; s < nseq; s++) {
      const seq = new SequenceStream({ carrier: ref, model: "detector-stream", geometry: G });
      expected.push(await Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data[s], n, G, k)).then(stat))));
    }
    await ref.end();

    const victim = await startEmbedded(repo);
    const pool = await ServerPool.create({ endpoints: [victim.endpoint, b.endpoint], maxInFlightPerServer: 8, healthIntervalMs: 60_000, model: "detector-stream" });
    try {
      const moves: string[] = [];
      const seqs = data.map(() => pool.openSequence({ model: "detector-stream", geometry: G, deadlineMs: 20_000, onFailover: (m) => moves.push(m.from) }));
      const got: number[][][] = seqs.map(() => []);
      let killed = false;
      await Promise.all(
        seqs.map(async (seq, s) => {
          const inflight: Promise<void>[] = [];
          for (let k = 0; k < K; k++) {
            if (!killed && s === 0 && k === 5) {
              killed = true;
              await victim.kill("SIGKILL");
            }
            inflight.push(seq.send(updateAt(data[s], n, G, k), { end: k === K - 1 }).then((r) => void got[s].push(stat(r))));
            if (inflight.length >= 2) await inflight.shift();
          }
          await Promise.all(inflight);
        }),
      );
      for (let s = 0; s < nseq; s++) {
        expect(got[s]).toHaveLength(K);
        expect(got[s]).toEqual(expected[s]); // bit-identical: the replay rebuilt exactly the same state
      }
      expect(moves.length).toBe(2);
      expect(moves.every((m) => m === victim.endpoint)).toBe(true);
    } finally {
      pool.close();
      await victim.kill("SIGKILL");
    }
  });
});

describe.skipIf(!available)("pool against servers with one sequence slot (Triton's Direct, one snapshotter instance)", () => {
  let repo: string;
  let s: Proc;
  beforeAll(async () => {
    const { writeDemoRepository } = await import("@timeslide/model-repo");
    repo = mkdtempSync(join(tmpdir(), "kserve-one-slot-"));
    writeDemoRepository(repo, { nIfo: G.channels, kernel: G.kernel, stride: G.stride, batch: G.batch, nTemplates: 4, maxBatchSize: 16, streams: 1 });
    s = await startEmbedded(repo);
  }, 60_000);
  afterAll(async () => {
    await s?.kill("SIGTERM");
    if (repo) rmSync(repo, { recursive: true, force: true });
  });

  it("reads the slots from the ensemble's stateful step and opens no more sequences than that: the rest wait in the pool, none past a deadline", async () => {
    const pool = await ServerPool.create({ endpoints: s.endpoint, maxInFlightPerServer: 16 });
    try {
      expect(await pool.sequenceSlots("detector-stream")).toBe(1);
      const K = 6;
      const n = K * G.stride * G.batch;
      let maxOpen = 0;
      const watch = setInterval(() => (maxOpen = Math.max(maxOpen, pool.servers()[0].sequences)), 5);
      // Three sequences pipelined on the pool's one shared stream: with the
      // server's backlog behind a slot held by a sequence whose answers wait
      // behind a backlogged START (answers come in request order), this
      // would stall until the idle limit; the pool waits instead.
      const outs = await Promise.all(
        [0, 1, 2].map(async (i) => {
          const data = strain(G.channels, n, 300 + i);
          const seq = pool.openSequence({ model: "detector-stream", geometry: G, deadlineMs: 5_000 });
          const rs = await Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data, n, G, k), { end: k === K - 1 }).then(stat)));
          return rs;
        }),
      );
      clearInterval(watch);
      expect(maxOpen).toBe(1);
      for (const rs of outs) expect(rs).toHaveLength(K);
      expect(pool.servers()[0].sequences).toBe(0);
    } finally {
      pool.close();
    }
  }, 60_000);
  it("close() before the end ends the sequence on its server: the slot frees at once, not after the 60 s idle limit", async () => {
    const pool = await ServerPool.create({ endpoints: s.endpoint, maxInFlightPerServer: 16 });
    try {
      const n = 4 * G.stride * G.batch;
      const data = strain(G.channels, n, 401);
      const a = pool.openSequence({ model: "detector-stream", geometry: G, deadlineMs: 5_000 });
      await a.send(updateAt(data, n, G, 0));
      await a.send(updateAt(data, n, G, 1));
      const dangling = a.send(updateAt(data, n, G, 2)).catch((e: Error) => e);
      a.close(new Error("job failed"));
      expect(await dangling).toBeInstanceOf(Error);
      const t0 = performance.now();
      const b = pool.openSequence({ model: "detector-stream", geometry: G, deadlineMs: 5_000 });
      await b.send(updateAt(data, n, G, 0), { end: true });
      expect(performance.now() - t0).toBeLessThan(3_000);
      expect(pool.servers()[0].sequences).toBe(0);
    } finally {
      pool.close();
    }
  }, 30_000);
  it("slot leases in Redis: two pools (two worker processes) together open no more sequences than the server's slot; none waits in its backlog", async () => {
    const redis = new Redis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379", { lazyConnect: false, maxRetriesPerRequest: 1 });
    const prefix = `kslease-${randomBytes(4).toString("hex")}`;
    const pools = await Promise.all([0, 1].map(() => ServerPool.create({ endpoints: s.endpoint, slotLeases: { redis, prefix, ttlMs: 5_000 } })));
    const client = new InferenceClient(s.endpoint);
    try {
      const queueNs = async () => Number((await client.modelStatistics("snapshotter"))[0].inference_stats!.queue!.ns);
      const q0 = await queueNs();
      const K = 4;
      const n = K * G.stride * G.batch;
      let maxLeases = 0;
      const key = `${prefix}:slots:${s.endpoint}:detector-stream`;
      const watch = setInterval(() => void redis.zcard(key).then((c) => (maxLeases = Math.max(maxLeases, c))), 5);
      await Promise.all(
        [0, 1, 2, 3].map(async (i) => {
          const data = strain(G.channels, n, 500 + i);
          const seq = pools[i % 2].openSequence({ model: "detector-stream", geometry: G, deadlineMs: 5_000 });
          for (let k = 0; k < K; k++) {
            await seq.send(updateAt(data, n, G, k), { end: k === K - 1 });
            await new Promise((r) => setTimeout(r, 40)); // a stream's pace: without leases the other pool's START would wait this out in the backlog
          }
        }),
      );
      clearInterval(watch);
      expect(maxLeases).toBe(1);
      expect(await redis.zcard(key)).toBe(0); // every lease released
      // Server-side queue time (backlog included) stayed small: no START waited behind another pool's sequence.
      expect((await queueNs()) - q0).toBeLessThan(100e6);
    } finally {
      client.close();
      for (const p of pools) p.close();
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    }
  }, 60_000);
});
