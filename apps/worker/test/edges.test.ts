// Segment ends on data as hard as real data. Real strain's amplitude below
// ~10 Hz is orders of magnitude above the in-band noise, so a whitening or
// resampling filter that runs off the end of a segment (a zero pad, NaN past
// a DQ boundary) makes a loud fake event at every segment end. On realistic
// `synth` data (low-frequency wall, lines, drift, glitches) whose segments
// end where the strain turns NaN (DQ gaps), the loudest background events
// must not gather at the ends of the analysed spans.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import * as ort from "onnxruntime-node";
import type { Redis } from "ioredis";
import { connectRedis, deleteKeys, livetimeOptionsOf, prepareCampaign, shiftIndices, shiftOutputSpan, submitCampaign, type Plan } from "@timeslide/campaign";
import { synthesize } from "@timeslide/strain";
import { writeDemoRepository } from "@timeslide/model-repo";
import { readEventsFile } from "@timeslide/stats";
import { ContextCache, runJob } from "@timeslide/worker";
import { InProcessModel } from "./reference-model.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsedge-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-edges-"));
const FS = 256, KERNEL = 256, STRIDE = 64, BATCH = 16;
let redis: Redis;

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
}, 60_000);
afterAll(async () => {
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
});

describe("segment ends on realistic data", () => {
  it("the 10 loudest background events are not at the ends of the analysed spans (≤ 2 within 2 s of one)", async () => {
    // 40 min at 512 Hz (analysed at 256 Hz: the resampler's support counts too), DQ gaps of NaN strain
    const syn = await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: 2400, sampleRate: 512, fileDuration: 600, gaps: 3, injections: 0, seed: 11 });
    expect(syn.mode).toBe("realistic");
    expect(Object.values(syn.gaps).flat().length).toBeGreaterThan(0);
    writeDemoRepository(join(dir, "models"), { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, dynamicBatching: false });
    writeFileSync(
      join(dir, "edges.yaml"),
      `name: edges
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 64 } }
model: { name: detector-stream, servers: ["127.0.0.1:1"] }
inference: { kernel_length: 1, inference_sampling_rate: 4, batch_size: ${BATCH}, psd_length: 16, fduration: 1, highpass: 20 }
background: { shifts: 12, step: 3, max_job_duration: 400 }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out
`,
    );
    const { campaign, plan } = await prepareCampaign(join(dir, "edges.yaml"));
    // segments end at DQ gaps (NaN strain right after), not only at the end of the data
    const nanAfter = plan.segments.filter((s) => Object.values(syn.gaps).some((g) => g.some(([a]) => Math.abs(a - s.end) < 1)));
    expect(nanAfter.length).toBeGreaterThan(0);
    await submitCampaign({ redis, prefix, campaign, plan });

    const ctx = await new ContextCache(redis, prefix).get("edges");
    const session = await ort.InferenceSession.create(join(dir, "models", "detector", "1", "model.onnx"), { intraOpNumThreads: 1 });
    const model = new InProcessModel(session, { kernel: KERNEL, stride: STRIDE, batch: BATCH });
    const events: Array<{ stat: number; time: number; shift: number[]; end: number }> = [];
    const o = livetimeOptionsOf(campaign.spec, plan.edge);
    for (const job of plan.jobs.filter((j) => j.payload.kind === "background")) {
      await runJob(job.id, job.payload, ctx, { model });
      const { events: ev } = await readEventsFile(join(ctx.output, "jobs", `${job.id}.h5`));
      const ends = new Map(shiftIndices(job.payload).map((k) => [JSON.stringify(plan.shiftTable[k]), shiftOutputSpan(job.payload.segment, job.payload.segment, plan.shiftTable[k], o)[1]]));
      for (let e = 0; e < ev.time.length; e++) {
        const shift = [ev.shift[2 * e], ev.shift[2 * e + 1]];
        // an event's sample is at time + kernel/2 + integration window/2 (time + 1 s); the shift's output ends at `end`
        events.push({ stat: ev.detection_statistic[e], time: ev.time[e], shift, end: ends.get(JSON.stringify(shift))! });
      }
    }
    expect(events.length).toBeGreaterThan(100);
    const loudest = events.sort((a, b) => b.stat - a.stat).slice(0, 10);
    // the event's window [time, time + kernel + integration] against the span's last sample
    const atEnd = loudest.filter((e) => e.end - (e.time + 1) < 2);
    expect(atEnd.length, JSON.stringify(loudest)).toBeLessThanOrEqual(2);
  }, 600_000);
});
