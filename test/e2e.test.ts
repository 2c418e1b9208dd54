// A small campaign through separate processes, as a site runs it: synthetic
// data and a model repository written by the CLI, the embedded server and
// two workers as processes, the coordinator's submit and status, and the
// aggregator (triggered by the last job, then again on demand), over a real
// Redis with a key prefix of its own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { freePort } from "@timeslide/campaign";
import { cliProcesses } from "./cli-processes.js";

const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tse2e-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-e2e-"));
const env = { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };
const { cli, start, cleanup } = cliProcesses(dir, env);




let port = 0;
beforeAll(async () => {
  cli(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "20m", "--sample-rate", "256", "--file-duration", "600", "--gaps", "1", "--injections", "8", "--snr", "15:40", "--seed", "3"]);
  cli(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"]);
  port = await freePort();
  start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1"]);
  writeFileSync(
    join(dir, "campaign.yaml"),
    `name: e2e
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: 128, segments: { flags: [DATA], min_duration: 120 } }
model: { name: detector-stream, servers: ["127.0.0.1:${port}"] }
inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20 }
background: { livetime: 1d, step: 2, max_job_duration: 400, job_livetime: 6h }
injections: { file: data/injections.h5 }
output: results
`,
  );
}, 120_000);

afterAll(() => cleanup(REDIS_URL, prefix));

describe("a campaign through separate processes", () => {
  it("plans, submits, runs on two workers and the server, aggregates and reports", async () => {
    const plan = JSON.parse(cli(["plan", "campaign.yaml", "--json"]));
    expect(plan.livetime.background_s).toBeGreaterThanOrEqual(86_400);
    const submitted = JSON.parse(cli(["submit", "campaign.yaml", "--json"]));
    expect(submitted.added).toBe(plan.jobs.total);

    const workers = [start(["worker", "e2e"]), start(["worker", "e2e"])];
    const deadline = Date.now() + 240_000;
    let status = JSON.parse(cli(["status", "e2e", "--json"]));
    while (!status.done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      status = JSON.parse(cli(["status", "e2e", "--json"]));
    }
    expect(status.done).toBe(true);
    expect(status.jobs.failed).toBe(0);
    expect(status.livetime.background_s).toBe(plan.livetime.background_s);

    // The last job to finish triggered the aggregation.
    const reportPath = join(dir, "results", "report.json");
    const htmlPath = join(dir, "results", "report.html"); // written last
    for (let i = 0; i < 240 && !existsSync(htmlPath); i++) await new Promise((r) => setTimeout(r, 250));
    const report = JSON.parse(readFileSync(reportPath, "utf8"));
    expect(report.campaign).toBe("e2e");
    expect(report.livetime.background_s).toBe(plan.livetime.background_s);
    expect(report.livetime.foreground_s).toBe(plan.livetime.foreground_s);
    expect(report.jobs).toMatchObject({ total: plan.jobs.total, completed: plan.jobs.total, failed: 0 });
    expect(report.far_curve.length).toBeGreaterThan(0);
    expect(report.foreground.length).toBeGreaterThan(0);
    for (const c of report.foreground) expect(c.p_value).toBeGreaterThan(0);
    expect(report.injections.injected).toBeGreaterThan(0);
    expect(existsSync(join(dir, "results", "report.html"))).toBe(true);
    expect(existsSync(join(dir, "results", "background.h5"))).toBe(true);

    // `far` on the aggregated files agrees with the report.
    const far = JSON.parse(cli(["far", "--background", "results/background.h5", "--foreground", "results/foreground.h5", "--json"]));
    expect(far.livetime.background_s).toBe(report.livetime.background_s);
    expect(far.foreground.map((c: { far_per_year: number }) => c.far_per_year)).toEqual(report.foreground.map((c: { far_per_year: number }) => c.far_per_year));

    // Workers stop cleanly on SIGTERM.
    await Promise.all(workers.map((w) => new Promise((r) => (w.once("exit", r), w.kill("SIGTERM")))));
    for (const w of workers) expect(w.exitCode).toBe(0);
  });
});
