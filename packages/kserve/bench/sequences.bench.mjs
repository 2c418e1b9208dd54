// Requests/s and latency (p50 / p99) of snapshotter sequences through the
// embedded server at 1, 8 and 64 concurrent sequences sharing one gRPC
// stream, plus the same through a 1-server ServerPool (pool overhead).
// Baseline in the same run: 1 sequence. The main model has 64 snapshotter
// instances (64 sequence slots, as Triton counts them), so every level fits.
// Then Triton-like slot configurations: 8 sequences through the pool on a
// one-slot model (1 snapshotter instance: they run one at a time, the rest
// wait in the pool) and on an 8-slot model, and the one-slot model offered 8
// sequences at once without the pool's limit (unary calls: the server's
// backlog holds them; "wait" = the longest START answer, what a client
// deadline would have to cover). Needs `npm run build` (server, model-repo,
// kserve). Configuration printed below.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { InferenceClient, SequenceStream, ServerPool } from "@timeslide/kserve";
import { writeDemoRepository } from "@timeslide/model-repo";

const MAIN = fileURLToPath(new URL("../../../apps/server/dist/main.js", import.meta.url));
const geometry = { channels: 2, kernel: 768, stride: 128, batch: 8 }; // 1.5 s @ 512 Hz, 4 Hz inference
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 256); // per concurrency level

const repo = mkdtempSync(join(tmpdir(), "kserve-bench-"));
const demo = { nIfo: geometry.channels, kernel: geometry.kernel, stride: geometry.stride, batch: geometry.batch, nTemplates: 8, maxBatchSize: 512 };
writeDemoRepository(repo, { ...demo, streams: 64 });
for (const slots of [1, 8])
  writeDemoRepository(repo, { ...demo, streams: slots, detectorName: `detector-${slots}slot`, snapshotterName: `snapshotter-${slots}slot`, ensembleName: `detector-stream-${slots}slot` });
const port = await new Promise((res) => {
  const s = createServer().listen(0, "127.0.0.1", () => {
    const p = s.address().port;
    s.close(() => res(p));
  });
});
const server = spawn(process.execPath, [MAIN, "--repo", repo, "--port", String(port), "--host", "127.0.0.1"], { stdio: "ignore" });
const endpoint = `127.0.0.1:${port}`;
const client = new InferenceClient(endpoint);
await client.waitForReady({ model: "detector-stream", timeoutMs: 30_000 });

const U = geometry.stride * geometry.batch;
const update = new Float32Array(geometry.channels * U).map((_, i) => Math.sin(0.01 * i));

async function run(concurrency, carrierFor, model = "detector-stream") {
  const perSeq = Math.max(2, Math.ceil(REQUESTS / concurrency));
  const lat = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const seq = new SequenceStream({ carrier: carrierFor(), model, geometry });
      for (let k = 0; k < perSeq; k++) {
        const s = performance.now();
        await seq.send(update, { end: k === perSeq - 1 });
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { n: lat.length, rps: lat.length / secs, p50: q(0.5), p99: q(0.99) };
}

const stream = client.openStream();
await run(2, () => stream); // warm-up
const rows = [];
for (const c of [1, 8, 64]) rows.push([`stream x${c}`, await run(c, () => stream)]);
await stream.end();
const pool = await ServerPool.create({ endpoints: endpoint, maxInFlightPerServer: 64 });
for (const c of [1, 64]) rows.push([`pool x${c}`, await run(c, () => pool)]);
// Triton-like slots: 8 sequences, each REQUESTS/8 updates.
const slotRows = [];
for (const slots of [1, 8]) slotRows.push([`pool ${slots}-slot x8`, await run(8, () => pool, `detector-stream-${slots}slot`)]);
pool.close();

/** 8 sequences offered at once as unary calls to the one-slot model (no pool limit): the server's backlog serialises them. */
async function backlog(concurrency) {
  const perSeq = Math.max(2, Math.ceil(REQUESTS / concurrency));
  const lat = [];
  let wait = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async (_, i) => {
      for (let k = 0; k < perSeq; k++) {
        const s = performance.now();
        await client.infer({ model: "detector-stream-1slot", inputs: [{ name: "update", datatype: "FP32", shape: [1, geometry.channels, U], data: update }], sequence: { id: 9000 + i, start: k === 0, end: k === perSeq - 1 } }, { deadlineMs: 600_000 });
        const ms = performance.now() - s;
        if (k === 0) wait = Math.max(wait, ms);
        lat.push(ms);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { n: lat.length, rps: lat.length / secs, p50: q(0.5), p99: q(0.99), wait };
}
slotRows.push(["unary 1-slot x8", await backlog(8)]);

console.log(`config: embedded server (1 ORT thread) on 127.0.0.1, ${geometry.channels} ifos, kernel ${geometry.kernel}, stride ${geometry.stride}, batch ${geometry.batch}; ${REQUESTS} updates per level`);
const base = rows[0][1].rps;
for (const [name, r] of rows) {
  console.log(`${name.padEnd(12)} ${r.rps.toFixed(1).padStart(8)} req/s (${(r.rps * geometry.batch).toFixed(0)} inferences/s)  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ratio to x1 ${(r.rps / base).toFixed(2)}`);
}
console.log("Triton-like sequence slots (Direct, max_batch_size 0: one slot per snapshotter instance), 8 sequences:");
for (const [name, r] of slotRows) {
  console.log(
    `${name.padEnd(16)} ${r.rps.toFixed(1).padStart(8)} req/s  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ratio to x1 ${(r.rps / base).toFixed(2)}` +
      (r.wait !== undefined ? `  longest START wait ${r.wait.toFixed(0)} ms (in the server's backlog)` : ""),
  );
}
client.close();
server.kill("SIGTERM");
rmSync(repo, { recursive: true, force: true });
