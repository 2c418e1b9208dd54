// Bad input, tried the way a user meets it: the `timeslide` command on a
// campaign file, data files or injection file that can't be used, `submit`
// against a model whose shapes do not fit, and worker processes on queued jobs
// whose data, payload or campaign metadata went bad after submit. Each must
// be refused with a message naming what is wrong and where (file, HDF5 path
// or field, job id, expected vs got) and the right exit status, and nothing
// already done may be lost: results stay, other jobs complete, a bad job
// fails for good with its planned livetime reported lost, and the worker
// keeps running. Each outcome is recorded (test/outcomes.ts) once proven.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import h5wasm from "h5wasm/node";
import { campaignKeys, campaignStatus, freePort, openQueue, type JobFailure, type JobPayload, type JobSummary } from "@timeslide/campaign";
import { InferenceClient } from "@timeslide/kserve";
import { writeInjectionFile, writeStrainFile } from "@timeslide/strain";
import { recordOutcome } from "./outcomes.js";
import { cliProcesses, type Ran } from "./cli-processes.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsbad-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-bad-"));
const env = { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };
const H1A = "H-H1_SYNTH_256HZ_R1-1187008000-600.hdf5";
const H1B = "H-H1_SYNTH_256HZ_R1-1187008600-600.hdf5";

const { run: cli, cliAsync: cliOk, start: startCli, stderrOf, cleanup } = cliProcesses(dir, env);
const start = (args: string[]) => {
  const child = startCli(args);
  return { child, stderr: () => stderrOf(child) };
};

/** The message a user sees: stderr without warnings, on one line, shortened. */
const shown = (r: Ran, max = 300) => {
  const text = r.stderr
    .split("\n")
    .filter((l) => l && !l.startsWith("warning:") && !l.startsWith("npm warn"))
    .join(" ")
    .replaceAll(dir + "/", "")
    .replace(/\s+/g, " ")
    .trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
};

function record(c: string, outcome: "refused" | "lost livetime", detail: string): void {
  recordOutcome({ area: "bad input", case: c, outcome, detail: detail.replaceAll(dir + "/", "") });
}

let port = 0;

/** A good campaign (JSON is YAML), with `edit` applied; returns the file name. */
function campaign(name: string, edit: (c: any) => void = () => {}): string {
  const c: any = {
    name,
    ifos: ["H1", "L1"],
    data: { files: ["data/*.hdf5"], sample_rate: 128, segments: { flags: ["DATA"], min_duration: 120 } },
    model: { name: "detector-stream", servers: [`127.0.0.1:${port}`] },
    inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20 },
    background: { shifts: 1, step: 2, max_job_duration: 400 },
    output: `results/${name}`,
  };
  edit(c);
  const file = `${name}.yaml`;
  writeFileSync(join(dir, file), JSON.stringify(c, null, 1));
  return file;
}

// ---- files with the wrong layout (h5wasm, as another writer might leave them) ----

async function h5write(path: string, fill: (f: InstanceType<typeof h5wasm.File>) => void): Promise<void> {
  await h5wasm.ready;
  const f = new h5wasm.File(path, "w");
  try {
    fill(f);
  } finally {
    f.close();
  }
}

/** An H1 file of 600 s at 256 Hz from GPS 1187009200, GWOSC layout except for what `o` breaks. */
async function badStrainFile(path: string, o: { noStrain?: boolean; noXspacing?: boolean; intStrain?: boolean }): Promise<void> {
  const start = 1187009200, duration = 600, fs = 256, n = duration * fs;
  await h5write(path, (f) => {
    const meta = f.create_group("meta");
    meta.create_dataset({ name: "Detector", data: "H1", dtype: "A2" });
    meta.create_dataset({ name: "GPSstart", data: BigInt(start) as unknown as number, dtype: "<q" });
    meta.create_dataset({ name: "Duration", data: BigInt(duration) as unknown as number, dtype: "<q" });
    const q = f.create_group("quality").create_group("simple");
    q.create_dataset({ name: "DQmask", data: new Int32Array(duration).fill(1), dtype: "<i" });
    q.create_dataset({ name: "DQShortnames", data: ["DATA"], dtype: "A4" });
    const g = f.create_group("strain");
    if (o.noStrain) return;
    const ds = o.intStrain ? g.create_dataset({ name: "Strain", data: new Int16Array(n), dtype: "<h" }) : g.create_dataset({ name: "Strain", data: new Float64Array(n), dtype: "<d" });
    ds.create_attribute("Xstart", start, null, "<d");
    if (!o.noXspacing) ds.create_attribute("Xspacing", 1 / fs, null, "<d");
    ds.create_attribute("Npoints", BigInt(n) as unknown as number, null, "<q");
  });
}

/** An injection file in the DESIGN.md layout with `m` times and rows per detector given separately. */
async function badInjectionFile(path: string, o: { times: number[]; rows: Record<string, [number, number]>; sampleRate: number; tOffset: number }): Promise<void> {
  await h5write(path, (f) => {
    const g = f.create_group("injections");
    g.create_dataset({ name: "time", data: Float64Array.from(o.times), dtype: "<d" });
    for (const [ifo, [m, l]] of Object.entries(o.rows)) g.create_dataset({ name: ifo, data: new Float32Array(m * l), shape: [m, l], dtype: "<f" });
    g.create_attribute("sample_rate", o.sampleRate, null, "<d");
    g.create_attribute("t_offset", o.tOffset, null, "<d");
  });
}

beforeAll(async () => {
  await Promise.all([
    cliOk(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "20m", "--sample-rate", "256", "--file-duration", "600", "--gaps", "1", "--injections", "8", "--snr", "15:40", "--seed", "3"]),
    cliOk(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"]),
  ]);
  port = await freePort();
  start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1"]);
  const client = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
  try {
    await client.waitForReady({ timeoutMs: 60_000, model: "detector-stream" });
  } finally {
    client.close();
  }
}, 120_000);

afterAll(() => cleanup(REDIS_URL, prefix));

/** Runs `timeslide plan` on each file, three at a time. */
async function planAll(files: string[]): Promise<Map<string, Ran>> {
  const out = new Map<string, Ran>();
  const queue = [...new Set(files)];
  await Promise.all(
    [0, 1, 2].map(async () => {
      for (let f = queue.shift(); f; f = queue.shift()) out.set(f, await cli(["plan", f]));
    }),
  );
  return out;
}

describe("bad input is refused, naming what and where", () => {
  it("campaign files, strain files and injection files: `timeslide plan` exits 2 with the file and field", async () => {
    mkdirSync(join(dir, "bad"), { recursive: true });
    const bad = (f: string) => join(dir, "bad", f);
    // Strain files that can't be used, each beside the good data.
    await badStrainFile(bad("H-H1_nostrain.hdf5"), { noStrain: true });
    await badStrainFile(bad("H-H1_noxspacing.hdf5"), { noXspacing: true });
    await badStrainFile(bad("H-H1_int16.hdf5"), { intStrain: true });
    await writeStrainFile(bad("H-H1_512HZ-1187009200-600.hdf5"), {
      ifo: "H1",
      start: 1187009200,
      duration: 600,
      sampleRate: 512,
      dqMask: new Int32Array(600).fill(1),
      samples: (_, n) => new Float64Array(n),
    });
    copyFileSync(join(dir, "data", H1B), bad("H-H1_truncated.hdf5"));
    truncateSync(bad("H-H1_truncated.hdf5"), Math.floor(statSync(bad("H-H1_truncated.hdf5")).size / 2));
    writeFileSync(bad("H-H1_notes.hdf5"), "strain for H1, see the logbook\n".repeat(40));
    // Injection files whose waveform rate or length is inconsistent.
    const times = [1187008100.5, 1187008500.25];
    await badInjectionFile(bad("inj-rate.h5"), { times, rows: { H1: [2, 256], L1: [2, 256] }, sampleRate: 4096, tOffset: -1 });
    await badInjectionFile(bad("inj-length.h5"), { times, rows: { H1: [2, 256], L1: [2, 200] }, sampleRate: 256, tOffset: -0.5 });
    await badInjectionFile(bad("inj-rows.h5"), { times: [...times, 1187008900], rows: { H1: [2, 256], L1: [2, 256] }, sampleRate: 256, tOffset: -0.5 });
    await writeInjectionFile(bad("inj-noL1.h5"), { times: Float64Array.from(times), sampleRate: 256, tOffset: -0.5, length: 256, waveforms: { H1: new Float32Array(512) }, parameters: {} });

    // The strain files go into one campaign: plan lists every problem in one pass, each naming its file.
    const strain = campaign("strain", (c) => c.data.files.push("bad/H-H1_*.hdf5"));
    const withInj = (f: string) => (c: any) => (c.injections = { file: `bad/${f}` });
    writeFileSync(join(dir, "yaml.yaml"), "name: yaml\nifos: [H1, L1\ndata: { files: [data/*.hdf5] }\n");
    const cases = [
      { name: "campaign: malformed YAML", file: "yaml.yaml", expect: [/yaml\.yaml: Flow sequence .* must .* end with a \] at line \d+, column \d+/] },
      { name: "campaign: unknown field", file: campaign("unknown", (c) => (c.inference.kernel_lenght = 1)), expect: [/unknown\.yaml/, /inference: unknown field "kernel_lenght"/] },
      { name: "campaign: wrong type", file: campaign("wrongtype", (c) => (c.inference.batch_size = "lots")), expect: [/wrongtype\.yaml/, /inference\.batch_size: expected an integer number of windows > 0, got "lots"/] },
      { name: "campaign: missing data files", file: campaign("nodata", (c) => (c.data.files = ["data/*.hdf5", "dta/L-L1_*.hdf5"])), expect: [/nodata\.yaml/, /data\.files\[1\]: "dta\/L-L1_\*\.hdf5" matches no file/] },
      { name: "campaign: missing injection file", file: campaign("noinj", withInj("nowhere.h5")), expect: [/noinj\.yaml/, /injections\.file: .*nowhere\.h5: file: does not exist/] },
      { name: "strain: missing strain/Strain", file: strain, line: "H-H1_nostrain.hdf5", expect: [/H-H1_nostrain\.hdf5: strain\/Strain: missing dataset/] },
      { name: "strain: missing attribute Xspacing", file: strain, line: "H-H1_noxspacing.hdf5", expect: [/H-H1_noxspacing\.hdf5: strain\/Strain attribute Xspacing: missing attribute/] },
      { name: "strain: wrong dtype (int16 strain)", file: strain, line: "H-H1_int16.hdf5", expect: [/H-H1_int16\.hdf5: strain\/Strain: wrong dtype .*expected float/] },
      { name: "strain: sample rates differ within a detector", file: strain, line: "H-H1_512HZ-1187009200-600.hdf5", expect: [/H1 files disagree on the sample spacing/, /H-H1_512HZ-1187009200-600\.hdf5 has 0\.001953125 s \(512 Hz\)/, /256 Hz/] },
      { name: "strain: truncated HDF5 file", file: strain, line: "H-H1_truncated.hdf5", expect: [/H-H1_truncated\.hdf5: file: not a readable HDF5 file \(truncated file: eof = \d+/] },
      { name: "strain: not an HDF5 file", file: strain, line: "H-H1_notes.hdf5", expect: [/H-H1_notes\.hdf5: file: not a readable HDF5 file \(file signature not found\)/] },
      { name: "injections: sample_rate inconsistent with the waveforms", file: campaign("injrate", withInj("inj-rate.h5")), expect: [/injections\.file: .*inj-rate\.h5: injections attributes sample_rate, t_offset: 256 samples at 4096 Hz .* does not contain the injection time/] },
      { name: "injections: waveform lengths differ between detectors", file: campaign("injlength", withInj("inj-length.h5")), expect: [/inj-length\.h5: injections\/L1: waveform length 200 differs from 256 in injections\/H1/] },
      { name: "injections: injections/time length differs from waveform rows", file: campaign("injrows", withInj("inj-rows.h5")), expect: [/inj-rows\.h5: injections\/H1: expected shape \[3, L\] \(one row per injections\/time entry\), got \[2,256\]/] },
      { name: "injections: no waveforms for a detector", file: campaign("injnol1", withInj("inj-noL1.h5")), expect: [/inj-noL1\.h5: injections\/L1: missing: no waveforms for L1/] },
    ];
    const ran = await planAll(cases.map((c) => c.file));
    for (const c of cases) {
      const r = ran.get(c.file)!;
      expect.soft(r.code, `${c.name}: exit status (stderr: ${r.stderr})`).toBe(2);
      expect.soft(r.stdout, c.name).toBe("");
      expect.soft(r.stderr, c.name).not.toMatch(/\n\s+at /); // no stack trace
      for (const re of c.expect) expect.soft(r.stderr, c.name).toMatch(re);
    }
    for (const c of cases as Array<(typeof cases)[number] & { line?: string }>) {
      const r = ran.get(c.file)!;
      if (r.code !== 2 || !c.expect.every((re) => re.test(r.stderr))) continue;
      // With several problems listed, the one about this case's file.
      const detail = c.line ? r.stderr.split("\n").find((l) => l.includes(c.line!))!.trim().replaceAll(dir + "/", "") : shown(r);
      record(c.name, "refused", `timeslide plan: "${detail}" (exit ${r.code}${c.line ? "; every bad file listed in one run" : ""})`);
    }
  });

  it("a model whose shapes do not fit the campaign: `timeslide submit` asks the server and exits 2; an unreachable server only warns", async () => {
    const cases = [
      {
        name: "model: kernel differs from the campaign's",
        file: campaign("mkernel", (c) => (c.inference.kernel_length = 2)),
        expect: [/mkernel\.yaml/, /model detector-stream on 127\.0\.0\.1:\d+: step detector input "whitened" takes windows of shape \[-1, 2, 128\], the campaign's windows are \[2, 256\]/, /inference\.kernel_length 2 s × data\.sample_rate 128 Hz/],
      },
      {
        name: "model: streaming update length differs (stride × batch)",
        file: campaign("mbatch", (c) => (c.inference.batch_size = 16)),
        expect: [/streaming input "update" has shape \[1, 2, 2048\], the campaign sends \[1, 2, 1024\]/, /stride 64 × inference\.batch_size 16/],
      },
      {
        name: "model: plain model's window length differs",
        file: campaign("mplain", (c) => ((c.model.name = "detector"), (c.inference.kernel_length = 0.5))),
        expect: [/model detector on .*: input "whitened" has shape \[-1, 2, 128\], the campaign sends windows \[batch, 2, 64\]/],
      },
      { name: "model: not on the server", file: campaign("mname", (c) => (c.model.name = "detector-strem")), expect: [/model\.name: server 127\.0\.0\.1:\d+ has no model detector-strem/] },
    ];
    const ran = await Promise.all(cases.map((c) => cli(["submit", c.file])));
    const redis = new Redis(REDIS_URL);
    try {
      for (const [i, c] of cases.entries()) {
        const r = ran[i];
        expect(r.code, `${c.name}: ${r.stderr}`).toBe(2);
        for (const re of c.expect) expect(r.stderr, c.name).toMatch(re);
        // Refused before anything was queued.
        expect(await redis.exists(campaignKeys(prefix, c.file.replace(".yaml", "")).meta), c.name).toBe(0);
        record(c.name, "refused", `timeslide submit: "${shown(r, 360)}" (exit ${r.code}; nothing queued)`);
      }
      // A server that can't be reached: submitted, with a warning (workers check again).
      const closed = await freePort();
      const r = await cli(["submit", campaign("munreach", (c) => (c.model.servers = [`127.0.0.1:${closed}`]))]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stderr).toMatch(new RegExp(`warning: model\\.servers: could not ask 127\\.0\\.0\\.1:${closed} for model detector-stream, so its shapes were not checked \\(.*UNAVAILABLE`));
      expect(await redis.exists(campaignKeys(prefix, "munreach").meta)).toBe(1);
      // (No outcome record: nothing is refused or lost; the README documents the choice.)
    } finally {
      redis.disconnect();
    }
  });

  it("queued jobs gone bad: workers fail them for good with the plan's livetime lost, finish the rest and keep running", async () => {
    // Data with NaN inside a good (DATA) stretch of H1: [1187008100, 1187008102).
    mkdirSync(join(dir, "nandata"), { recursive: true });
    mkdirSync(join(dir, "truncdata"), { recursive: true });
    for (const f of readdirSync(join(dir, "data")).filter((f) => f.endsWith(".hdf5"))) {
      copyFileSync(join(dir, "data", f), join(dir, "nandata", f));
      copyFileSync(join(dir, "data", f), join(dir, "truncdata", f));
    }
    await h5wasm.ready;
    const f = new h5wasm.File(join(dir, "nandata", H1A), "a");
    (f.get("strain/Strain") as any).write_slice([[100 * 256, 102 * 256]], new Float64Array(512).fill(NaN));
    f.close();

    const names = ["wnan", "wpayload", "wpaths", "wmodel", "wtrunc"];
    const files = {
      wnan: campaign("wnan", (c) => (c.data.files = ["nandata/*.hdf5"])),
      wpayload: campaign("wpayload"),
      wpaths: campaign("wpaths"),
      wmodel: campaign("wmodel", (c) => (c.inference.batch_size = 16)),
      wtrunc: campaign("wtrunc", (c) => (c.data.files = ["truncdata/*.hdf5"])),
    };
    for (const n of names) await cliOk(["submit", files[n as keyof typeof files], ...(n === "wmodel" ? ["--no-model-check"] : [])]);

    const redis = new Redis(REDIS_URL);
    const queues = Object.fromEntries(names.map((n) => [n, openQueue(redis, prefix, n)]));
    try {
      // What was planned, read back before anything is edited.
      const planned: Record<string, Map<string, JobPayload>> = {};
      for (const n of names) planned[n] = new Map((await queues[n].getJobs(["waiting", "prioritized"])).map((j) => [j.id!, j.data]));
      for (const n of names) expect(planned[n].size, n).toBe(6);
      const ids = (n: string, tag: string) => [...planned[n].keys()].filter((id) => id.startsWith(tag)).sort();

      // Payloads edited in Redis.
      const [fg0] = ids("wpayload", "fg-");
      const [bg0, bg1] = ids("wpayload", "bg-");
      const fgJob = (await queues.wpayload.getJob(fg0))!;
      await fgJob.updateData({ ...fgJob.data, livetime: "lots" } as unknown as JobPayload); // fails the schema
      const moved = { ...planned.wpayload.get(bg0)!, span: planned.wpayload.get(bg0)!.span.map((t) => t + 100) };
      await redis.hset(`${prefix}:wpayload:${bg0}`, "data", JSON.stringify(moved)); // valid, but not the plan's
      await redis.hset(`${prefix}:wpayload:${bg1}`, "data", JSON.stringify({ ...planned.wpayload.get(bg1)!, campaign: "wnan" })); // another campaign's
      const escape = "../../escape";
      await queues.wpayload.add("bg", planned.wpayload.get(bg1)!, { jobId: escape, attempts: 3 }); // not a planned job; its id would be a path
      // Campaign metadata edited in Redis: data files and output elsewhere.
      const elsewhere = join(dir, "elsewhere");
      await redis.hset(campaignKeys(prefix, "wpaths").meta, {
        files: JSON.stringify({ H1: ["/etc/passwd"], L1: [join(dir, "data", "..", "..", "L1.hdf5")] }),
        output: elsewhere,
      });
      // A data file cut short on disk after submit.
      const tr = join(dir, "truncdata", H1B);
      truncateSync(tr, Math.floor(statSync(tr).size / 2));

      const worker = start(["worker", ...names, "--lock", "10"]);
      const deadline = Date.now() + 150_000;
      const done = async () => (await Promise.all(names.map((n) => campaignStatus(redis, prefix, n)))).every((s) => s.done);
      while (!(await done()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 500));
      expect(await done(), `campaigns not done; worker stderr: ${worker.stderr().slice(-3000)}`).toBe(true);

      const failures = async (n: string) => Object.fromEntries(Object.entries(await redis.hgetall(campaignKeys(prefix, n).failures)).map(([k, v]) => [k, JSON.parse(v) as JobFailure]));
      const results = async (n: string) => Object.fromEntries(Object.entries(await redis.hgetall(campaignKeys(prefix, n).results)).map(([k, v]) => [k, JSON.parse(v) as JobSummary]));
      /** Failed jobs are exactly `bad`, failed at once (one attempt), each losing its planned livetime; every other job completed with its planned livetime. */
      const accounted = async (n: string, bad: string[], reason: (id: string) => RegExp) => {
        const fl = await failures(n);
        const rs = await results(n);
        expect(Object.keys(fl).sort(), n).toEqual([...bad].sort());
        for (const id of bad) {
          expect(fl[id].reason, `${n} ${id}`).toMatch(reason(id));
          expect(fl[id].attempts, `${n} ${id}: refused at once, not retried`).toBe(1);
          expect(fl[id].livetime_lost, `${n} ${id}`).toBe(planned[n].get(id)!.livetime);
        }
        const good = [...planned[n].keys()].filter((id) => !bad.includes(id));
        expect(Object.keys(rs).sort(), n).toEqual(good.sort());
        for (const id of good) expect(rs[id].livetime, `${n} ${id}`).toBe(planned[n].get(id)!.livetime);
        const st = await campaignStatus(redis, prefix, n);
        const lost = bad.reduce((a, id) => a + planned[n].get(id)!.livetime, 0);
        expect(st.livetime.lost_s, n).toBe(lost);
        expect(st.jobs, n).toMatchObject({ total: 6, completed: good.length, failed: bad.length });
        return { fl, lost, st };
      };

      // NaN inside a good segment: the jobs that read it fail, the others complete.
      const nanBad = ids("wnan", "").filter((id) => id.includes("-1187008000-"));
      expect(nanBad.length).toBe(2);
      const nan = await accounted("wnan", nanBad, (id) => new RegExp(`^job ${id}: H1 has no valid data \\(NaN or no file\\) at \\[1187008100, 1187008102\\) inside the good segment \\[1187008000, 1187008737\\)`));
      record("strain: NaN inside a good segment (queued job)", "lost livetime", `worker: "${nan.fl[nanBad[0]].reason}"; ${nanBad.length} of 6 jobs failed for good at once, ${nan.lost} s reported lost, the other 4 completed`);

      // Payloads: each edited job refused for good, the plan's livetime lost; the untouched jobs complete.
      const pay = await accounted("wpayload", [fg0, bg0, bg1], (id) =>
        id === fg0 ? /invalid payload: livetime: Invalid input: expected number, received string/ : id === bg0 ? /payload field span is \[\d+,\d+\], the campaign's plan says \[\d+,\d+\]/ : /payload field campaign is "wnan", but the job is on campaign wpayload's queue: refused/,
      );
      record("job payload: schema broken via job.updateData", "lost livetime", `worker: "${pay.fl[fg0].reason.slice(0, 160)}"; failed for good at once, planned ${planned.wpayload.get(fg0)!.livetime} s reported lost (not the payload's "lots")`);
      record("job payload: span edited in the job hash", "lost livetime", `worker: "${pay.fl[bg0].reason.slice(0, 200)}"; failed for good, planned livetime reported lost`);
      record("job payload: campaign field points at another campaign", "lost livetime", `worker: "${pay.fl[bg1].reason}"; failed for good, nothing recorded in the other campaign`);
      expect(await redis.hlen(campaignKeys(prefix, "wnan").results)).toBe(4); // the other campaign untouched
      // A job added by hand with a path for an id: refused, nothing written, not counted.
      const added = await queues.wpayload.getJob(escape);
      expect(added?.failedReason).toMatch(/not a job id timeslide plans .*: refused/);
      expect(existsSync(join(dir, "escape.h5"))).toBe(false);
      expect(existsSync(join(dir, "results", "escape.h5"))).toBe(false);
      expect(readdirSync(join(dir, "results", "wpayload", "jobs")).sort()).toEqual(ids("wpayload", "").filter((id) => ![fg0, bg0, bg1].includes(id)).map((id) => `${id}.h5`).sort());
      record("job added by hand with a path as its id", "refused", `worker: "${added!.failedReason}"; no file written, not counted in the campaign (6 jobs, 3 completed, 3 failed)`);

      // An altered copy of a completed job re-queued: refused, the recorded result stays.
      const [fgDone] = ids("wpayload", "fg-").filter((id) => id !== fg0);
      const before = await redis.hget(campaignKeys(prefix, "wpayload").results, fgDone);
      await queues.wpayload.add("fg", { ...planned.wpayload.get(fgDone)!, livetime: 1e6 }, { jobId: fgDone, attempts: 3 });
      let again = await queues.wpayload.getJob(fgDone);
      for (let i = 0; i < 60 && !again?.failedReason; i++) {
        await new Promise((r) => setTimeout(r, 250));
        again = await queues.wpayload.getJob(fgDone);
      }
      expect(again?.failedReason).toMatch(new RegExp(`job ${fgDone}: payload field livetime is 1000000, the campaign's plan says \\d+`));
      await new Promise((r) => setTimeout(r, 500)); // the failure handler has run
      expect(await redis.hget(campaignKeys(prefix, "wpayload").results, fgDone)).toBe(before);
      expect((await campaignStatus(redis, prefix, "wpayload")).jobs).toMatchObject({ completed: 3, failed: 3 });
      record("completed job re-queued with an altered payload", "refused", `worker: "${again!.failedReason}"; the recorded result and the counts stay`);

      // Metadata paths outside the campaign's data and output roots: every job refused, nothing read or written there.
      const all = ids("wpaths", "");
      const paths = await accounted("wpaths", all, () => /^(?=.*files\.H1\[0\] "\/etc\/passwd" is outside the data roots of data\.files \(.*\/data\))(?=.*output ".*elsewhere" is not the campaign's output directory .*results\/wpaths)/s);
      expect(existsSync(elsewhere)).toBe(false);
      record("campaign metadata: data files and output moved outside their roots", "lost livetime", `worker: "${paths.fl[all[0]].reason.slice(0, 400)}"; all 6 jobs failed for good, ${paths.lost} s reported lost, nothing written outside`);

      // A model that does not fit, submitted without the check: the worker's check refuses every job.
      const model = await accounted("wmodel", ids("wmodel", ""), () => /the model does not fit the campaign: model detector-stream on .*streaming input "update" has shape \[1, 2, 2048\], the campaign sends \[1, 2, 1024\]/);
      record("model: shapes differ, submitted with --no-model-check", "lost livetime", `worker: "${model.fl[ids("wmodel", "")[0]].reason.slice(0, 220)}"; all 6 jobs failed for good at once, ${model.lost} s reported lost`);

      // A data file cut short on disk after submit.
      // Only the jobs that need the damaged file's time fail; those of the first chunk, before it, complete.
      const truncBad = ids("wtrunc", "").filter((id) => !id.includes("-1187008000-"));
      const trunc = await accounted("wtrunc", truncBad, (id) =>
        new RegExp(`^job ${id}: H1 has no valid data \\(NaN or no file\\) at \\[[\\d.]+, [\\d.]+\\) inside the good segment .*; unreadable: .*${H1B}: file: not a readable HDF5 file \\(truncated file`),
      );
      record("strain: file truncated on disk after submit (queued job)", "lost livetime", `worker: "${trunc.fl[truncBad[0]].reason.slice(0, 300)}"; ${truncBad.length} of 6 jobs failed for good, ${trunc.lost} s reported lost; the 2 jobs before the file's time completed`);

      // The worker kept running throughout, and stops cleanly.
      expect(worker.child.exitCode).toBe(null);
      await new Promise((r) => (worker.child.once("exit", r), worker.child.kill("SIGTERM")));
      expect(worker.child.exitCode).toBe(0);
    } finally {
      await Promise.all(Object.values(queues).map((q) => q.close()));
      redis.disconnect();
    }
  });
});
