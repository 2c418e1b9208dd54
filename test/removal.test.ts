// Hierarchical removal end to end: a loud real signal A in the strain of both
// detectors (coincident) and a quieter one B. In every slide A's
// single-detector copies pair with the other detector's noise and land loud
// background events at A's time, louder than B: without removal B's FAR is
// inflated by them (not saturated). A is louder than every background event,
// so hierarchical removal (N = 1) takes A's neighbourhood out of the
// background; B is then louder than everything left: saturated against the
// exclusive background. The removed livetime is checked against a count made
// here from the plan's segments, shifts and the DESIGN.md sample grid alone.
// Once with non-circular slides, once with circular ones whose copies of A
// wrap round the segment's ring.
//
// Real Redis, the embedded server and two worker processes (the CLI), the demo
// ONNX model, HDF5 strain.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { freePort } from "@timeslide/campaign";
import { cliProcesses } from "./cli-processes.js";
import h5wasm from "h5wasm/node";
import { injectInto, readInjections, synthesize, type InjectionSet } from "@timeslide/strain";
import { JULIAN_YEAR_S, readEventsFile, type EventSet } from "@timeslide/stats";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsrm-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-removal-"));
const env = { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };
const { cli, start, cleanup } = cliProcesses(dir, env);

const START = 1187008000;
const T_A = START + 500.3; // loud
const T_B = START + 900.7; // quieter
// campaign geometry (kept in one place for the independent computation below)
const K = 1; // kernel_length
const IW = 1; // integration_window
const CW = 4; // cluster_window = default removal window
const ISR = 2;
const PSD = 16;
const FS = 128; // data.sample_rate




/** Adds two chirps to every strain file: the same waveform in H1 and L1 at one time (coincident), scaled to a per-detector SNR. */
async function addSignals(files: Record<string, string[]>, injectionFile: string) {
  const src = await readInjections(injectionFile, ["H1", "L1"]);
  const L = src.length;
  const row = (i: number, snr: number) => src.waveforms.H1.subarray(i * L, (i + 1) * L).map((x) => (x * snr) / src.parameters.snr_H1[i]);
  const a = row(0, 200);
  const b = row(1, 60);
  const wave = new Float32Array(2 * L);
  wave.set(a, 0);
  wave.set(b, L);
  const set: InjectionSet = { ...src, times: Float64Array.from([T_A, T_B]), waveforms: { H1: wave, L1: wave }, parameters: {} };
  await h5wasm.ready;
  for (const [ifo, list] of Object.entries(files))
    for (const path of list) {
      const f = new h5wasm.File(path, "a");
      try {
        const d = f.get("strain/Strain") as InstanceType<typeof h5wasm.Dataset>;
        const data = Float64Array.from(d.value as Float64Array);
        const x0 = Number(d.attrs.Xstart.value);
        const dt = Number(d.attrs.Xspacing.value);
        const r = injectInto({ ifo, start: x0, sampleRate: Math.round(1 / dt), data }, set);
        if (r.injected.length) d.write_slice([[0, data.length]], data);
      } finally {
        f.close();
      }
    }
}

let port = 0;
beforeAll(async () => {
  const syn = await synthesize({ out: join(dir, "data"), ifos: ["H1", "L1"], duration: 1200, sampleRate: 256, fileDuration: 600, gaps: 0, injections: 2, snr: [30, 30], seed: 11 });
  await addSignals(syn.files, syn.injectionFile!);
  rmSync(syn.injectionFile!); // the signals are in the strain: no injection jobs
  cli(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", String(K), "--sample-rate", "128", "--inference-sampling-rate", String(ISR), "--batch-size", "32"]);
  port = await freePort();
  start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1"]);
}, 180_000);

afterAll(() => cleanup(REDIS_URL, prefix));

/** A campaign over the data with the given background block. */
function writeCampaign(name: string, background: string) {
  writeFileSync(
    join(dir, `${name}.yaml`),
    `name: ${name}
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: ${FS}, segments: { flags: [DATA], min_duration: 120 } }
model: { name: detector-stream, servers: ["127.0.0.1:${port}"] }
inference: { kernel_length: ${K}, inference_sampling_rate: ${ISR}, batch_size: 32, psd_length: ${PSD}, fduration: 1, highpass: 20 }
background: ${background}
significance: { hierarchical_removal: 1 }
postprocess: { integration_window: ${IW}, cluster_window: ${CW} }
output: results-${name}
`,
  );
}

interface Row {
  time: number;
  detection_statistic: number;
  far_per_year: number;
  saturated: boolean;
  far_per_year_exclusive?: number;
}

/**
 * |t + δ_i − t_c| < w for some detector i: DESIGN.md's removal condition. On a
 * circular ring of period R (the slid detectors wrap), for some image t_c + mR.
 */
const inZone = (t: number, shift: number[], tc: number, w: number, R?: number) =>
  shift.some((d) => (R ? [-2, -1, 0, 1, 2].map((m) => tc + m * R) : [tc]).some((u) => Math.abs(t + d - u) < w));

async function runAndCheck(name: string, circular: boolean) {
  const plan = JSON.parse(cli(["plan", `${name}.yaml`, "--json"]));
  expect(plan.segments).toEqual([[START, START + 1200]]);
  // circular: each detector wraps within [s + edge, e − edge), in whole samples at data.sample_rate
  const R = circular ? Math.round((1200 - 2 * plan.edge_s) * FS) / FS : undefined;
  cli(["submit", `${name}.yaml`, "--json"]);
  const workers = [start(["worker", name]), start(["worker", name])];
  const deadline = Date.now() + 240_000;
  let status = JSON.parse(cli(["status", name, "--json"]));
  while (!status.done && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 1000));
    status = JSON.parse(cli(["status", name, "--json"]));
  }
  expect(status.done).toBe(true);
  expect(status.jobs.failed).toBe(0);
  const out = join(dir, `results-${name}`);
  const htmlPath = join(out, "report.html");
  for (let i = 0; i < 240 && !existsSync(htmlPath); i++) await new Promise((r) => setTimeout(r, 250));
  const report = JSON.parse(readFileSync(join(out, "report.json"), "utf8"));
  const Tbg: number = report.livetime.background_s;
  expect(Tbg).toBe(plan.livetime.background_s);

  // The same campaign aggregated again without removal (in this process, N overridden to 0).
  const redis = new Redis(REDIS_URL);
  const { aggregateCampaign } = await import("@timeslide/aggregator");
  const inclusive = (await aggregateCampaign({ redis, prefix, campaign: name, out: join(dir, `no-removal-${name}`), significance: { hierarchical_removal: 0 }, logger: (await import("pino")).pino({ level: "silent" }) })).report;
  redis.disconnect();
  expect(inclusive.removed).toBeUndefined();

  // Every background event, read here from the job files.
  const jobsDir = join(out, "jobs");
  const bgEvents: Array<{ t: number; x: number; shift: number[] }> = [];
  for (const f of readdirSync(jobsDir).filter((n) => n.startsWith("bg-"))) {
    const ev: EventSet = (await readEventsFile(join(jobsDir, f))).events;
    for (let e = 0; e < ev.time.length; e++) bgEvents.push({ t: ev.time[e], x: ev.detection_statistic[e], shift: [ev.shift[2 * e], ev.shift[2 * e + 1]] });
  }
  const loudestNear = (rows: Row[], t: number) => rows.filter((r) => Math.abs(r.time - t) < 2).reduce((m, r) => (r.detection_statistic > m.detection_statistic ? r : m));
  const A0 = loudestNear(inclusive.foreground as Row[], T_A);
  const B0 = loudestNear(inclusive.foreground as Row[], T_B);
  const A = loudestNear(report.foreground, T_A);
  const B = loudestNear(report.foreground, T_B);
  expect(A.detection_statistic).toBe(A0.detection_statistic);
  expect(Math.max(...report.foreground.map((r: Row) => r.detection_statistic))).toBe(A.detection_statistic);

  // A's copies: in every slide, background events at A's time (in one detector's own time) louder than B.
  const w = CW;
  const copies = bgEvents.filter((e) => inZone(e.t, e.shift, A.time, w, R));
  const slidesWithLoudCopy = new Set(copies.filter((e) => e.x >= B.detection_statistic).map((e) => e.shift[1]));
  expect(slidesWithLoudCopy.size).toBe(plan.shifts.length);
  // A itself is louder than every background event: saturated (the condition for removing it)
  expect(bgEvents.every((e) => e.x < A.detection_statistic)).toBe(true);
  expect(A0.saturated).toBe(true);

  // Without removal: B's FAR counts A's copies (n = background events at least as loud as B, all of them A's copies).
  const nB = bgEvents.filter((e) => e.x >= B.detection_statistic).length;
  expect(nB).toBeGreaterThanOrEqual(plan.shifts.length);
  expect(bgEvents.filter((e) => e.x >= B.detection_statistic).every((e) => inZone(e.t, e.shift, A.time, w, R))).toBe(true);
  expect(B0.saturated).toBe(false);
  expect(B0.far_per_year).toBe(((nB + 1) * JULIAN_YEAR_S) / Tbg);

  // With removal: A listed; exactly the events in its zone removed; the livetime from the sample grid.
  expect(report.removed).toHaveLength(1);
  const removed = report.removed[0];
  expect(removed.time).toBe(A.time);
  expect(removed.detection_statistic).toBe(A.detection_statistic);
  expect(removed.events_removed).toBe(copies.length);

  // Independent count: segment [s, e), shift δ: samples j = 0 .. n − 1 with
  // n = floor((L − max δ − psd − edge)·isr) (circular: floor((L − psd − edge)·isr)),
  // stamped s + psd + j/isr (window end); an event there has time stamp − K/2 − IW/2.
  let samples = 0;
  for (const [s, e] of plan.segments as Array<[number, number]>)
    for (const shift of plan.shifts as number[][]) {
      const n = Math.floor((e - s - (circular ? 0 : Math.max(...shift)) - PSD - plan.edge_s) * ISR + 1e-9);
      for (let j = 0; j < n; j++) if (inZone(s + PSD + j / ISR - K / 2 - IW / 2, shift, A.time, w, R)) samples++;
    }
  expect(samples).toBeGreaterThan(0);
  expect(removed.livetime_removed_s).toBe(samples / ISR);
  if (!circular) {
    // (A's event time lies on the sample grid, so each shift loses 2w·isr − 1 samples in each detector's own time;
    // the two zones are a shift (≥ 9 s) apart, so they do not overlap here)
    expect((A.time - (START + PSD - K / 2 - IW / 2)) * ISR % 1).toBe(0);
    expect(samples).toBe(plan.shifts.length * 2 * (2 * w * ISR - 1));
  } else {
    // some slid copies of A wrapped round the ring: found only through the image t_c ± R
    expect(copies.some((e) => !inZone(e.t, e.shift, A.time, w))).toBe(true);
  }

  // B: inclusive FAR unchanged; exclusive (after A's removal) saturated: nothing left is as loud.
  const left = Tbg - removed.livetime_removed_s;
  const nBleft = bgEvents.filter((e) => e.x >= B.detection_statistic && !inZone(e.t, e.shift, A.time, w, R)).length;
  expect(nBleft).toBe(0);
  expect(B.far_per_year).toBe(B0.far_per_year);
  expect(B.far_per_year_exclusive).toBe((1 * JULIAN_YEAR_S) / left);
  // A: nothing was removed before it, so its exclusive FAR is its inclusive one
  expect(A.far_per_year_exclusive).toBe(A.far_per_year);
  // every other candidate: against the background left after A's removal
  for (const r of report.foreground as Row[]) {
    if (r === A) continue;
    const n = bgEvents.filter((e) => e.x >= r.detection_statistic && !inZone(e.t, e.shift, A.time, w, R)).length;
    expect(r.far_per_year_exclusive).toBe(((n + 1) * JULIAN_YEAR_S) / left);
  }

  const html = readFileSync(htmlPath, "utf8");
  expect(html).toContain('id="removed"');
  expect(html).toContain("FAR (/yr) exclusive");

  await Promise.all(workers.map((wk) => new Promise((r) => (wk.once("exit", r), wk.kill("SIGTERM")))));
}

describe("hierarchical removal through worker processes", () => {
  it("a loud signal's slid copies inflate the next candidate's FAR; removing it leaves that candidate saturated; removed livetime is exact", async () => {
    writeCampaign("removal", "{ shifts: 8, step: 9, max_job_duration: 400 }");
    await runAndCheck("removal", false);
  });

  it("circular slides: copies that wrap round the ring are removed too, livetime exact", async () => {
    // step 300 s: shifts 600 and 900 s wrap A's L1 copy round the ~1199 s ring
    writeCampaign("removalc", "{ shifts: 3, step: 300, circular: true, max_job_duration: 400 }");
    await runAndCheck("removalc", true);
  });
});
