// Factorized time slides against the whole model: years of background per
// core-hour, same model (the demo detector, served whole as detector-stream
// and as the pair detector-slides that declares it), same data, same
// `timeslide serve` process, in one run. Real Redis, real HDF5, real ONNX
// Runtime; one `timeslide worker` process. Circular slides, so every shift
// has the whole segment's livetime.
// Core-hours: CPU seconds of the server and worker processes (from /proc)
// from the campaign's first active job to its end. The factorized campaign
// runs BENCH_SHIFTS shifts (default 1000: one job per segment chunk, the
// planner's factorized packing); the whole model's cost is linear in shifts
// (each one streams the whole model over the segment), so it runs
// BENCH_WHOLE_SHIFTS (default 24, its default packing puts them in one job)
// and its rate is per year analysed like the other's.
// Printed: the ratio (target >= 20x), tensor bytes on the wire per shift
// (factorized: measured by the worker; whole: from the request sizes), and
// where each job's time goes (job timings: read+whiten, encode, head,
// post-processing, write; they overlap: the reader runs under the streaming).
// Needs `npm run build` and Redis (REDIS_URL or redis://127.0.0.1:6379).
// Env: BENCH_DURATION (s of data), BENCH_SHIFTS, BENCH_WHOLE_SHIFTS, BENCH_TEMPLATES.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { benchProcesses } from "./processes.mjs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { deleteKeys, campaignKeys, campaignStatus, connectRedis, freePort, prepareCampaign, submitCampaign } from "@timeslide/campaign";
import { InferenceClient } from "@timeslide/kserve";
import { demoBankOptions, writeDemoRepository } from "@timeslide/model-repo";
import { synthesize } from "@timeslide/strain";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const DURATION = Number(process.env.BENCH_DURATION ?? 1280); // s of data per detector
const SHIFTS = Number(process.env.BENCH_SHIFTS ?? 1000);
const WHOLE_SHIFTS = Number(process.env.BENCH_WHOLE_SHIFTS ?? 8);
// physical: the demo search's bank (16 quadrature templates, χ², coincidence head: timeslide demo); chirp: 8 random chirps, sum head
const BANK = process.env.BENCH_BANK ?? "physical";
const TEMPLATES = Number(process.env.BENCH_TEMPLATES ?? 8);
const FILE_RATE = 1024;
const FS = 512;
const KERNEL_S = 1;
const ISR = 8;
const BATCH = 128;
const KERNEL = KERNEL_S * FS;
const STRIDE = FS / ISR;
const JULIAN_YEAR = 31_557_600;

const prefix = `tsfbench-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-factorized-bench-"));
const env = { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };

const { child, killAll } = benchProcesses(env);

/** CPU seconds of a process, all threads (Linux /proc). */
function cpu(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const x = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(x[11]) + Number(x[12])) / 100; // utime + stime, USER_HZ 100
}

const redis = await connectRedis(REDIS_URL);
try {
  await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: DURATION, sampleRate: FILE_RATE, fileDuration: DURATION / 2, gaps: 0, injections: 0, seed: 11 });
  const repo = join(dir, "models");
  writeDemoRepository(repo, { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, nTemplates: TEMPLATES, dynamicBatching: false, factorized: { ifos: ["H1", "L1"] }, bank: BANK === "physical" ? demoBankOptions(FS) : undefined });
  const port = await freePort();
  const server = child(["serve", "--repo", repo, "--port", String(port), "--host", "127.0.0.1", "--threads", "1"]);
  const endpoint = `127.0.0.1:${port}`;
  const client = new InferenceClient(endpoint);
  await client.waitForReady({ model: "detector-slides", timeoutMs: 60_000 });
  client.close();

  const campaignFile = (name, model, shifts) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      `name: ${name}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 64 } }
model: { name: ${model}, factorized: ${model.endsWith("-slides")}, servers: ["${endpoint}"] }
inference: { kernel_length: ${KERNEL_S}, inference_sampling_rate: ${ISR}, batch_size: ${BATCH}, psd_length: 32, fduration: 1, highpass: 20 }
background: { shifts: ${shifts}, step: 1, circular: true, max_job_duration: ${DURATION} }
postprocess: { integration_window: 1, cluster_window: 4 }
output: out-${name}
`,
    );
    return file;
  };
  const names = ["warm-whole", "warm-fact", "whole", "fact"];
  const worker = child(["worker", ...names, "--lock", "120", "--sequences", "4", "--concurrency", "1"]);
  const run = async (name, model, shifts) => {
    const { campaign, plan } = await prepareCampaign(campaignFile(name, model, shifts));
    await submitCampaign({ redis, prefix, campaign, plan });
    for (let s = await campaignStatus(redis, prefix, name); !s.jobs.active && !s.done; s = await campaignStatus(redis, prefix, name)) await new Promise((r) => setTimeout(r, 20));
    const c0 = cpu(server.pid) + cpu(worker.pid);
    const t0 = performance.now();
    for (;;) {
      const s = await campaignStatus(redis, prefix, name);
      if (s.done) {
        if (s.jobs.failed) throw new Error(`${name}: ${s.jobs.failed} jobs failed: ${worker.tail()}`);
        break;
      }
      if (worker.exitCode !== null) throw new Error(`${name}: the worker exited: ${worker.tail()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    const wall = (performance.now() - t0) / 1000;
    const cpuS = cpu(server.pid) + cpu(worker.pid) - c0;
    const results = Object.values(await redis.hgetall(campaignKeys(prefix, name).results)).map((v) => JSON.parse(v));
    const bg = results.filter((r) => r.kind === "background");
    const sum = (k, rs = results) => rs.reduce((a, r) => a + (r.timings?.[k] ?? 0), 0);
    const livetime = bg.reduce((a, r) => a + r.livetime, 0);
    return { name, plan, wall, cpuS, results, bg, sum, livetime, years: livetime / JULIAN_YEAR, perCoreHour: livetime / JULIAN_YEAR / (cpuS / 3600) };
  };
  await run("warm-whole", "detector-stream", 2);
  await run("warm-fact", "detector-slides", 8);
  const whole = await run("whole", "detector-stream", WHOLE_SHIFTS);
  const fact = await run("fact", "detector-slides", SHIFTS);
  worker.kill("SIGTERM");
  server.kill("SIGTERM");
  await Promise.all([worker.exited, server.exited]);

  const f = (v, d = 1) => v.toFixed(d);
  console.log(
    `config: demo detector (${BANK === "physical" ? "the demo search's physical bank: 16 templates, chi-squared, coincidence head" : `chirp bank of ${TEMPLATES} templates`}), 2 ifos, kernel ${KERNEL} samples (${KERNEL_S} s @ ${FS} Hz), stride ${STRIDE} (${ISR} Hz), batch ${BATCH}; ` +
      `data ${DURATION} s x 2 ifos, circular slides, step 1 s; 1 server process (1 ONNX Runtime thread), 1 worker (--sequences 4); load average ${f(loadavg()[0], 2)}`,
  );
  for (const r of [whole, fact]) {
    const shifts = r.bg.reduce((a, x) => a + x.shifts, 0);
    console.log(
      `${r.name === "fact" ? "factorized  " : "whole model "}: ${shifts} shift-jobs in ${r.bg.length} background + ${r.results.length - r.bg.length} zero-lag jobs, ${r.years.toPrecision(3)} y of background in ${f(r.wall, 2)} s wall, ${f(r.cpuS, 1)} CPU s (server + worker) ` +
        `=> ${f(r.perCoreHour, 2)} y of background per core-hour`,
    );
    const t = (k) => f(r.sum(k, r.bg), 2);
    console.log(
      `  background jobs' time (s, summed over jobs; read overlaps the rest): total ${t("total_s")}, read+whiten ${t("read_whiten_s")}, ` +
        (r.name === "fact" ? `encode ${t("encode_s")}, head ${t("head_s")}, ` : `stream (whole model) ${t("infer_s")}, `) +
        `post-processing ${t("postprocess_s")}, write ${t("write_s")}`,
    );
  }
  // Whole model: per request 2 x stride*batch samples out, batch statistics back; J outputs per shift.
  const wholeOutputsPerShift = whole.sum("inferences", whole.bg) / whole.bg.reduce((a, x) => a + x.shifts, 0);
  const wholeBytes = (wholeOutputsPerShift / BATCH) * (2 * STRIDE * BATCH * 4 + BATCH * 4);
  const factShifts = fact.bg.reduce((a, x) => a + x.shifts, 0);
  const factBytes = fact.sum("wire_bytes", fact.bg) / factShifts;
  console.log(`tensor bytes on the wire per shift: whole model ${f(wholeBytes / 1024, 1)} KiB (from the request sizes), factorized ${f(factBytes / 1024, 1)} KiB (measured; the encodings spread over the job's shifts) = 1/${f(wholeBytes / factBytes, 1)}`);
  console.log(`factorized / whole model, years of background per core-hour: ${f(fact.perCoreHour / whole.perCoreHour, 1)}x (target >= 20x at ~1000 shifts)`);
} finally {
  killAll();
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  rmSync(dir, { recursive: true, force: true });
}
