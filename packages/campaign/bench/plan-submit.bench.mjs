// Benchmark: plan + submit 100-year and 1000-year (circular) background
// campaigns over the same 30 days of two-detector data with realistic gaps.
// Targets: ≤ 10 s for 100 y, ≤ 60 s for 1000 y on a 2-core machine; time and
// Redis memory linear in the job count, ≤ 1 KiB of Redis per waiting job.
//
// The data are real GWOSC-layout files (4096 s each, 633 per detector, as the
// open-data archive cuts them) but with strain at 4 Hz: planning reads only
// metadata and DQ masks, so a full-rate 30-day data set (~20 GB) would measure
// the disk, not the planner. Files are cached in $TMPDIR between runs.
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import {
  campaignKeys,
  cancelCampaign,
  campaignStatus,
  connectRedis,
  loadCampaign,
  planCampaign,
  submitCampaign,
  takeInventory,
} from "@timeslide/campaign";
import { writeStrainFile } from "@timeslide/strain";
import { JULIAN_YEAR } from "@timeslide/segments";

const DAYS = 30;
const FILE = 4096;
const RATE = 4;
const T0 = 1_238_166_018; // start of O3b, a round-ish GPS
const dir = join(tmpdir(), "timeslide-bench-30d-v1");

// Seeded PRNG (mulberry32): the same gaps every run.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const expo = (r, mean) => -mean * Math.log(1 - r());

/** A detector's 1 Hz DQ mask: lock stretches (mean 4 h) and drop-outs (mean 40 min), plus short CAT1 vetoes. */
function dqMask(seed, n) {
  const r = rng(seed);
  const mask = new Int32Array(n);
  let t = 0;
  while (t < n) {
    const lock = Math.round(expo(r, 4 * 3600));
    mask.fill(0b11, t, Math.min(n, t + lock));
    t += lock + Math.round(expo(r, 40 * 60));
  }
  for (let v = 0; v < n / 7200; v++) {
    const at = Math.floor(r() * n);
    for (let i = at; i < Math.min(n, at + 2 + Math.floor(r() * 8)); i++) mask[i] &= ~0b10; // CBC_CAT1 off
  }
  return mask;
}

async function writeData() {
  if (existsSync(join(dir, "done"))) return false;
  mkdirSync(dir, { recursive: true });
  const n = DAYS * 86400;
  for (const [k, ifo] of ["H1", "L1"].entries()) {
    const mask = dqMask(1234 + k, Math.ceil(n / FILE) * FILE);
    for (let s = 0; s < n; s += FILE) {
      await writeStrainFile(join(dir, `${ifo[0]}-${ifo}_BENCH_4HZ-${T0 + s}-${FILE}.hdf5`), {
        ifo, start: T0 + s, duration: FILE, sampleRate: RATE, dqMask: mask.subarray(s, s + FILE), samples: (_, m) => new Float64Array(m),
      });
    }
  }
  writeFileSync(join(dir, "done"), "");
  return true;
}

const wrote = await writeData();
const redis = await connectRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const s = (ms) => (ms / 1000).toFixed(2);
const rows = [];
try {
  for (const [label, background] of [
    ["100 y circular", "{ livetime: 100y, step: 2.0, max_job_duration: 4096, circular: true }"],
    ["1000 y circular", "{ livetime: 1000y, step: 2.0, max_job_duration: 4096, circular: true }"],
  ]) rows.push(await run(label, background));
  const [a, b] = rows;
  console.log(`1000 y / 100 y: jobs ×${(b.jobs / a.jobs).toFixed(2)}, time ×${(b.total / a.total).toFixed(2)}, Redis ×${(b.bytes / a.bytes).toFixed(2)} ` +
    `(linear in jobs: time per job ×${(b.total / b.jobs / (a.total / a.jobs)).toFixed(2)}, bytes per job ×${(b.bytes / b.jobs / (a.bytes / a.jobs)).toFixed(2)})`);
} finally {
  redis.disconnect();
}

async function run(label, background) {
  const name = `bench-${randomBytes(3).toString("hex")}`;
  const campaignPath = join(dir, `${name}.yaml`);
  writeFileSync(
    campaignPath,
    `name: ${name}
ifos: [H1, L1]
data:
  files: ["H-H1_*.hdf5", "L-L1_*.hdf5"]
  sample_rate: 4
  segments: { flags: [DATA, CBC_CAT1], min_duration: 128 }
inference: { kernel_length: 1.5, inference_sampling_rate: 4, psd_length: 64, fduration: 1, highpass: 1 }
background: ${background}
`,
  );
  const prefix = `tsbench-${randomBytes(3).toString("hex")}`;
  try {
    global.gc?.();
    const t0 = performance.now();
    const campaign = await loadCampaign(campaignPath);
    const inventory = await takeInventory(campaign);
    const t1 = performance.now();
    const plan = planCampaign(campaign, { inventory });
    const t2 = performance.now();
    const mem0 = await usedMemory(redis);
    await submitCampaign({ redis, prefix, campaign, plan });
    const t3 = performance.now();
    const mem1 = await usedMemory(redis);
    const heap = process.memoryUsage().heapUsed;

    // Baseline: the same payloads pushed as plain JSON onto one Redis list (the least a queue can store).
    const listKey = `${prefix}:baseline`;
    const b0 = performance.now();
    for (let i = 0; i < plan.jobs.length; i += 2000) {
      const pipe = redis.pipeline();
      for (const j of plan.jobs.slice(i, i + 2000)) pipe.rpush(listKey, JSON.stringify({ id: j.id, ...j.payload }));
      await pipe.exec();
    }
    const b1 = performance.now();
    const mem2 = await usedMemory(redis);
    await redis.del(listKey);

    // status at this size: one call, as `timeslide status --json` makes it
    const st0 = performance.now();
    await campaignStatus(redis, prefix, name);
    const st1 = performance.now();
    // cancel (waiting jobs removed, queue paused), then purge (everything in Redis)
    const c0 = performance.now();
    await cancelCampaign(redis, prefix, name, false);
    const c1 = performance.now();
    await cancelCampaign(redis, prefix, name, true);
    const c2 = performance.now();

    const files = Object.values(inventory.files).reduce((a, f) => a + f.length, 0);
    const jobs = plan.jobs.length;
    const perJob = (mem1 - mem0) / jobs;
    const perJobBase = (mem2 - mem1) / jobs;
    console.log(`\n--- ${label}`);
    console.log(`data: ${DAYS} d × 2 detectors, ${files} files${wrote ? " (written this run)" : " (cached)"}; ${plan.segments.length} analysable segments, ` +
      `${(plan.livetime.foreground_s / 86400).toFixed(2)} d coincident livetime`);
    console.log(`plan: ${plan.shiftTable.length - 1} shifts, ${jobs} jobs (bg ${plan.counts.background}, fg ${plan.counts.foreground}), ` +
      `background ${(plan.livetime.background_s / JULIAN_YEAR).toFixed(3)} y; heap after submit ${(heap / 2 ** 20).toFixed(0)} MiB`);
    console.log(`time: read metadata ${s(t1 - t0)} s + plan ${s(t2 - t1)} s + submit ${s(t3 - t2)} s = ${s(t3 - t0)} s; status ${s(st1 - st0)} s, cancel ${s(c1 - c0)} s, purge ${s(c2 - c1)} s`);
    console.log(`redis: ${perJob.toFixed(0)} B per waiting job (target ≤ 1024 B), ${((mem1 - mem0) / 2 ** 20).toFixed(1)} MiB in all; plain-list baseline ${perJobBase.toFixed(0)} B/job, ratio ${(perJob / perJobBase).toFixed(2)}`);
    console.log(`submit: ${(jobs / ((t3 - t2) / 1000)).toFixed(0)} jobs/s; plain-list baseline ${(jobs / ((b1 - b0) / 1000)).toFixed(0)} jobs/s, ratio ${((b1 - b0) / (t3 - t2)).toFixed(2)}`);
    return { jobs, total: t3 - t0, bytes: mem1 - mem0 };
  } finally {
    await cancelCampaign(redis, prefix, name, true).catch(() => {});
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
  }
}

async function usedMemory(r) {
  const info = await r.info("memory");
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}
