// The factorized path against the whole model, same data, same server: the
// same events (times exact, statistic to float32 rounding), livetime and
// /grid, file by file (DESIGN.md "Factorized models"). The tests run in
// order: the later ones reuse the first one's campaigns ("whole", "fact").
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import pino from "pino";
import type { Redis } from "ioredis";
import { campaignKeys, campaignStatus, connectRedis, deleteKeys, prepareCampaign, readMeta, submitCampaign, type Plan } from "@timeslide/campaign";
import { ServerPool } from "@timeslide/kserve";
import { synthesize } from "@timeslide/strain";
import { addFactorized, chirpTemplates, GraphBuilder, writeDemoRepository } from "@timeslide/model-repo";
import { startServer, type RunningServer } from "@timeslide/server";
import { JobFileReader, readEventsFile } from "@timeslide/stats";
import { checkModelOnServers, ContextCache, FactorizedModel, isFactorized, resolveModel, runJob, startWorker } from "@timeslide/worker";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsfact-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-factorized-"));
process.env.LOG_LEVEL = "warn";
const log = pino({ level: "warn" }, pino.destination(2));
const FS = 256, KERNEL = 256, STRIDE = 64, BATCH = 16;

let redis: Redis;
let server: RunningServer;
let pool: ServerPool;
let yaml: (name: string, model: string, background: string) => string;

/** Prepares, submits and drains a campaign with one in-process worker; its plan. */
async function runCampaign(name: string, model: string, background: string, o: { wholeModel?: boolean } = {}): Promise<Plan> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml(name, model, background));
  const { campaign, plan } = await prepareCampaign(file);
  const w = await startWorker({ redis, redisUrl: REDIS_URL, prefix, campaigns: [name], concurrency: 2, log, wholeModel: o.wholeModel });
  try {
    await submitCampaign({ redis, prefix, campaign, plan });
    const deadline = Date.now() + 150_000;
    let s = await campaignStatus(redis, prefix, name);
    while (!s.done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      s = await campaignStatus(redis, prefix, name);
    }
    expect(s.jobs.failed, `${name}: failed jobs`).toBe(0);
    expect(s.done).toBe(true);
    expect(s.livetime.background_s).toBe(plan.livetime.background_s);
  } finally {
    await w.close();
  }
  return plan;
}

const outputOf = async (campaign: string) => (await readMeta(redis, prefix, campaign))!.output;

/** Two result files of the same job: same events (statistic to float32 rounding), livetime, /grid and injections. */
async function expectSameJob(a: string, b: string, id: string) {
  const x = await readEventsFile(a);
  const y = await readEventsFile(b);
  expect(y.events.time, id).toEqual(x.events.time);
  expect(y.events.shift, id).toEqual(x.events.shift);
  expect(y.events.livetime, id).toBe(x.events.livetime);
  expect(y.events.injection_index, id).toEqual(x.events.injection_index);
  const sx = x.events.detection_statistic;
  const sy = y.events.detection_statistic;
  expect(sy.length).toBe(sx.length);
  for (let e = 0; e < sx.length; e++) expect(Math.abs(sy[e] - sx[e]), `${id} event ${e}: ${sy[e]} vs ${sx[e]}`).toBeLessThanOrEqual(2e-6 * Math.max(1, Math.abs(sx[e])));
  const grid = async (p: string) => {
    const r = await JobFileReader.open(p);
    try {
      return r.grid();
    } finally {
      r.close();
    }
  };
  expect(await grid(b), id).toEqual(await grid(a));
}

/** Every job of a plan: its file in `b` is the same job as in `a`; the number of events compared. */
async function expectSameFiles(plan: Plan, a: string, b: string): Promise<number> {
  let events = 0;
  for (const job of plan.jobs) {
    await expectSameJob(join(a, "jobs", `${job.id}.h5`), join(b, "jobs", `${job.id}.h5`), job.id);
    events += (await readEventsFile(join(a, "jobs", `${job.id}.h5`))).events.time.length;
  }
  return events;
}

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
  const syn = await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: 640, sampleRate: 512, fileDuration: 320, gaps: 1, injections: 6, snr: [20, 40], seed: 7 });
  const repo = join(dir, "models");
  writeDemoRepository(repo, { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, dynamicBatching: false, factorized: { ifos: ["H1", "L1"] } });
  // The demo detector again, with an embedding of D = 8 (each template's peak)
  // and one encoder per detector: the head takes the best template per detector.
  const T = 8;
  const L = KERNEL / 2;
  const bank = chirpTemplates(T, L, 1);
  const enc = new GraphBuilder("encoder-per-template");
  const x = enc.input("whitened", "float32", ["batch", 1, KERNEL]);
  const snr = enc.node("Conv", [x, enc.constant(Float32Array.from(bank.flatMap((t) => [...t])), [T, 1, L], "float32", "bank")], { kernel_shape: [L], strides: [1], pads: [0, 0] });
  enc.output(enc.node("ReduceMax", [enc.node("Mul", [snr, snr])], { axes: [2], keepdims: 0 }), "peaks", "float32", ["batch", T]);
  const head = new GraphBuilder("best-template-head");
  const e = head.input("peaks", "float32", ["batch", 2, T]);
  const network = head.node("ReduceSum", [head.node("ReduceMax", [e], { axes: [2], keepdims: 0 }), head.int64s([1])], { keepdims: 1 });
  head.output(head.node("Sqrt", [network]), "statistic", "float32", ["batch", 1]);
  const encoder = enc.toBytes();
  addFactorized(repo, "bank8", { encoder: { H1: encoder, L1: encoder }, head: head.toBytes(), ifos: ["H1", "L1"], kernel: KERNEL, stride: STRIDE, batch: BATCH, whole: "detector-stream" });
  server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: 1 });
  pool = await ServerPool.create({ endpoints: `127.0.0.1:${server.port}` });
  writeFileSync(join(dir, "vetoes.txt"), "1187008100 1187008103\n");
  yaml = (name, model, background) => `name: ${name}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 64 } }
model: { name: ${model}, factorized: ${model.endsWith("-slides")}, servers: ["127.0.0.1:${server.port}"] }
inference: { kernel_length: 1, inference_sampling_rate: 4, batch_size: ${BATCH}, psd_length: 16, fduration: 1, highpass: 20 }
background: ${background}
injections: { file: ${syn.injectionFile} }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-${name}
`;
}, 180_000);

afterAll(async () => {
  pool?.close();
  await server?.close();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("factorized time slides: each detector encoded once, the head per shift", () => {
  // shifts of 2.25 s: 9 embeddings, so slid detectors start mid-request and mid-job
  // (and a veto: vetoed samples are neither produced nor counted, shift by shift)
  const background = "{ shifts: 5, step: 2.25, max_job_duration: 200, job_livetime: 600, vetoes: vetoes.txt }";

  it("non-circular, background, zero lag and injections: the same files as the whole model", async () => {
    const whole = await runCampaign("whole", "detector-stream", background);
    const fact = await runCampaign("fact", "detector-slides", background);
    expect(fact.jobs.map((j) => j.id)).toEqual(whole.jobs.map((j) => j.id));
    expect(fact.counts.injection).toBeGreaterThan(0);
    expect(fact.livetime.vetoed_s).toBeGreaterThan(0);
    expect(await expectSameFiles(whole, await outputOf("whole"), await outputOf("fact"))).toBeGreaterThan(10);
    // the factorized jobs did run the factorized path
    const results = Object.values(await redis.hgetall(campaignKeys(prefix, "fact").results)).map((v) => JSON.parse(v));
    expect(results.length).toBe(fact.jobs.length);
    expect(results.every((r) => r.timings.encode_s > 0 && r.timings.head_s > 0)).toBe(true);
  });

  it("an embedding of D = 8 floats, one encoder per detector: the same files as the whole model", async () => {
    const whole = await runCampaign("whole8", "detector-stream", "{ shifts: 5, step: 2.25, max_job_duration: 200, job_livetime: 600 }");
    const fact = await runCampaign("fact8", "bank8-slides", "{ shifts: 5, step: 2.25, max_job_duration: 200, job_livetime: 600 }");
    expect(await expectSameFiles(whole, await outputOf("whole8"), await outputOf("fact8"))).toBeGreaterThan(10);
    // each job's embeddings: 8 floats per window per detector crossed the wire
    const results = Object.values(await redis.hgetall(campaignKeys(prefix, "fact8").results)).map((v) => JSON.parse(v));
    expect(results.every((r) => r.timings.embeddings > 0 && r.timings.wire_bytes > r.timings.embeddings * 8 * 4)).toBe(true);
  });

  it("circular: windows across the ring's junction, the same files and livetime as the whole model (a --whole-model worker)", async () => {
    const circular = "{ shifts: 3, step: 37.5, circular: true, max_job_duration: 200, job_livetime: 1000 }";
    // the whole model here is the pair's declared one, run by a worker told --whole-model on the factorized campaign
    const whole = await runCampaign("cwhole", "detector-slides", circular, { wholeModel: true });
    const ran = Object.values(await redis.hgetall(campaignKeys(prefix, "cwhole").results)).map((v) => JSON.parse(v));
    expect(ran.length).toBe(whole.jobs.length);
    expect(ran.some((r) => "encode_s" in r.timings)).toBe(false);
    const fact = await runCampaign("cfact", "detector-slides", circular);
    expect(fact.livetime.background_s).toBe(3 * fact.livetime.foreground_s);
    expect(await expectSameFiles(whole, await outputOf("cwhole"), await outputOf("cfact"))).toBeGreaterThan(5);
  });

  it("half the jobs factorized, half the declared whole model (--whole-model): the same files as an all-whole run; embeddings spilled past a tiny limit", async () => {
    const ctx = await new ContextCache(redis, prefix).get("fact");
    const spec = ctx.spec;
    const endpoint = `127.0.0.1:${server.port}`;
    const fm = await resolveModel(pool, endpoint, spec);
    const wm = await resolveModel(pool, endpoint, spec, undefined, { wholeModel: true });
    expect(isFactorized(fm)).toBe(true);
    expect(isFactorized(wm)).toBe(false);
    if (!isFactorized(fm)) return;
    // several requests per shift group and several groups: a head that takes 100 pairs at most
    const small = new FactorizedModel(pool, fm.slides, fm.encoders, fm.embeddingDim, 100);
    const out = join(dir, "mixed");
    const plan = (await prepareCampaign(join(dir, "fact.yaml"))).plan;
    let spilled = 0;
    for (const [n, job] of plan.jobs.entries()) {
      const factorized = n % 2 === 0;
      const s = await runJob(job.id, job.payload, { ...ctx, output: out }, {
        model: factorized ? small : wm,
        concurrency: 3,
        // background: past 1 KiB of embeddings, the job's scratch file
        embeddingMemoryBytes: factorized && job.payload.kind === "background" ? 1024 : undefined,
      });
      if (s.timings?.spilled) spilled++;
    }
    expect(spilled).toBeGreaterThan(0);
    expect(existsSync(join(out, "scratch")) ? readdirSync(join(out, "scratch")) : []).toEqual([]); // scratch files removed
    expect(await expectSameFiles(plan, await outputOf("whole"), out)).toBeGreaterThan(10);
  });

  it("a factorized campaign whose model declares no pair fails for good, saying what is served", async () => {
    const ctx = await new ContextCache(redis, prefix).get("fact");
    const spec = { ...ctx.spec, model: { ...ctx.spec.model, name: "detector-stream" } };
    const message = /model\.factorized: the campaign is factorized but model detector-stream on 127\.0\.0\.1:\d+ declares no factorized pair \(no factorized_\* parameters in its config; it is a streaming model with inputs/;
    await expect(resolveModel(pool, `127.0.0.1:${server.port}`, spec)).rejects.toThrow(message);
    // submit's check says the same, and finds nothing wrong with the pair (slides and encoder streams)
    const endpoints = [`127.0.0.1:${server.port}`];
    expect((await checkModelOnServers(spec, endpoints)).problems).toEqual([expect.stringMatching(message)]);
    expect(await checkModelOnServers(ctx.spec, endpoints)).toMatchObject({ problems: [], checked: endpoints });
  });
});
