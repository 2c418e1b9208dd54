// End-to-end background throughput: seconds of two-detector strain analysed
// per wall second by `timeslide worker` processes (1, then 2) streaming a
// synthetic campaign through one `timeslide serve` process (real Redis, real
// HDF5, real ONNX Runtime), compared in the same run with
//   (a) raw onnxruntime-node: InferenceSession.run on the same detector model,
//       same batch, same thread count, in this process, for the same number of
//       inferences (target: e2e / raw >= 0.8 on a 2-core machine);
//   (b) the naive loop: one full window per request, one request at a time,
//       through the kserve client to the bare detector, no streaming.
// plus, to tell the server's share of the gap from the worker's, the server
// streaming ceiling: synthetic updates through the pool, no worker work.
// Wall time of a campaign: first job start to last job end (from the job
// summaries), with workers already warm (each set ran a warm-up campaign),
// so process and thread start-up are left out; the cores each process used
// meanwhile are printed, from /proc, to show where the time goes. Needs `npm run build` and Redis
// (REDIS_URL or redis://127.0.0.1:6379). Jobs are shaped as in a campaign:
// each reads one whole segment and streams four shifts of it (the planner's
// defaults give jobs of days of livetime; these are the biggest the data
// allows while leaving the two workers several jobs each).
// This host's speed drifts by 10-20% within a minute (the raw rate moves that
// much between runs), so each worker count runs BENCH_REPEAT times (default
// 3), alternating, and the median ratio is the figure.
// Env: BENCH_DURATION (s of data), BENCH_SHIFTS, BENCH_REPEAT,
// BENCH_BATCH, BENCH_TEMPLATES, BENCH_WORKER_ARGS (e.g. "--concurrency 2"),
// BENCH_NODE_ARGS (node flags for the workers, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof").
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { benchProcesses } from "./processes.mjs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import * as ort from "onnxruntime-node";
import { deleteKeys, campaignKeys, campaignStatus, connectRedis, freePort, prepareCampaign, submitCampaign } from "@timeslide/campaign";
import { InferenceClient, ServerPool } from "@timeslide/kserve";
import { writeDemoRepository } from "@timeslide/model-repo";
import { synthesize } from "@timeslide/strain";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const DURATION = Number(process.env.BENCH_DURATION ?? 1280); // s of data per detector
const FILE_RATE = 1024; // Hz, as written
const FS = 512; // Hz, analysis rate
const KERNEL_S = 1;
const ISR = 8; // inference sampling rate, Hz
const BATCH = Number(process.env.BENCH_BATCH ?? 128); // DESIGN.md's example batch_size
const THREADS = 1; // ONNX Runtime intra-op threads: server and raw alike
const TEMPLATES = Number(process.env.BENCH_TEMPLATES ?? 8);
const SHIFTS = Number(process.env.BENCH_SHIFTS ?? 16);
const KERNEL = KERNEL_S * FS;
const WORKER_ARGS = (process.env.BENCH_WORKER_ARGS ?? "--sequences 4 --concurrency 1").split(/\s+/).filter(Boolean);
const STRIDE = FS / ISR;
const REPEAT = Math.max(1, Number(process.env.BENCH_REPEAT ?? 3));

const prefix = `tsbench-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-throughput-"));
const env = { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };

const { child, killAll } = benchProcesses(env, (args) => (args[0] === "worker" && process.env.BENCH_NODE_ARGS ? process.env.BENCH_NODE_ARGS.split(" ") : []));

/** Raw onnxruntime-node windows/s on the detector: same batch and threads, in this process. */
async function rawRate(model, ms) {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: THREADS, interOpNumThreads: 1 });
  const x = new Float32Array(BATCH * 2 * KERNEL).map(() => Math.random() * 2 - 1);
  const feeds = { [session.inputNames[0]]: new ort.Tensor("float32", x, [BATCH, 2, KERNEL]) };
  for (let i = 0; i < 10; i++) await session.run(feeds);
  let runs = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < ms) {
    await session.run(feeds);
    runs++;
  }
  const wps = (runs * BATCH) / ((performance.now() - t0) / 1000);
  await session.release();
  return wps;
}

/** CPU seconds of each thread of a process (Linux /proc; empty elsewhere). */
function threadCpu(pid) {
  const out = new Map();
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const st = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      out.set(tid, (Number(f[11]) + Number(f[12])) / 100); // utime + stime, clock ticks (USER_HZ 100)
    }
  } catch {
    // not Linux, or the process is gone
  }
  return out;
}
const cpuDelta = (a, b) => [...b].map(([tid, t]) => t - (a.get(tid) ?? 0));
const sum = (xs) => xs.reduce((x, y) => x + y, 0);

const redis = await connectRedis(REDIS_URL);
try {
  // Data, model, server.
  const syn = await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: DURATION, sampleRate: FILE_RATE, fileDuration: DURATION / 2, gaps: 0, injections: 0, seed: 11 });
  const repo = join(dir, "models");
  writeDemoRepository(repo, { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, nTemplates: TEMPLATES, dynamicBatching: false });
  const port = await freePort();
  const server = child(["serve", "--repo", repo, "--port", String(port), "--host", "127.0.0.1", "--threads", String(THREADS)]);
  const endpoint = `127.0.0.1:${port}`;
  const client = new InferenceClient(endpoint);
  await client.waitForReady({ model: "detector-stream", timeoutMs: 60_000 });

  console.log(
    `config: detector = chirp bank of ${TEMPLATES} templates x ${KERNEL / 2} samples, 2 ifos; kernel ${KERNEL} samples (${KERNEL_S} s @ ${FS} Hz), ` +
      `stride ${STRIDE} (${ISR} Hz), batch ${BATCH} windows/request, ONNX Runtime threads ${THREADS}; ` +
      `data ${DURATION} s x 2 ifos @ ${FILE_RATE} Hz, ${SHIFTS} shifts + zero lag; 1 server process, workers: ${WORKER_ARGS.join(" ")}`,
  );

  // End-to-end: 1 and 2 worker processes. Each set of workers is started
  // once and warmed up on a campaign of its own (processor threads, module
  // loading, JIT), then runs its measured campaigns: the steady state of a
  // campaign of thousands of jobs, not the first seconds of one.
  const campaignFile = (name) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      `name: ${name}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 64 } }
model: { name: detector-stream, servers: ["${endpoint}"] }
inference: { kernel_length: ${KERNEL_S}, inference_sampling_rate: ${ISR}, batch_size: ${BATCH}, psd_length: 32, fduration: 1, highpass: 20 }
background: { shifts: ${SHIFTS}, step: 2, max_job_duration: ${DURATION}, job_livetime: ${4 * (DURATION - 32)} }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-${name}
`,
    );
    return file;
  };
  /** Submits a campaign and waits for it; CPU seconds per thread from its first active job to its end. */
  const runCampaign = async (name, procs) => {
    const { campaign, plan } = await prepareCampaign(campaignFile(name));
    await submitCampaign({ redis, prefix, campaign, plan });
    for (let s = await campaignStatus(redis, prefix, name); !s.jobs.active && !s.done; s = await campaignStatus(redis, prefix, name)) await new Promise((r) => setTimeout(r, 20));
    const cpu0 = [server, ...procs].map((p) => threadCpu(p.pid));
    const t0 = performance.now();
    for (;;) {
      const s = await campaignStatus(redis, prefix, name);
      if (s.done) {
        if (s.jobs.failed) throw new Error(`${name}: ${s.jobs.failed} jobs failed`);
        break;
      }
      if (procs.some((p) => p.exitCode !== null)) throw new Error(`${name}: a worker exited: ${procs.map((p) => p.tail()).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const cpuWall = (performance.now() - t0) / 1000;
    const [serverCpu, ...workerCpu] = [server, ...procs].map((p, i) => cpuDelta(cpu0[i], threadCpu(p.pid)));
    return { cpuWall, serverCpu, workerCpu };
  };
  const workerSets = new Map();
  for (const workers of [1, 2]) {
    const names = [`bench-w${workers}-warm`, ...Array.from({ length: REPEAT }, (_, rep) => `bench-w${workers}-r${rep}`)];
    const procs = Array.from({ length: workers }, () => child(["worker", ...names, "--lock", "30", ...WORKER_ARGS]));
    await runCampaign(names[0], procs);
    workerSets.set(workers, procs);
  }

  // (a) is measured around each end-to-end run (the machine is shared and noisy):
  // each run is compared with the mean of the raw rates just before and after it.
  const detectorModel = join(repo, "detector", "1", "model.onnx");
  const raw = [await rawRate(detectorModel, 3000)];

  const e2e = [];
  const runs = Array.from({ length: REPEAT }, (_, rep) => [1, 2].map((workers) => ({ workers, rep }))).flat();
  for (const { workers, rep } of runs) {
    const name = `bench-w${workers}-r${rep}`;
    const procs = workerSets.get(workers);
    const { cpuWall, serverCpu, workerCpu } = await runCampaign(name, procs);
    const results = Object.values(await redis.hgetall(campaignKeys(prefix, name).results)).map((v) => JSON.parse(v));
    const start = Math.min(...results.map((r) => r.finished_at - r.timings.total_s * 1000));
    const end = Math.max(...results.map((r) => r.finished_at));
    const wall = (end - start) / 1000;
    const livetime = results.reduce((a, r) => a + r.livetime, 0);
    const inferences = results.reduce((a, r) => a + r.timings.inferences, 0);
    e2e.push({ workers, rep, jobs: results.length, wall, livetime, inferences, rate: livetime / wall });
    raw.push(await rawRate(detectorModel, 3000));
    const timing = (k) => results.reduce((a, r) => a + (r.timings[k] ?? 0), 0);
    // Where the cores went: the busiest server thread is the detector's ONNX Runtime session.
    const cores = (xs) => (sum(xs) / cpuWall).toFixed(2);
    const busiest = Math.max(0, ...serverCpu);
    const share = serverCpu.length
      ? `; cores used: server detector thread ${(busiest / cpuWall).toFixed(2)}, rest of server ${((sum(serverCpu) - busiest) / cpuWall).toFixed(2)}, worker${workers > 1 ? "s" : ""} ${cores(workerCpu.flat())}`
      : "";
    console.log(`  (${name}: job time read+whiten ${timing("read_whiten_s").toFixed(2)} s, infer ${timing("infer_s").toFixed(2)} s, total ${timing("total_s").toFixed(2)} s${share})`);
  }

  for (const procs of workerSets.values()) for (const p of procs) p.kill("SIGTERM");
  await Promise.all([...workerSets.values()].flat().map((p) => p.exited));

  // What the server path itself delivers: synthetic updates through the kserve
  // pool, as many sequences and requests in flight as one worker keeps, no worker work.
  const pool = await ServerPool.create({ endpoints: endpoint });
  const update = new Float32Array(2 * STRIDE * BATCH).map(() => Math.random() * 2 - 1);
  let ceilN = 0;
  const t2 = performance.now();
  await Promise.all(
    Array.from({ length: 4 }, async () => {
      const seq = pool.openSequence({ model: "detector-stream", geometry: { channels: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH }, deadlineMs: 30_000 });
      const pending = [];
      for (let r = 0; performance.now() - t2 < 4000; r++) {
        pending.push(seq.send(update).then(() => void (ceilN += BATCH)));
        if (pending.length >= 4) await pending.shift();
      }
      await Promise.all(pending);
    }),
  );
  const ceilWps = ceilN / ((performance.now() - t2) / 1000);
  pool.close();

  // (b) Naive: one full window per request, one at a time, bare detector, no streaming.
  const w = new Float32Array(2 * KERNEL).map(() => Math.random() * 2 - 1);
  const req = { model: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [1, 2, KERNEL], data: w }] };
  for (let i = 0; i < 50; i++) await client.infer(req, { deadlineMs: 10_000 });
  let naiveN = 0;
  const t1 = performance.now();
  while (performance.now() - t1 < 5000) {
    await client.infer(req, { deadlineMs: 10_000 });
    naiveN++;
  }
  const naiveWps = naiveN / ((performance.now() - t1) / 1000);
  const naiveRate = naiveWps / ISR; // one window per 1/ISR s of strain
  client.close();

  const f = (v, d = 1) => v.toFixed(d);
  console.log(`load average (1 min) at the end: ${f(loadavg()[0], 2)} on this machine's cores: other processes share them`);
  const rawWps = raw.reduce((a, b) => a + b, 0) / raw.length;
  console.log(`raw onnxruntime-node (1 process, InferenceSession.run, batch ${BATCH}, ${THREADS} thread): ${f(rawWps, 0)} windows/s = ${f(rawWps / ISR)} s of strain/s (runs: ${raw.map((r) => f(r, 0)).join(", ")})`);
  console.log(`server streaming ceiling (kserve pool -> server, 4 sequences x 4 in flight, no worker work): ${f(ceilWps, 0)} windows/s = ${f(ceilWps / ISR)} s of strain/s = ${f(ceilWps / rawWps, 2)} of raw`);
  console.log(`naive loop (kserve client, 1 window/request, 1 in flight, no streaming): ${f(naiveWps, 0)} windows/s = ${f(naiveRate)} s of strain/s`);
  for (const [i, r] of e2e.entries()) {
    // Raw time for the same inferences, over the e2e wall time.
    r.ratio = r.inferences / ((raw[i] + raw[i + 1]) / 2) / r.wall;
    console.log(
      `end-to-end ${r.workers} worker${r.workers > 1 ? "s" : " "} (run ${r.rep + 1}): ${f(r.rate)} s of 2-detector strain/s (${f(r.livetime, 0)} s livetime, ${r.jobs} jobs, ${r.inferences} inferences in ${f(r.wall, 2)} s wall) ` +
        `| vs raw onnxruntime for the same inferences: ${f(r.ratio, 2)} | vs server ceiling: ${f(r.inferences / r.wall / ceilWps, 2)} | vs naive loop: ${f(r.rate / naiveRate)}x`,
    );
  }
  const median = (xs) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  for (const workers of [1, 2]) {
    const rs = e2e.filter((r) => r.workers === workers);
    console.log(
      `end-to-end ${workers} worker${workers > 1 ? "s" : " "} median of ${rs.length}: vs raw onnxruntime ${f(median(rs.map((r) => r.ratio)), 2)} (target >= 0.8; runs ${rs.map((r) => f(r.ratio, 2)).join(", ")}) ` +
        `| vs naive loop ${f(median(rs.map((r) => r.rate)) / naiveRate)}x`,
    );
  }
  server.kill("SIGTERM");
  await server.exited;
} finally {
  killAll();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
