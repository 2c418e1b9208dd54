// A campaign on a repository written by `timeslide model-repo --streams`,
// served by the embedded server with Triton's sequence slots (one per
// snapshotter instance): workers size their sequences from the slots the
// servers' model configs declare, so no sequence waits in a server's backlog
// (where a request's deadline would run) and every job completes.
// Needs `npm run build` (the CLI writes the repository).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Redis } from "ioredis";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { campaignStatus, connectRedis, deleteKeys, prepareCampaign, submitCampaign } from "@timeslide/campaign";
import { ServerPool } from "@timeslide/kserve";
import { readModel } from "@timeslide/model-repo";
import { startServer, type RunningServer } from "@timeslide/server";
import { synthesize } from "@timeslide/strain";
import { sequencesPerJob, startWorker } from "@timeslide/worker";

const CLI = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsslots-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-slots-"));
const log = pino({ level: "warn" }, pino.destination(2));
const STREAMS = 4;
const JOBS = 2;

let redis: Redis;
let server: RunningServer;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: 640, sampleRate: 512, fileDuration: 320, gaps: 1, seed: 11 });
  const r = spawnSync(
    process.execPath,
    [CLI, "model-repo", "--out", join(dir, "models"), "--ifos", "2", "--kernel-length", "1", "--sample-rate", "256", "--inference-sampling-rate", "4", "--batch-size", "16", "--no-dynamic-batching", "--streams", String(STREAMS), "--json"],
    { encoding: "utf8" },
  );
  expect(r.status, r.stderr).toBe(0);
  expect(JSON.parse(r.stdout).streams).toBe(STREAMS);
  server = await startServer({ repository: join(dir, "models"), host: "127.0.0.1", port: 0, threads: 1, logger: log });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe.skipIf(!existsSync(CLI))("a campaign on a repository written with --streams", () => {
  it("sizes sequences from the slots: the repository declares them, the pool reads them, each job gets its share", async () => {
    expect(readModel(join(dir, "models"), "snapshotter").config.instance_group).toEqual([{ count: STREAMS, kind: "KIND_CPU" }]);
    const pool = await ServerPool.create({ endpoints: `127.0.0.1:${server.port}` });
    try {
      expect(await pool.sequenceSlots("detector-stream")).toBe(STREAMS);
    } finally {
      pool.close();
    }
    expect(sequencesPerJob(STREAMS, JOBS)).toBe(2);
    expect(sequencesPerJob(STREAMS, JOBS, 6)).toBe(6); // --sequences wins
    expect(sequencesPerJob(Infinity, JOBS)).toBe(4); // servers that do not limit sequences
    expect(sequencesPerJob(1, 3)).toBe(1);
  });

  it("completes with workers sized from the slots: no sequence waits in the server's backlog, no request past its deadline", async () => {
    const file = join(dir, "campaign.yaml");
    writeFileSync(
      file,
      `name: slots
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: 256, segments: { flags: [DATA], min_duration: 64 } }
model: { name: detector-stream, servers: ["127.0.0.1:${server.port}"] }
inference: { kernel_length: 1, inference_sampling_rate: 4, batch_size: 16, psd_length: 16, fduration: 1, highpass: 20 }
background: { shifts: 6, step: 2, max_job_duration: 200, job_livetime: 600 }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-slots
`,
    );
    const { campaign, plan } = await prepareCampaign(file);
    const snap = server.engine.models.get("snapshotter")!;
    expect(snap.batcher!.slots).toBe(STREAMS);
    let maxActive = 0;
    let maxWaiting = 0;
    const watch = setInterval(() => {
      maxActive = Math.max(maxActive, snap.sequencesActive);
      maxWaiting = Math.max(maxWaiting, snap.sequencesWaiting);
    }, 2);
    // No --sequences: each job streams slots ÷ jobs = 2 sequences (the old fixed default, 4 per job, would put 8 sequences on 4 slots).
    const w = await startWorker({ redis, redisUrl: REDIS_URL, prefix, campaigns: ["slots"], concurrency: JOBS, requestDeadlineMs: 20_000, metricsPort: 0, log });
    try {
      await submitCampaign({ redis, prefix, campaign, plan });
      const until = Date.now() + 150_000;
      let s = await campaignStatus(redis, prefix, "slots");
      while (!s.done && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 250));
        s = await campaignStatus(redis, prefix, "slots");
      }
      expect(s.done).toBe(true);
      expect(s.jobs.failed).toBe(0);
      expect(s.livetime.background_s).toBe(plan.livetime.background_s);
      expect(s.livetime.foreground_s).toBe(plan.livetime.foreground_s);
      const metrics = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
      // no attempt failed (a request past its deadline fails its job's attempt once failover runs out)
      expect(metrics).not.toMatch(/timeslide_job_errors_total\{[^}]*\} [1-9]/);
    } finally {
      clearInterval(watch);
      await w.close();
    }
    expect(maxWaiting).toBe(0); // never a sequence in the server's backlog
    expect(maxActive).toBeGreaterThanOrEqual(2);
    expect(maxActive).toBeLessThanOrEqual(STREAMS);
    // every slot free again: every sequence ended
    expect(snap.sequencesActive).toBe(0);
  }, 200_000);
});
