// CPU time the embedded server spends per request, read from /proc for the
// server process (CPU time is far less sensitive to other work on the host
// than wall time, so two builds compare even on a loaded machine). A model
// so light that the serving path (decode, schedule, encode), not the model,
// is what is measured: unary requests of 32 windows (256 KiB) to the
// detector, 2 in flight; BENCH_SEQUENCES (default 8) sequences through the
// streaming ensemble, one stream and one snapshotter slot each. BENCH_BASE_MAIN=<another build's apps/server/dist/main.js>
// (e.g. a worktree of main, built) runs that build too, in alternating
// rounds, and prints new/base. Linux only (/proc). Needs `npm run build`.
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { InferenceClient } from "@timeslide/kserve";
import { writeDemoRepository } from "@timeslide/model-repo";

const MAIN = { this: fileURLToPath(new URL("../dist/main.js", import.meta.url)), ...(process.env.BENCH_BASE_MAIN ? { base: process.env.BENCH_BASE_MAIN } : {}) };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 4);
const N = Number(process.env.BENCH_REQUESTS ?? 600);
const SEQUENCES = Number(process.env.BENCH_SEQUENCES ?? 8);
const G = { nIfo: 2, kernel: 1024, stride: 64, batch: 16, nTemplates: 1, templateLength: 8, streams: SEQUENCES };
const dir = mkdtempSync(join(tmpdir(), "server-cpu-bench-"));
const demo = writeDemoRepository(dir, G);
const TICK_MS = 10; // /proc/<pid>/stat counts clock ticks of 1/100 s (USER_HZ)

const freePort = () =>
  new Promise((res) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });
/** utime + stime of a process, ms. */
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * TICK_MS;
};
const x = Float32Array.from({ length: 32 * G.nIfo * G.kernel }, (_, i) => Math.sin(i));
const u = Float32Array.from({ length: G.nIfo * demo.updateSize }, (_, i) => Math.cos(i));

async function measure(main) {
  const port = await freePort();
  const proc = spawn(process.execPath, [main, "--repo", dir, "--port", String(port), "--host", "127.0.0.1", "--threads", "1"], { stdio: "ignore" });
  const c = new InferenceClient(`127.0.0.1:${port}`);
  try {
    await c.waitForReady({ model: demo.ensemble, timeoutMs: 30_000 });
    const unary = () => c.infer({ model: demo.detector, inputs: [{ name: "whitened", datatype: "FP32", shape: [32, G.nIfo, G.kernel], data: x }] });
    const loop = async (n, k, fn) => {
      let i = 0;
      await Promise.all(Array.from({ length: k }, async () => { while (i++ < n) await fn(); }));
    };
    const timed = async (n, fn) => {
      const c0 = cpuMs(proc.pid);
      const t0 = performance.now();
      await fn();
      return { cpu: (cpuMs(proc.pid) - c0) / n, wall: (performance.now() - t0) / n };
    };
    await loop(50, 2, unary);
    const a = await timed(N, () => loop(N, 2, unary));
    const streams = Array.from({ length: SEQUENCES }, () => c.openStream());
    const update = (s, id, k, steps) =>
      s.infer({ model: demo.ensemble, inputs: [{ name: "update", datatype: "FP32", shape: [1, G.nIfo, demo.updateSize], data: u }], sequence: { id, start: k === 0, end: k === steps - 1 } });
    const sequences = (steps, first) => Promise.all(streams.map(async (s, j) => { for (let k = 0; k < steps; k++) await update(s, first + j, k, steps); }));
    await sequences(10, 1);
    const steps = Math.max(2, Math.round(N / SEQUENCES));
    const b = await timed(SEQUENCES * steps, () => sequences(steps, 1000));
    await Promise.all(streams.map((s) => s.end()));
    return { unary: a, sequences: b };
  } finally {
    c.close();
    proc.kill("SIGKILL");
  }
}

const fmt = (m) => `server CPU ${m.cpu.toFixed(2)} ms/request (wall ${m.wall.toFixed(2)} ms)`;
const runs = Object.fromEntries(Object.keys(MAIN).map((k) => [k, []]));
for (let r = 0; r < ROUNDS; r++) {
  const order = Object.keys(MAIN);
  if (r % 2) order.reverse();
  for (const k of order) {
    const m = await measure(MAIN[k]);
    runs[k].push(m);
    console.log(`round ${r} ${k.padEnd(4)}: unary detector, batch 32: ${fmt(m.unary)} | ensemble, ${SEQUENCES} sequences: ${fmt(m.sequences)}  (load ${readFileSync("/proc/loadavg", "utf8").split(" ")[0]})`);
  }
}
const median = (xs) => {
  const s = [...xs].sort((p, q) => p - q);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
for (const w of ["unary", "sequences"]) {
  const med = Object.fromEntries(Object.entries(runs).map(([k, ms]) => [k, median(ms.map((m) => m[w].cpu))]));
  const line = Object.entries(med).map(([k, v]) => `${k} ${v.toFixed(2)} ms`).join(", ");
  console.log(`${w === "unary" ? "unary detector" : "ensemble sequences"}: median server CPU per request: ${line}${med.base ? `; this/base ${(med.this / med.base).toFixed(3)}` : ""}`);
}
rmSync(dir, { recursive: true, force: true });
