// Requests/s and latency (p50 / p99) of snapshotter sequences through the
// embedded server at 1, 8 and 64 concurrent sequences sharing one gRPC
// stream, plus the same through a 1-server ServerPool (pool overhead).
// Baseline in the same run: 1 sequence. Needs `npm run build` (server,
// model-repo, kserve). Configuration printed below.
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
writeDemoRepository(repo, { nIfo: geometry.channels, kernel: geometry.kernel, stride: geometry.stride, batch: geometry.batch, nTemplates: 8, maxBatchSize: 512 });
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

async function run(concurrency, carrierFor) {
  const perSeq = Math.max(2, Math.ceil(REQUESTS / concurrency));
  const lat = [];
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const seq = new SequenceStream({ carrier: carrierFor(), model: "detector-stream", geometry });
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
pool.close();

console.log(`config: embedded server (1 ORT thread) on 127.0.0.1, ${geometry.channels} ifos, kernel ${geometry.kernel}, stride ${geometry.stride}, batch ${geometry.batch}; ${REQUESTS} updates per level`);
const base = rows[0][1].rps;
for (const [name, r] of rows) {
  console.log(`${name.padEnd(12)} ${r.rps.toFixed(1).padStart(8)} req/s (${(r.rps * geometry.batch).toFixed(0)} inferences/s)  p50 ${r.p50.toFixed(2)} ms  p99 ${r.p99.toFixed(2)} ms  ratio to x1 ${(r.rps / base).toFixed(2)}`);
}
client.close();
server.kill("SIGTERM");
rmSync(repo, { recursive: true, force: true });
