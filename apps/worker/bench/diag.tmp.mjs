import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceClient, ServerPool } from "@timeslide/kserve";
import { writeDemoRepository } from "@timeslide/model-repo";
const B = Number(process.env.B ?? 128), K = 512, S = 64;
const repo = mkdtempSync(join(tmpdir(), "diag-"));
writeDemoRepository(repo, { nIfo: 2, kernel: K, stride: S, batch: B, nTemplates: 8, dynamicBatching: false });
const port = 40000 + Math.floor(Math.random() * 1000);
const srv = spawn(process.execPath, ["apps/cli/dist/main.js", "serve", "--repo", repo, "--port", String(port), "--host", "127.0.0.1", "--threads", "1"], { stdio: "ignore" });
const ep = `127.0.0.1:${port}`;
const c = new InferenceClient(ep);
await c.waitForReady({ model: "detector-stream", timeoutMs: 30000 });
const pool = await ServerPool.create({ endpoints: ep });
const U = S * B;
const upd = new Float32Array(2 * U).map(() => Math.random());
for (const [seqs, infl] of [[1, 1], [1, 4], [4, 4]]) {
  const N = 60;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: seqs }, async () => {
    const seq = pool.openSequence({ model: "detector-stream", geometry: { channels: 2, kernel: K, stride: S, batch: B }, deadlineMs: 30000 });
    const pend = [];
    for (let r = 0; r < N; r++) { pend.push(seq.send(upd, { end: r === N - 1 })); if (pend.length >= infl) await pend.shift(); }
    await Promise.all(pend);
  }));
  const dt = (performance.now() - t0) / 1000;
  console.log(`stream seqs ${seqs} inflight ${infl}: ${(seqs * N * B / dt).toFixed(0)} windows/s, ${(seqs*N/dt).toFixed(0)} req/s`);
}
// bare detector unary, batch B, 4 in flight
const x = new Float32Array(B * 2 * K).map(() => Math.random());
const t1 = performance.now(); const pend = [];
for (let r = 0; r < 60; r++) { pend.push(c.infer({ model: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [B, 2, K], data: x }] }, { deadlineMs: 30000 })); if (pend.length >= 4) await pend.shift(); }
await Promise.all(pend);
console.log(`bare detector unary batch ${B}, 4 in flight: ${(60 * B / ((performance.now() - t1) / 1000)).toFixed(0)} windows/s`);
// snapshotter alone?
pool.close(); c.close(); srv.kill("SIGKILL");
