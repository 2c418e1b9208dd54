// Embedded server benchmark (built packages: run `npx tsc -p` on kserve,
// model-repo and apps/server first).
//  (a) throughput of InferenceClient + embedded server on the demo detector
//      against onnxruntime-node InferenceSession.run on the same model file,
//      same batch and intra-op thread count, in this one process (ratio);
//  (b) bytes sent per inference: streaming updates vs full windows;
//  (c) requests/s and p50/p99 latency through the streaming ensemble at 1, 8
//      and 64 concurrent sequences.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceClient, loadInferenceProtos } from "@timeslide/kserve";
import { writeDemoRepository, mulberry32 } from "@timeslide/model-repo";
import { startServer } from "@timeslide/server";
import * as ort from "onnxruntime-node";
import { pino } from "pino";

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const BATCH = Number(process.env.BENCH_BATCH ?? 32);
const env = (k, d) => Number(process.env[k] ?? d);
// Default: 1.5 s windows at 2048 Hz (the campaign example) and a bank of
// 8 chirp templates of 1 s; a 1/8 s stride, 16 windows per streaming update.
const GEOM = {
  nIfo: 2,
  kernel: env("BENCH_KERNEL", 3072),
  stride: env("BENCH_STRIDE", 256),
  batch: env("BENCH_STREAM_BATCH", 16),
  nTemplates: env("BENCH_TEMPLATES", 8),
  templateLength: env("BENCH_TEMPLATE_LENGTH", 2048),
};
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);

const dir = mkdtempSync(join(tmpdir(), "server-bench-"));
const demo = writeDemoRepository(dir, GEOM);
const rand = mulberry32(3);
const noise = (n) => Float32Array.from({ length: n }, () => 2 * rand() - 1);

const fmt = (x, d = 1) => x.toFixed(d);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

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
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const x = noise(BATCH * GEOM.nIfo * GEOM.kernel);
const session = await ort.InferenceSession.create(readFileSync(join(dir, "detector/1/model.onnx")), {
  intraOpNumThreads: THREADS,
  interOpNumThreads: 1,
  executionMode: "sequential",
  graphOptimizationLevel: "all",
});
const feeds = { whitened: new ort.Tensor("float32", x, [BATCH, GEOM.nIfo, GEOM.kernel]) };

const server = await startServer({ repository: dir, host: "127.0.0.1", port: 0, threads: THREADS, logger: pino({ level: "warn" }) });
const client = new InferenceClient(`127.0.0.1:${server.port}`);
await client.waitForReady({ timeoutMs: 10_000 }).catch(() => {});
const req = { model: demo.detector, inputs: [{ name: "whitened", datatype: "FP32", shape: [BATCH, GEOM.nIfo, GEOM.kernel], data: x }] };
const one = await client.infer(req);
if (one.outputs[0].data.length !== BATCH) throw new Error("unexpected output size");

const raws = [];
const srvs = [];
const pipes = [];
for (let r = 0; r < ROUNDS; r++) {
  raws.push(await timeLoop(SECONDS / ROUNDS + 0.5, () => session.run(feeds)));
  srvs.push(await timeLoop(SECONDS / ROUNDS + 0.5, () => client.infer(req)));
  // Two requests in flight: the next request's transfer overlaps the current run.
  pipes.push(2 * (await timeLoop(SECONDS / ROUNDS + 0.5, () => Promise.all([client.infer(req), client.infer(req)]))));
}
await session.release();
const median = (xs) => pct(xs, 50);
const rawRate = median(raws);
const srvRatio = median(srvs.map((v, i) => v / raws[i]));
const pipeRatio = median(pipes.map((v, i) => v / raws[i]));

const cfg = `demo detector (n_ifo ${GEOM.nIfo}, kernel ${GEOM.kernel}, ${GEOM.nTemplates} templates × ${GEOM.templateLength}), batch ${BATCH}, intraOpNumThreads ${THREADS}, ${ROUNDS} alternating rounds`;
console.log(`config: ${cfg}`);
console.log(`raw onnxruntime-node run:        ${fmt(rawRate * BATCH, 0)} windows/s (${fmt(rawRate, 2)} runs/s, median)`);
console.log(`client+server, 1 in flight:      ${fmt(median(srvs) * BATCH, 0)} windows/s  ratio ${fmt(srvRatio, 3)} (median of rounds; target ≥ 0.85)`);
console.log(`client+server, 2 in flight:      ${fmt(median(pipes) * BATCH, 0)} windows/s  ratio ${fmt(pipeRatio, 3)}`);
console.log(`per-round ratios (1 in flight):  ${srvs.map((v, i) => fmt(v / raws[i], 2)).join(" ")}`);

// ---- (b) bytes per inference --------------------------------------------
// Serialized ModelInferRequest sizes (the gRPC payload) for the same `batch`
// windows: every full window vs one streaming update with sequence parameters.
const serialize = loadInferenceProtos().GRPCInferenceService.service.ModelInfer.requestSerialize;
const fullReq = serialize({
  model_name: demo.detector,
  inputs: [{ name: "whitened", datatype: "FP32", shape: [GEOM.batch, GEOM.nIfo, GEOM.kernel] }],
  raw_input_contents: [Buffer.alloc(GEOM.batch * GEOM.nIfo * GEOM.kernel * 4)],
}).length;
const streamReq = serialize({
  model_name: demo.ensemble,
  id: "123456",
  parameters: { sequence_id: { int64_param: "123456" }, sequence_start: { bool_param: false }, sequence_end: { bool_param: false } },
  inputs: [{ name: "update", datatype: "FP32", shape: [1, GEOM.nIfo, demo.updateSize] }],
  raw_input_contents: [Buffer.alloc(GEOM.nIfo * demo.updateSize * 4)],
}).length;
console.log(
  `bytes sent per window: full windows ${fmt(fullReq / GEOM.batch, 0)}, streaming ${fmt(streamReq / GEOM.batch, 0)}  ratio ${fmt(fullReq / streamReq, 2)} (kernel/stride = ${GEOM.kernel / GEOM.stride})`,
);

// ---- (c) concurrent sequences through the streaming ensemble -------------
async function sequences(n, seconds) {
  const streams = Array.from({ length: n }, () => client.openStream());
  const latencies = [];
  const update = noise(GEOM.nIfo * demo.updateSize);
  let stop = false;
  const t0 = performance.now();
  await Promise.all(
    streams.map(async (s, i) => {
      let k = 0;
      while (!stop) {
        const t = performance.now();
        await s.infer({
          model: demo.ensemble,
          inputs: [{ name: "update", datatype: "FP32", shape: [1, GEOM.nIfo, demo.updateSize], data: update }],
          sequence: { id: 1000 * n + i + 1, start: k === 0 },
        });
        latencies.push(performance.now() - t);
        k++;
        if (performance.now() - t0 > seconds * 1000) stop = true;
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;
  await Promise.all(streams.map((s) => s.end()));
  return { rps: latencies.length / elapsed, p50: pct(latencies, 50), p99: pct(latencies, 99) };
}

console.log(`streaming ensemble ${demo.ensemble}: update [1, ${GEOM.nIfo}, ${demo.updateSize}] → ${GEOM.batch} windows per request`);
for (const n of [1, 8, 64]) {
  const r = await sequences(n, SECONDS);
  console.log(
    `${String(n).padStart(2)} sequences: ${fmt(r.rps, 1)} requests/s (${fmt(r.rps * GEOM.batch, 0)} windows/s)  p50 ${fmt(r.p50, 2)} ms  p99 ${fmt(r.p99, 2)} ms`,
  );
}

client.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
