import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync, existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import * as ort from "onnxruntime-node";
import pino from "pino";
import type { Redis } from "ioredis";
import { campaignStatus, connectRedis, deleteKeys, prepareCampaign, submitCampaign, readMeta, type Plan } from "@timeslide/campaign";
import { synthesize } from "@timeslide/strain";
import { writeDemoRepository } from "@timeslide/model-repo";
import { startServer, type RunningServer } from "@timeslide/server";
import { JobFileReader, producedSamples, readEventsFile } from "@timeslide/stats";
import { ContextCache, runJob, startWorker } from "@timeslide/worker";
import { InProcessModel } from "./reference-model.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tswork-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-worker-"));
const log = pino({ level: "warn" }, pino.destination(2));
const FS = 256, KERNEL = 256, STRIDE = 64, BATCH = 16;

let redis: Redis;
let server: RunningServer;
let plan: Plan;
let campaignYaml: (name: string, background: string) => string;

/** Starts a worker for the campaign, then (when given) submits it, and waits until it is done. */
async function drain(campaign: string, submit?: () => Promise<unknown>) {
  const w = await startWorker({ redis, redisUrl: REDIS_URL, prefix, campaigns: [campaign], concurrency: 2, log });
  try {
    await submit?.();
    const deadline = Date.now() + 150_000;
    let s = await campaignStatus(redis, prefix, campaign);
    while (!s.done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 500));
      s = await campaignStatus(redis, prefix, campaign);
    }
    return s;
  } finally {
    await w.close();
  }
}

/** Runs every job again in-process with the reference model and compares the event files exactly. */
async function compareWithReference(campaign: string, p: Plan): Promise<number> {
  const meta = (await readMeta(redis, prefix, campaign))!;
  const ctx = { ...(await new ContextCache(redis, prefix).get(campaign)), output: join(dir, `reference-${campaign}`) };
  const session = await ort.InferenceSession.create(join(dir, "models", "detector", "1", "model.onnx"), { intraOpNumThreads: 1 });
  let events = 0;
  for (const job of p.jobs) {
    await runJob(job.id, job.payload, ctx, { model: new InProcessModel(session, { kernel: KERNEL, stride: STRIDE, batch: BATCH }) });
    const a = await readEventsFile(join(meta.output, "jobs", `${job.id}.h5`));
    const b = await readEventsFile(join(ctx.output, "jobs", `${job.id}.h5`));
    expect(a.events.time, job.id).toEqual(b.events.time);
    expect(a.events.detection_statistic, job.id).toEqual(b.events.detection_statistic);
    expect(a.events.shift).toEqual(b.events.shift);
    expect(a.events.livetime).toBe(job.payload.livetime);
    events += a.events.time.length;
  }
  return events;
}


beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  const data = join(dir, "data");
  const syn = await synthesize({ out: data, ifos: ["H1", "L1"], duration: 640, sampleRate: 512, fileDuration: 320, gaps: 1, injections: 6, snr: [20, 40], seed: 7 });
  const repo = join(dir, "models");
  writeDemoRepository(repo, { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, dynamicBatching: false });
  server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: 1 });
  campaignYaml = (name: string, background: string) => `name: ${name}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 64 } }
model: { name: detector-stream, servers: ["127.0.0.1:${server.port}"] }
inference: { kernel_length: 1, inference_sampling_rate: 4, batch_size: ${BATCH}, psd_length: 16, fduration: 1, highpass: 20 }
background: ${background}
injections: { file: ${syn.injectionFile} }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-${name}
`;
  writeFileSync(join(dir, "campaign.yaml"), campaignYaml("wtest", "{ shifts: 3, step: 2, max_job_duration: 200, job_livetime: 400 }"));
  const prepared = await prepareCampaign(join(dir, "campaign.yaml"));
  plan = prepared.plan;
  await submitCampaign({ redis, prefix, campaign: prepared.campaign, plan });
}, 180_000);

afterAll(async () => {
  await server?.close();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("workers on a real Redis and the embedded server", () => {
  it("complete every job; events equal an in-process reference run exactly; the report is written", async () => {
    process.env.LOG_LEVEL = "warn";
    const w = await startWorker({ redis, redisUrl: REDIS_URL, prefix, campaigns: ["wtest"], concurrency: 2, metricsPort: 0, log });
    try {
      const deadline = Date.now() + 150_000;
      let s = await campaignStatus(redis, prefix, "wtest");
      while (!s.done && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        s = await campaignStatus(redis, prefix, "wtest");
      }
      expect(s.jobs.failed).toBe(0);
      expect(s.done).toBe(true);
      expect(s.livetime.background_s).toBe(plan.livetime.background_s);
      expect(s.livetime.foreground_s).toBe(plan.livetime.foreground_s);

      const metrics = await (await fetch(`http://127.0.0.1:${w.metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/timeslide_jobs_total\{campaign="wtest",kind="background",outcome="completed"\} \d+/);
    } finally {
      await w.close();
    }

    // The reference run: same data, same model (onnxruntime-node in-process), same post-processing.
    expect(await compareWithReference("wtest", plan)).toBeGreaterThan(0);
    const meta = (await readMeta(redis, prefix, "wtest"))!;

    // The last job to finish started the aggregation.
    const reportPath = join(meta.output, "report.json");
    const deadline = Date.now() + 60_000;
    while (!existsSync(reportPath) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
    const report = JSON.parse(readFileSync(reportPath, "utf8"));
    expect(report.livetime.background_s).toBe(plan.livetime.background_s);
    expect(report.jobs.completed).toBe(plan.jobs.length);
  });

  it("circular slides: wrapped detectors, no livetime lost to the shift, events equal the reference", async () => {
    const file = join(dir, "circular.yaml");
    writeFileSync(file, campaignYaml("wcirc", "{ shifts: 2, step: 37, circular: true, max_job_duration: 200, job_livetime: 1000 }"));
    const prepared = await prepareCampaign(file);
    const p = prepared.plan;
    expect(p.livetime.background_s).toBe(2 * p.livetime.foreground_s); // circular: every shift keeps all of it
    // The worker starts before the campaign is submitted (as a batch system may start it) and picks it up.
    const s = await drain("wcirc", () => submitCampaign({ redis, prefix, campaign: prepared.campaign, plan: p }));
    expect(s.jobs.failed).toBe(0);
    expect(s.done).toBe(true);
    expect(s.livetime.background_s).toBe(p.livetime.background_s);
    expect(await compareWithReference("wcirc", p)).toBeGreaterThan(0);
  });

  it("background vetoes: vetoed samples are not produced (no event from a window over a veto) and not counted", async () => {
    const seg = plan.segments.reduce((m, x) => (x.duration > m.duration ? x : m));
    const veto: [number, number] = [seg.start + 100, seg.start + 103];
    writeFileSync(join(dir, "vetoes.txt"), `${veto[0]} ${veto[1]}\n`);
    const file = join(dir, "veto.yaml");
    writeFileSync(file, campaignYaml("wveto", "{ shifts: 3, step: 2, max_job_duration: 200, job_livetime: 400, vetoes: vetoes.txt }"));
    const prepared = await prepareCampaign(file);
    const p = prepared.plan;
    expect(p.livetime.vetoed_s).toBeGreaterThan(0);
    expect(p.livetime.background_s + p.livetime.vetoed_s).toBe(plan.livetime.background_s);
    expect(p.livetime.foreground_s).toBe(plan.livetime.foreground_s);
    const s = await drain("wveto", () => submitCampaign({ redis, prefix, campaign: prepared.campaign, plan: p }));
    expect(s.jobs.failed).toBe(0);
    expect(s.livetime.background_s).toBe(p.livetime.background_s);
    const meta = (await readMeta(redis, prefix, "wveto"))!;
    for (const job of p.jobs.filter((j) => j.payload.kind === "background")) {
      const { events } = await readEventsFile(join(meta.output, "jobs", `${job.id}.h5`));
      for (let e = 0; e < events.time.length; e++) {
        const peak = events.time[e] + 0.5 + 0.5; // the event's sample: time + kernel/2 + integration window/2
        for (const d of [events.shift[2 * e], events.shift[2 * e + 1]]) {
          expect(peak + d <= veto[0] || peak - 1 + d >= veto[1], `${job.id}: event at ${events.time[e]} has a window over the veto`).toBe(true);
        }
      }
    }
    expect(await compareWithReference("wveto", p)).toBeGreaterThan(0);

    // The job files' output sample grid (/grid) reproduces what the job produced: its livetime, each event
    // on a produced (not vetoed) sample of its shift's row, the shift's events in its rows of /events.
    let vetoedRows = 0;
    for (const job of p.jobs.filter((j) => j.payload.kind === "background")) {
      const path = join(meta.output, "jobs", `${job.id}.h5`);
      const { events } = await readEventsFile(path);
      const r = await JobFileReader.open(path);
      const grid = r.grid()!;
      r.close();
      expect(grid.inferenceSamplingRate).toBe(4);
      expect(grid.eventTimeOffset).toBe(0.5 + 0.5);
      expect(grid.rows.reduce((a, row) => a + producedSamples(row), 0) / 4).toBe(events.livetime);
      expect(grid.rows.reduce((a, row) => a + row.eventCount, 0)).toBe(events.time.length);
      for (const row of grid.rows) {
        if (row.vetoed.length) vetoedRows++;
        for (let e = row.eventStart; e < row.eventStart + row.eventCount; e++) {
          expect([events.shift[2 * e], events.shift[2 * e + 1]]).toEqual(row.shift);
          const j = (events.time[e] + grid.eventTimeOffset - row.first) * 4;
          expect(Number.isInteger(j) && j >= 0 && j < row.count).toBe(true);
          expect(row.vetoed.some(([a, b]) => j >= a && j < b)).toBe(false);
        }
      }
    }
    expect(vetoedRows).toBeGreaterThan(0);
  });
});
