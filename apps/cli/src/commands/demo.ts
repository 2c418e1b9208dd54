import type { Command } from "commander";
import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { z } from "zod";
import {
  campaignStatus,
  cancelCampaign,
  connectRedis,
  ensureRedis,
  freePort,
  prepareCampaign,
  redactRedisUrl,
  submitCampaign,
  type EnsuredRedis,
} from "@timeslide/campaign";
import { formatDuration, parseDuration } from "@timeslide/segments";
import { synthesize } from "@timeslide/strain";
import { demoBankOptions, writeDemoRepository } from "@timeslide/model-repo";
import { InferenceClient } from "@timeslide/kserve";
import { run } from "../errors.js";
import { createProgress } from "../progress.js";

const MAIN = fileURLToPath(new URL("../main.js", import.meta.url));
const PREFIX = "timeslide-demo";
const CAMPAIGN = "demo";

// The demo's analysis (factorized: the campaign names the pair
// detector-slides with model.factorized; a job encodes each detector once
// and runs the head for its shifts, so a year of circular slides from 2 h
// of data fits the demo's time; the planner packs 64 d per factorized job,
// so few jobs encode their spans again): a physical chirp bank (model-repo bank.ts) at the
// data's rate, 256 Hz: synth's chirps (M_c 10–30 from 30 Hz) end below
// 191 Hz and their SNR is counted up to the data's Nyquist, 128 Hz, so the
// analysis keeps all of it. Windows of 1.75 s = a 0.625 s template + one
// stride (1 s) + 33 samples, so consecutive windows overlap by more than the
// coincidence window and a coincident pair is never split between windows.
// fftlength 1 s = fduration: the 16 s burn-in then averages 31 Welch segments
// instead of 7, and the bank starts at 30 Hz, above where 1 s segments leak
// the wall. (The campaign default, 4 s, now gives a background within ~3 %
// of this at the same FAR; before the whitening averaged a fine PSD over
// the filter's resolution it came out ~40 % louder: README, The demo search.)
const DEMO = { dataRate: 256, sampleRate: 256, kernel: 1.75, isr: 1, batch: 256, psd: 16, fduration: 1, fftlength: 1, highpass: 20 };
/** the demo bank: templates of 160 samples (0.625 s) at DEMO.sampleRate, 16 templates, 4 χ² bins */

const Opts = z.object({
  out: z.string().min(1),
  workers: z.coerce.number().int().min(1).max(16),
  duration: z.string().transform((s, ctx) => {
    const v = parseDuration(s);
    if (!(v >= 600)) ctx.addIssue({ code: "custom", message: `--duration: expected at least 600 s, got ${JSON.stringify(s)}` });
    return Math.round(v);
  }),
  background: z.string().transform((s, ctx) => {
    const v = parseDuration(s);
    if (!(v > 0)) ctx.addIssue({ code: "custom", message: `--background: expected a duration such as 30d, got ${JSON.stringify(s)}` });
    return v;
  }),
  seed: z.coerce.number().int(),
  clean: z.boolean().optional(),
  glitchRate: z.coerce.number().min(0, "--glitch-rate: expected >= 0 per minute").optional(),
});

const say = (msg: string) => process.stderr.write(`demo: ${msg}\n`);

/** Children of the demo, stopped on exit, Ctrl-C or error. */
class Processes {
  readonly #children: Array<{ name: string; child: ChildProcess }> = [];
  start(name: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): ChildProcess {
    const log = createWriteStream(logFile);
    const child = spawn(process.execPath, [MAIN, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
    child.once("exit", (code, signal) => {
      if (!this.stopping && code !== 0) say(`${name} exited (${signal ?? code}); see ${logFile}`);
    });
    this.#children.push({ name, child });
    return child;
  }
  stopping = false;
  async stopAll(graceMs = 15_000): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.#children.map(
        ({ child }) =>
          new Promise<void>((done) => {
            if (child.exitCode !== null || child.signalCode !== null) return done();
            const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
            child.once("exit", () => {
              clearTimeout(t);
              done();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  }
}

interface Report {
  livetime: { background_s: number; background_years: number; foreground_s: number };
  jobs: { total: number; completed: number; failed: number };
  foreground: Array<{ time: number; detection_statistic: number; far_per_year: number; ifar_years: number; p_value: number; saturated: boolean }>;
  injections?: { injected: number; found: Array<{ far_per_year: number; found: number; efficiency: number }> };
}

export function registerDemo(program: Command): void {
  program
    .command("demo")
    .description("a complete small campaign on this machine: synthetic data, model repository, embedded server, Redis, two workers, report")
    .option("--out <dir>", "output directory", "demo-out")
    .option("--workers <n>", "worker processes", "2")
    .option("--duration <d>", "synthetic data per detector", "2h")
    .option("--background <d>", "background livetime to reach (circular slides through the factorized pair: each detector encoded once per job, the head per shift)", "1y")
    .option("--seed <n>", "seed of the synthetic data", "1")
    .option("--clean", "stationary Gaussian data (timeslide synth --clean) instead of the realistic default, e.g. to compare")
    .option("--glitch-rate <per-min>", "glitches per minute per detector in the realistic data (default 0.5)")
    .addHelpText("after", "\nExamples:\n  npm run demo\n  timeslide demo --out /tmp/demo --background 60d")
    .action((raw: Record<string, string>) => run(() => demo(raw)));
}

async function demo(raw: Record<string, string>): Promise<void> {
  const parsed = Opts.safeParse(raw);
  if (!parsed.success) throw new Error(`demo: ${parsed.error.issues[0].message}`);
  const o = parsed.data;
  const out = resolve(o.out);
  const t0 = Date.now();
  const procs = new Processes();
  let redisHandle: EnsuredRedis | undefined;
  let interrupted = false;
  const onSignal = () => {
    if (interrupted) return;
    interrupted = true;
    say("interrupted: stopping everything the demo started");
    void procs.stopAll(5000).then(() => redisHandle?.stop()).finally(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    rmSync(join(out, "results"), { recursive: true, force: true }); // a previous demo's results
    mkdirSync(join(out, "logs"), { recursive: true });
    say(
      `[1/6] synthetic data: H1, L1, ${formatDuration(o.duration)} at ${DEMO.dataRate} Hz, ` +
        (o.clean ? "clean (stationary Gaussian), " : "realistic (low-frequency wall, lines, drift, glitches), ") +
        `with gaps and injections -> ${join(out, "data")}`,
    );
    const data = await synthesize({
      out: join(out, "data"),
      ifos: ["H1", "L1"],
      duration: o.duration,
      sampleRate: DEMO.dataRate,
      fileDuration: 1800,
      gaps: 2,
      injections: Math.max(10, Math.round(o.duration / 120)),
      snr: [6, 30],
      seed: o.seed,
      clean: o.clean,
      glitchRate: o.clean ? undefined : o.glitchRate,
    });
    if (data.glitchFile) say(`      ${Object.values(data.glitches).reduce((a, g) => a + g.length, 0)} glitches, listed in ${data.glitchFile}`);

    say(`[2/6] model repository (the physical chirp bank: whole model detector-stream and the factorized pair detector-slides) -> ${join(out, "models")}`);
    const kernel = DEMO.kernel * DEMO.sampleRate;
    const stride = DEMO.sampleRate / DEMO.isr;
    // One snapshotter instance (sequence slot) per stream: workers × 4 sequences each.
    writeDemoRepository(join(out, "models"), {
      nIfo: 2,
      kernel,
      stride,
      batch: DEMO.batch,
      streams: o.workers * 4,
      bank: demoBankOptions(DEMO.sampleRate, DEMO.highpass),
      factorized: { ifos: ["H1", "L1"] },
    });

    redisHandle = await ensureRedis();
    const redisUrl = redisHandle.url;
    say(`[3/6] Redis: ${redactRedisUrl(redisUrl)} (${redisHandle.source === "private" ? "a private redis-server started for the demo" : redisHandle.source})`);
    const port = await freePort();
    const env = { REDIS_URL: redisUrl, TIMESLIDE_PREFIX: PREFIX, LOG_LEVEL: "warn" };
    procs.start("server", ["serve", "--repo", join(out, "models"), "--host", "127.0.0.1", "--port", String(port), "--threads", "2"], env, join(out, "logs", "server.log"));
    const client = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
    try {
      await client.waitForReady({ timeoutMs: 30_000, model: "detector-slides" });
    } finally {
      client.close();
    }
    say(`      embedded inference server on 127.0.0.1:${port}`);

    const campaignFile = join(out, "campaign.yaml");
    writeFileSync(
      campaignFile,
      `# Written by \`timeslide demo\`.
name: ${CAMPAIGN}
ifos: [H1, L1]
data:
  files: ["data/*.hdf5"]
  sample_rate: ${DEMO.sampleRate}
  segments: { flags: [DATA, CBC_CAT1], min_duration: 300 }
model: { name: detector-slides, factorized: true, servers: ["127.0.0.1:${port}"] }
inference:
  kernel_length: ${DEMO.kernel}
  inference_sampling_rate: ${DEMO.isr}
  batch_size: ${DEMO.batch}
  psd_length: ${DEMO.psd}
  fduration: ${DEMO.fduration}
  fftlength: ${DEMO.fftlength}
  highpass: ${DEMO.highpass}
background: { livetime: ${Math.round(o.background)}, step: 2, max_job_duration: 1800, circular: true }
injections: { file: ${data.injectionFile ? "data/" + data.injectionFile.split("/").pop() : "none"}, window: 2 }
postprocess: { integration_window: 1, cluster_window: 8 }
output: results
`,
    );
    const redis = await connectRedis(redisUrl);
    try {
      await cancelCampaign(redis, PREFIX, CAMPAIGN, true); // a previous demo's queue and results
      const { campaign, plan } = await prepareCampaign(campaignFile);
      const r = await submitCampaign({ redis, prefix: PREFIX, campaign, plan });
      say(
        `[4/6] submitted: ${r.added} jobs, ${plan.shiftTable.length - 1} time slides, background ${formatDuration(plan.livetime.background_s)}, ` +
          `foreground ${formatDuration(plan.livetime.foreground_s)}`,
      );

      for (let i = 0; i < o.workers; i++)
        procs.start(`worker ${i + 1}`, ["worker", CAMPAIGN, "--servers", `127.0.0.1:${port}`, "--sequences", "4"], env, join(out, "logs", `worker-${i + 1}.log`));
      say(`[5/6] ${o.workers} workers running (logs in ${join(out, "logs")})`);

      const progress = createProgress("background livetime (s)", Math.round(plan.livetime.background_s));
      let s = await campaignStatus(redis, PREFIX, CAMPAIGN);
      while (!s.done) {
        await new Promise((r) => setTimeout(r, 1000));
        s = await campaignStatus(redis, PREFIX, CAMPAIGN);
        progress.update(Math.round(s.livetime.background_s), { jobs_done: s.jobs.completed, jobs: s.jobs.total, failed: s.jobs.failed });
        if (procs.stopping) break;
      }
      progress.stop();

      const reportJson = join(campaign.output, "report.json");
      const reportHtml = join(campaign.output, "report.html"); // the aggregator writes it last
      say("[6/6] aggregating");
      const deadline = Date.now() + 120_000;
      while (!existsSync(reportHtml) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 250));
      if (!existsSync(reportHtml)) throw new Error(`no report after the campaign finished; see ${join(out, "logs")}`);
      printSummary(JSON.parse(readFileSync(reportJson, "utf8")) as Report, campaign.output, (Date.now() - t0) / 1000);
    } finally {
      redis.disconnect();
    }
  } finally {
    await procs.stopAll();
    await redisHandle?.stop();
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
  }
}

function printSummary(r: Report, dir: string, seconds: number): void {
  const lines = [
    "",
    `timeslide demo finished in ${seconds.toFixed(0)} s`,
    `  background livetime: ${formatDuration(r.livetime.background_s)} (${r.livetime.background_years.toFixed(4)} y); foreground ${formatDuration(r.livetime.foreground_s)}`,
    `  jobs: ${r.jobs.completed} completed, ${r.jobs.failed} failed of ${r.jobs.total}`,
    "  loudest foreground candidates:",
    "      GPS time       statistic   FAR (/y)     p-value",
  ];
  for (const c of [...r.foreground].sort((a, b) => b.detection_statistic - a.detection_statistic).slice(0, 5)) {
    lines.push(
      `    ${c.time.toFixed(2).padStart(14)}  ${c.detection_statistic.toFixed(3).padStart(9)}  ${(c.saturated ? "<" : " ") + c.far_per_year.toExponential(2).padStart(10)}  ${c.p_value.toExponential(2)}`,
    );
  }
  if (r.injections) {
    // found at the thresholds nearest one per month and one per day
    for (const want of [12, 365.25]) {
      const at = [...r.injections.found].sort((a, b) => Math.abs(Math.log(a.far_per_year / want)) - Math.abs(Math.log(b.far_per_year / want)))[0];
      if (at) lines.push(`  injections: ${at.found} of ${r.injections.injected} found at FAR ≤ ${at.far_per_year.toPrecision(3)} /y (efficiency ${(at.efficiency * 100).toFixed(0)}%)`);
    }
  }
  lines.push(`  report: ${join(dir, "report.html")} (and report.json)`, "");
  process.stdout.write(lines.join("\n") + "\n");
}
