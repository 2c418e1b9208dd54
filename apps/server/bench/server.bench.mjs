// Embedded server benchmark (built packages: run `npx tsc -p` on kserve,
// model-repo and apps/server first).
//  (a) throughput of InferenceClient + embedded server on the demo detector
//      against onnxruntime-node InferenceSession.run on the same model file,
//      same batch and intra-op thread count, in this one process (ratio);
//  (b) bytes sent per inference: streaming updates vs full windows;
//  (c) requests/s and p50/p99 latency through the streaming ensemble at 1, 8
//      and 64 concurrent sequences (64 snapshotter instances: 64 sequence
//      slots, as Triton counts them, so every level runs at once; each
//      sequence ends with sequence_end, freeing its slot).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceClient, loadInferenceProtos } from "@timeslide/kserve";
import { writeDemoRepository, mulberry32 } from "@timeslide/model-repo";
import { startServer } from "@timeslide/server";
import * as ort from "onnxruntime-node";
import { pino } from "pino";

// intraOpNumThreads for (a): 2 uses both cores for ONNX Runtime (transfer and
// compute then take turns); 1 leaves a core to gRPC, so the next request's
// transfer overlaps the current run (2 in flight).
const THREAD_COUNTS = (process.env.BENCH_THREADS ?? "1,2").split(",").map(Number);
const STREAM_THREADS = Number(process.env.BENCH_STREAM_THREADS ?? 1);
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const env = (k, d) => Number(process.env[k] ?? d);
// (a): 1.5 s windows at 2048 Hz (the campaign example) through a bank of 16
// chirp templates of 1 s: a realistic matched-filter cost per byte sent.
const GEOM = {
  nIfo: 2,
  kernel: env("BENCH_KERNEL", 3072),
  stride: 256,
  batch: 16,
  nTemplates: env("BENCH_TEMPLATES", 16),
  templateLength: env("BENCH_TEMPLATE_LENGTH", 2048),
};
// (b), (c): a light detector so the figures measure the serving path, not
// the convolution: 0.5 s windows, 1/32 s stride, 16 windows per update.
const STREAM = { nIfo: 2, kernel: 1024, stride: 64, batch: 16, nTemplates: 4, templateLength: 256 };
const SECONDS = env("BENCH_SECONDS", 6);

const dir = mkdtempSync(join(tmpdir(), "server-bench-"));
const demo = writeDemoRepository(join(dir, "a"), GEOM);
const stream = writeDemoRepository(join(dir, "c"), { ...STREAM, streams: 64 });
const rand = mulberry32(3);
const noise = (n) => Float32Array.from({ length: n }, () => 2 * rand() - 1);

const fmt = (x, d = 1) => x.toFixed(d);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** Completed calls per second with `k` calls kept in flight (a new one starts as each ends). */
async function concurrentLoop(seconds, k, fn) {
  await Promise.all(Array.from({ length: k }, () => fn()));
  const t0 = performance.now();
  let n = 0;
  await Promise.all(
    Array.from({ length: k }, async () => {
      while (performance.now() - t0 < seconds * 1000) {
        await fn();
        n++;
      }
    }),
  );
  return n / ((performance.now() - t0) / 1000);
}

async function timeLoop(seconds, fn) {
  // Warm up, then count completed calls in a fixed wall time.
  await fn();
  const t0 = performance.now();
  let n = 0;
  while (performance.now() - t0 < seconds * 1000) {
    await fn();
    n++;
  }
  return n / ((performance.now() - t0) / 1000);
}

// ---- (a) throughput vs raw ONNX Runtime ---------------------------------
// This machine is shared and noisy: raw and server rounds alternate, and the
// ratio reported is the median of the per-round ratios.
const ROUNDS = env("BENCH_ROUNDS", 5);
const median = (xs) => pct(xs, 50);

async function throughput(repo, geom, name, THREADS) {
  const x = noise(BATCH * geom.nIfo * geom.kernel);
  const session = await ort.InferenceSession.create(readFileSync(join(repo, "detector/1/model.onnx")), {
    intraOpNumThreads: THREADS,
    interOpNumThreads: 1,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
  });
  const feeds = { whitened: new ort.Tensor("float32", x, [BATCH, geom.nIfo, geom.kernel]) };
  const server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: THREADS, logger: pino({ level: "warn" }) });
  const client = new InferenceClient(`127.0.0.1:${server.port}`);
  await client.waitForReady({ timeoutMs: 10_000 });
  const req = { model: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [BATCH, geom.nIfo, geom.kernel], data: x }] };
  const check = await client.infer(req);
  const want = (await session.run(feeds)).detection_statistic.data;
  if (check.outputs[0].data.some((v, i) => Math.abs(v - want[i]) > 1e-4 * Math.abs(want[i]))) throw new Error("server and raw outputs differ");

  const raws = [];
  const srvs = [];
  const pipes = [];
  const slot = SECONDS / ROUNDS + 0.5;
  for (let r = 0; r < ROUNDS; r++) {
    raws.push(await timeLoop(slot, () => session.run(feeds)));
    srvs.push(await timeLoop(slot, () => client.infer(req)));
    // Two requests kept in flight: the next request's transfer overlaps the current run.
    pipes.push(await concurrentLoop(slot, 2, () => client.infer(req)));
  }
  await session.release();
  client.close();
  await server.close();
  const rawRate = median(raws);
  const kb = (BATCH * geom.nIfo * geom.kernel * 4) / 1024;
  console.log(
    `${name}: demo detector (n_ifo ${geom.nIfo}, kernel ${geom.kernel}, ${geom.nTemplates} templates × ${geom.templateLength}), batch ${BATCH} (${fmt(kb, 0)} KiB/request), intraOpNumThreads ${THREADS}, ${ROUNDS} alternating rounds`,
  );
  console.log(`  raw onnxruntime-node run:    ${fmt(rawRate * BATCH, 0)} windows/s (${fmt(1000 / rawRate, 2)} ms/run, median)`);
  console.log(
    `  client+server, 1 in flight:  ${fmt(median(srvs) * BATCH, 0)} windows/s  ratio ${fmt(median(srvs.map((v, i) => v / raws[i])), 3)} (median of per-round ratios ${srvs.map((v, i) => fmt(v / raws[i], 2)).join(" ")})`,
  );
  console.log(`  client+server, 2 in flight:  ${fmt(median(pipes) * BATCH, 0)} windows/s  ratio ${fmt(median(pipes.map((v, i) => v / raws[i])), 3)}`);
}

for (const t of THREAD_COUNTS) await throughput(join(dir, "a"), GEOM, "(a) throughput, target ratio ≥ 0.85", t);
await throughput(join(dir, "c"), STREAM, "(a') light model: serving overhead dominates", Math.max(...THREAD_COUNTS));

// ---- (b) bytes per inference --------------------------------------------
// Serialized ModelInferRequest sizes (the gRPC payload) for the same `batch`
// windows: every full window vs one streaming update with sequence parameters.
const serialize = loadInferenceProtos().GRPCInferenceService.service.ModelInfer.requestSerialize;
const fullReq = serialize({
  model_name: stream.detector,
  inputs: [{ name: "whitened", datatype: "FP32", shape: [STREAM.batch, STREAM.nIfo, STREAM.kernel] }],
  raw_input_contents: [Buffer.alloc(STREAM.batch * STREAM.nIfo * STREAM.kernel * 4)],
}).length;
const streamReq = serialize({
  model_name: stream.ensemble,
  id: "123456",
  parameters: { sequence_id: { int64_param: "123456" }, sequence_start: { bool_param: false }, sequence_end: { bool_param: false } },
  inputs: [{ name: "update", datatype: "FP32", shape: [1, STREAM.nIfo, stream.updateSize] }],
  raw_input_contents: [Buffer.alloc(STREAM.nIfo * stream.updateSize * 4)],
}).length;
console.log(
  `(b) bytes sent per window: full windows ${fmt(fullReq / STREAM.batch, 0)}, streaming ${fmt(streamReq / STREAM.batch, 0)}  ratio ${fmt(fullReq / streamReq, 2)} (kernel/stride = ${STREAM.kernel / STREAM.stride})`,
);

// ---- (c) concurrent sequences through the streaming ensemble -------------
const server2 = await startServer({ repository: join(dir, "c"), host: "127.0.0.1", port: 0, threads: STREAM_THREADS, logger: pino({ level: "warn" }) });
const client2 = new InferenceClient(`127.0.0.1:${server2.port}`);
async function sequences(n, seconds) {
  const streams = Array.from({ length: n }, () => client2.openStream());
  const latencies = [];
  const update = noise(STREAM.nIfo * stream.updateSize);
  let stop = false;
  const t0 = performance.now();
  await Promise.all(
    streams.map(async (s, i) => {
      let k = 0;
      while (!stop) {
        const t = performance.now();
        await s.infer({
          model: stream.ensemble,
          inputs: [{ name: "update", datatype: "FP32", shape: [1, STREAM.nIfo, stream.updateSize], data: update }],
          sequence: { id: 1000 * n + i + 1, start: k === 0 },
        });
        latencies.push(performance.now() - t);
        k++;
        if (performance.now() - t0 > seconds * 1000) stop = true;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  // sequence_end frees the slots for the next level (not timed)
  await Promise.all(
    streams.map((s, i) =>
      s.infer({
        model: stream.ensemble,
        inputs: [{ name: "update", datatype: "FP32", shape: [1, STREAM.nIfo, stream.updateSize], data: update }],
        sequence: { id: 1000 * n + i + 1, start: false, end: true },
      }),
    ),
  );
  await Promise.all(streams.map((s) => s.end()));
  return { rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

console.log(`(c) streaming ensemble ${stream.ensemble} on the light detector, intraOpNumThreads ${STREAM_THREADS} per instance: update [1, ${STREAM.nIfo}, ${stream.updateSize}] → ${STREAM.batch} windows per request`);
for (const n of [1, 8, 64]) {
  const r = await sequences(n, SECONDS);
  console.log(
    `${String(n).padStart(2)} sequences: ${fmt(r.rps, 1)} requests/s (${fmt(r.rps * STREAM.batch, 0)} windows/s)  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms`,
  );
}

client2.close();
await server2.close();
rmSync(dir, { recursive: true, force: true });
