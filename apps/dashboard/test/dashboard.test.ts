// The dashboard on a real campaign: synthetic data, the embedded server
// registered in Redis, workers and `status --json` as processes (the e2e
// helper), the dashboard in this process, the page in headless Chromium.
// Redis is the real one (REDIS_URL or 127.0.0.1:6379) under a prefix of its own.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { connect } from "node:net";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Writable } from "node:stream";
import { Queue } from "bullmq";
import { Redis } from "ioredis";
import { pino } from "pino";
import { chromium, type Browser, type Page } from "playwright-core";
import { connectRedis, freePort, type CampaignStatus } from "@timeslide/campaign";
import { InferenceClient, registryKey } from "@timeslide/kserve";
import { ReportJson } from "@timeslide/report";
import { cliProcesses } from "../../../test/cli-processes.js";
import { startDashboard, type RunningDashboard } from "../src/index.js";

const YEAR = 31_557_600;
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const prefix = `tsdash-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-dash-"));
const env = { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix, LOG_LEVEL: "warn" };
const { cli, cliAsync, start, children, cleanup } = cliProcesses(dir, env);
/** TIMESLIDE_WRITE_SCREENSHOT=1 rewrites it */
const SCREENSHOT = join(import.meta.dirname, "../../../docs/dashboard.png");

// A password the dashboard is given in its Redis URL and that the campaign
// file carries in queue.redis (stored in Redis with the spec). A Redis with no
// password accepts it (ioredis only warns); one with a password keeps its own.
const SECRET = `dash-secret-${randomBytes(6).toString("hex")}`;
const secretUrl = (() => {
  const u = new URL(REDIS_URL);
  if (!u.password) u.password = SECRET;
  return u.toString();
})();
const secrets = [SECRET, new URL(REDIS_URL).password].filter((s) => s.length >= 4);

let redis: Redis;
let dashRedis: Redis;
let dash: RunningDashboard;
let browser: Browser;
let page: Page;
const logLines: string[] = [];
const pageErrors: string[] = [];
const offsite: string[] = [];

type Fields = Record<string, unknown>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The numbers of one campaign's card, as the page holds them (data-v: the exact JSON value). */
async function card(name: string): Promise<Fields | null> {
  return page.$eval("body", (body, n) => {
    const c = body.querySelector(`[data-campaign="${n}"]`);
    if (!c) return null;
    const out: Record<string, unknown> = { seq: Number(body.getAttribute("data-seq")) };
    for (const e of c.querySelectorAll("[data-k]")) out[e.getAttribute("data-k")!] = JSON.parse(e.getAttribute("data-v")!);
    out.failures = [...c.querySelectorAll("table.failures tr[data-job]")].map((r) => ({ job: r.getAttribute("data-job"), reason: r.querySelector(".reason")?.textContent }));
    out.report_head = c.querySelector(".report-head")?.textContent ?? null;
    out.loudest = [...c.querySelectorAll("table.loudest tr[data-time]")].map((r) => Number(r.getAttribute("data-time")));
    out.plot_marks = c.querySelectorAll("figure.plot svg .mark-line path, figure.plot svg .mark-symbol path").length;
    return out;
  }, name);
}

async function servers() {
  return page.$$eval("#servers tr[data-endpoint]", (rows) =>
    rows.map((r) => ({
      endpoint: r.getAttribute("data-endpoint"),
      ready: JSON.parse(r.querySelector('[data-k="ready"]')!.getAttribute("data-v")!),
      in_flight: JSON.parse(r.querySelector('[data-k="in_flight"]')!.getAttribute("data-v")!),
      models: [...r.querySelectorAll("[data-model]")].map((m) => ({ name: m.getAttribute("data-model"), rps: JSON.parse(m.getAttribute("data-rps")!), text: m.textContent })),
      source: r.querySelector("[data-source]")!.getAttribute("data-source"),
      listedBy: r.querySelector("[data-source]")!.textContent,
    })),
  );
}

async function workers() {
  return page.$$eval("#workers tr[data-worker]", (rows) =>
    rows.map((r) => ({
      name: r.getAttribute("data-worker"),
      alive: JSON.parse(r.querySelector('[data-k="alive"]')!.getAttribute("data-v")!),
      running: JSON.parse(r.querySelector('[data-k="jobs_running"]')!.getAttribute("data-v")!),
    })),
  );
}

/** The page after the next refresh (one that started after this call). */
async function nextRefresh(): Promise<void> {
  await dash.nextSnapshot();
  const s = (await dash.nextSnapshot()).seq;
  for (let i = 0; Number(await page.getAttribute("body", "data-seq")) < s; i++) {
    expect(i, "the page follows the dashboard's refreshes").toBeLessThan(100);
    await sleep(100);
  }
}

// not spawnSync: the dashboard under test runs in this process and must keep refreshing
const status = async (): Promise<CampaignStatus> => JSON.parse(await cliAsync(["status", "dash", "--json"]));

/** Every count and livetime of the page against `status --json`; time-dependent rate and ETA apart. */
function expectSameNumbers(p: Fields, s: CampaignStatus) {
  expect(p.state).toBe(s.state);
  expect(p.done).toBe(s.done);
  for (const [k, v] of Object.entries(s.jobs)) expect(p[`jobs.${k}`], `jobs.${k}`).toBe(v);
  for (const [k, v] of Object.entries(s.livetime)) expect(p[`livetime.${k}`], `livetime.${k}`).toBe(v);
  expect(p.far_reach_per_year).toBe(s.livetime.background_s > 0 ? YEAR / s.livetime.background_s : null);
}

const stopped = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null ? r() : c.once("exit", () => r())));

beforeAll(async () => {
  redis = new Redis(REDIS_URL);
  cli(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "20m", "--sample-rate", "256", "--file-duration", "600", "--gaps", "1", "--seed", "5"]);
  cli(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"]);
  const port = await freePort();
  start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1", "--register", "redis", "--advertise", `127.0.0.1:${port}`]);
  for (let i = 0; i < 200 && !(await redis.zscore(registryKey(prefix), `127.0.0.1:${port}`)); i++) await sleep(250);
  writeFileSync(
    join(dir, "campaign.yaml"),
    `name: dash
ifos: [H1, L1]
data: { files: ["data/*.hdf5"], sample_rate: 128, segments: { flags: [DATA], min_duration: 120 } }
model: { name: detector-stream, servers: registry }
inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20 }
background: { livetime: 1d, step: 2, max_job_duration: 400, job_livetime: 3h }
output: results
queue: { redis: "${secretUrl}" }
`,
  );
  cli(["submit", "campaign.yaml", "--json"]);

  dashRedis = await connectRedis(secretUrl);
  const sink = new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) });
  dash = await startDashboard({ redis: dashRedis, prefix, port: 0, refreshMs: 500, logger: pino({ level: "info" }, sink) });

  if (!existsSync("/usr/bin/chromium")) throw new Error("/usr/bin/chromium missing: apt-get install -y chromium");
  browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  page.on("console", (m) => m.type() === "error" && pageErrors.push(m.text()));
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  page.on("request", (r) => !r.url().startsWith(dash.url) && offsite.push(r.url()));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await dash?.close();
  dashRedis?.disconnect();
  redis.disconnect();
  await cleanup(REDIS_URL, prefix);
});

describe("timeslide dashboard on a running campaign", () => {
  it("shows status --json's numbers, the registry and the workers live, the FAR reach growing, the latest report", async () => {
    // One background job's payload edited in Redis: the worker refuses it for good, with a reason.
    const q = new Queue("dash", { connection: redis, prefix });
    const waiting = await q.getWaiting(0, 1000);
    const victim = waiting.find((j) => j.id!.startsWith("bg-"))!;
    await victim.updateData({ ...victim.data, span: [victim.data.span[0] + 100, victim.data.span[1] + 100] });
    await q.close();

    await page.goto(dash.url, { waitUntil: "load" });
    await page.waitForSelector('[data-campaign="dash"]', { timeout: 10_000 });
    let p = (await card("dash"))!;
    expect(p.state).toBe("submitted");
    expect(p["jobs.completed"]).toBe(0);
    expect(p.far_reach_per_year).toBe(null);
    expectSameNumbers(p, await status());

    // The registry, as Redis holds it, is the page's server list.
    const registered = await redis.zrangebyscore(registryKey(prefix), Date.now(), "+inf");
    expect(registered.length).toBe(1);
    await nextRefresh();
    let sv = await servers();
    expect(sv.map((s) => s.endpoint)).toEqual(registered);
    expect(sv[0].ready).toBe(true);
    expect(sv[0].models.find((m) => m.name === "detector-stream")?.text).toContain("READY");

    // One worker until a few background jobs are in; watch it and the reach on the way.
    const w1 = cliProcesses(dir, { ...env, TIMESLIDE_WORKER_NAME: "dash-w1" });
    const worker = w1.start(["worker", "dash", "--concurrency", "1"]);
    children.push(...w1.children);
    let sawRunning = false;
    let sawInFlight = false;
    let sawRate = false;
    const reaches: number[] = [];
    const deadline = Date.now() + 150_000;
    for (;;) {
      p = (await card("dash"))!;
      if (typeof p.far_reach_per_year === "number") reaches.push(p.far_reach_per_year);
      const ws = await workers();
      if (ws.some((w) => w.name === "dash-w1" && w.alive && w.running >= 1)) sawRunning = true;
      sv = await servers();
      if (sv[0]?.in_flight > 0) sawInFlight = true;
      if (sv[0]?.models.some((m) => m.name === "detector-stream" && typeof m.rps === "number" && m.rps > 0)) sawRate = true;
      if ((p["livetime.background_s"] as number) > 0 && (p["jobs.completed"] as number) >= 4) break;
      expect(Date.now() < deadline, "background jobs within 150 s").toBe(true);
      await sleep(300);
    }
    expect(sawRunning, "the worker with a job running").toBe(true);
    expect(sawInFlight, "sequences in flight on the server").toBe(true);
    expect(sawRate, "requests/s from the server's statistics").toBe(true);

    // Frozen (the worker stopped): the page and `status --json` agree, and the rate matches within the clock's drift.
    worker.kill("SIGTERM");
    await stopped(worker);
    await nextRefresh();
    const t0 = Date.now();
    const s1 = await status();
    const t1 = Date.now();
    p = (await card("dash"))!;
    expectSameNumbers(p, s1);
    expect(s1.done).toBe(false);
    // rate = T_bg / (now - first result): both imply the same first result, to within when each was taken
    expect(p.rate).toBeGreaterThan(0);
    const firstResult = (rate: number, at: number) => at - ((p["livetime.background_s"] as number) / rate) * 1000;
    const shown = firstResult(p.rate as number, p.status_at as number);
    expect(shown).toBeGreaterThan(firstResult(s1.rate!, t0) - 100);
    expect(shown).toBeLessThan(firstResult(s1.rate!, t1) + 100);
    expect((await workers()).some((w) => w.name === "dash-w1")).toBe(false); // gone once its connection closed
    const reach1 = p.far_reach_per_year as number;
    expect(reach1).toBeGreaterThan(0);

    // A partial report: the page shows its curve and loudest candidates.
    await cliAsync(["report", "dash"]);
    const partial = ReportJson.parse(JSON.parse(readFileSync(join(dir, "results", "report.json"), "utf8")));
    await page.waitForSelector(".report-head .partial", { timeout: 15_000 });
    p = (await card("dash"))!;
    expect(p["report.jobs_completed"]).toBe(partial.jobs.completed);
    expect(p["report.background_s"]).toBe(partial.livetime.background_s);
    expect(p.loudest).toEqual([...partial.foreground].sort((a, b) => b.detection_statistic - a.detection_statistic).slice(0, 10).map((c) => c.time));
    expect(p.plot_marks).toBeGreaterThan(0);

    // Two workers to the end: the reach grows (1/T_bg falls) with every job.
    const w2 = cliProcesses(dir, { ...env, TIMESLIDE_WORKER_NAME: "dash-w2" });
    const w3 = cliProcesses(dir, { ...env, TIMESLIDE_WORKER_NAME: "dash-w3" });
    const more = [w2.start(["worker", "dash"]), w3.start(["worker", "dash"])];
    children.push(...w2.children, ...w3.children);
    const end = Date.now() + 200_000;
    const htmlPath = join(dir, "results", "report.html");
    let midRun: Buffer | undefined; // the README's picture: workers busy, a partial report in
    for (;;) {
      p = (await card("dash"))!;
      if (typeof p.far_reach_per_year === "number") reaches.push(p.far_reach_per_year);
      if (!midRun && !p.done && String(p.report_head).startsWith("partial") && (await workers()).filter((w) => w.running > 0).length === 2 && (await servers())[0]?.models.some((m) => m.name === "detector-stream" && m.rps > 0)) midRun = await page.screenshot({ fullPage: true });
      if (p.done && String(p.report_head).startsWith("final report")) break;
      expect(Date.now() < end, "campaign done and its report read within 200 s").toBe(true);
      await sleep(300);
    }
    for (let i = 1; i < reaches.length; i++) expect(reaches[i]).toBeLessThanOrEqual(reaches[i - 1]);
    expect(p.far_reach_per_year as number).toBeLessThan(reach1);
    expect(existsSync(htmlPath)).toBe(true);

    // Done: the rate stops at the last result, so every number is equal, rate and ETA too.
    await nextRefresh();
    const s2 = await status();
    p = (await card("dash"))!;
    expectSameNumbers(p, s2);
    expect(p.rate).toBe(s2.rate);
    expect(p.eta_s).toBe(s2.eta_s);
    expect(s2.jobs.failed).toBe(1);
    expect(p.failures).toEqual([{ job: victim.id, reason: expect.stringContaining("span") }]);
    const final = ReportJson.parse(JSON.parse(readFileSync(join(dir, "results", "report.json"), "utf8")));
    expect(p["report.jobs_completed"]).toBe(final.jobs.completed);
    expect(p["report.background_s"]).toBe(final.livetime.background_s);

    // The README's picture: rewritten when asked (or missing), so a test run leaves the checkout clean.
    const shot = midRun ?? (await page.screenshot({ fullPage: true }));
    expect(shot.length).toBeGreaterThan(10_000);
    if (process.env.TIMESLIDE_WRITE_SCREENSHOT === "1" || !existsSync(SCREENSHOT)) {
      mkdirSync(join(SCREENSHOT, ".."), { recursive: true });
      writeFileSync(SCREENSHOT, shot);
    }
    expect(pageErrors).toEqual([]);
    expect(offsite).toEqual([]);
    for (const c of more) c.kill("SIGTERM");
    await Promise.all(more.map(stopped));
  }, 420_000);

  it("lists the servers a running campaign names in model.servers beside the registry's, until it is cancelled", async () => {
    const port = await freePort();
    start(["serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(port), "--threads", "1"]); // not registered
    const client = new InferenceClient(`127.0.0.1:${port}`);
    await client.waitForReady({ model: "detector-stream", timeoutMs: 30_000 }).finally(() => client.close());
    const campaign = readFileSync(join(dir, "campaign.yaml"), "utf8")
      .replace("name: dash", "name: own")
      .replace("servers: registry", `servers: ["127.0.0.1:${port}"]`)
      .replace("output: results", "output: results-own");
    writeFileSync(join(dir, "own.yaml"), campaign);
    await cliAsync(["submit", "own.yaml", "--json"]);
    await nextRefresh();
    let sv = await servers();
    const listed = sv.find((x) => x.endpoint === `127.0.0.1:${port}`);
    expect(listed, "the campaign's own server is listed").toMatchObject({ source: "campaign", listedBy: "own", ready: true });
    expect(listed!.models.map((m) => m.name)).toContain("detector-stream");
    expect(sv.filter((x) => x.source === "registry").length).toBe((await redis.zrangebyscore(registryKey(prefix), Date.now(), "+inf")).length);
    await cliAsync(["cancel", "own", "--purge"]);
    await nextRefresh();
    sv = await servers();
    expect(sv.find((x) => x.endpoint === `127.0.0.1:${port}`), "gone with the campaign").toBeUndefined();
  }, 120_000);

  it("binds 127.0.0.1 by default and shows no secret: page, API, event stream, logs", async () => {
    // The command as users run it, given the password in --redis.
    const port = await freePort();
    let out = "";
    const own = cliProcesses(dir, { ...env, LOG_LEVEL: "info" }, { onOutput: (_what, text) => (out += text) });
    const proc = own.start(["dashboard", "--port", String(port), "--redis", secretUrl, "--refresh", "0.5"]);
    children.push(proc);
    for (let i = 0; i < 120 && !out.includes("dashboard listening"); i++) await sleep(250);
    expect(out).toContain(`timeslide dashboard: http://127.0.0.1:${port}/`);
    const base = `http://127.0.0.1:${port}`;

    // Loopback only: a connection to another address of this machine is refused.
    const reach = (host: string) => new Promise<boolean>((r) => connect({ host, port }).once("connect", function (this: import("node:net").Socket) { this.destroy(); r(true); }).once("error", () => r(false)));
    expect(await reach("127.0.0.1")).toBe(true);
    const other = Object.values(networkInterfaces()).flat().find((a) => a && a.family === "IPv4" && !a.internal);
    if (other) expect(await reach(other.address)).toBe(false);
    // and the kernel's own table: one listening socket on the port, bound to 127.0.0.1 (0100007F)
    const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
    const listening = ["/proc/net/tcp", "/proc/net/tcp6"]
      .filter((f) => existsSync(f))
      .flatMap((f) => readFileSync(f, "utf8").split("\n").slice(1))
      .map((l) => l.trim().split(/\s+/))
      .filter((c) => c[1]?.endsWith(`:${hexPort}`) && c[3] === "0A")
      .map((c) => c[1].split(":")[0]);
    expect(listening).toEqual(["0100007F"]);
    // A page elsewhere reaching it through a rebound DNS name is turned away.
    const rebound = await new Promise<number>((r, f) => request({ host: "127.0.0.1", port, path: "/api/snapshot", headers: { Host: `evil.example:${port}` } }, (res) => (res.resume(), r(res.statusCode!))).once("error", f).end());
    expect(rebound).toBe(421);

    const texts: string[] = [];
    for (const path of ["/", "/app.js", "/app.css", "/api/snapshot", "/healthz", "/nowhere"]) texts.push(await (await fetch(base + path)).text());
    const ctrl = new AbortController();
    const sse = await fetch(`${base}/events`, { signal: ctrl.signal });
    const reader = sse.body!.getReader();
    let events = "";
    while ((events.match(/^data: /gm) ?? []).length < 2) events += new TextDecoder().decode((await reader.read()).value);
    ctrl.abort();
    texts.push(events, out, logLines.join(""), await page.content(), JSON.stringify(dash.snapshot()));
    const snap = JSON.parse(texts[3]);
    expect(snap.campaigns.map((c: { status: { campaign: string } }) => c.status.campaign)).toEqual(["dash"]); // it did read the campaign (and its spec's URL)
    expect(await redis.hget(`${prefix}:dash:ts:meta`, "spec")).toContain(SECRET); // the secret is there to leak
    for (const t of texts) {
      for (const s of secrets) expect(t).not.toContain(s);
      expect(t).not.toMatch(/rediss?:\/\/[^*\s"]*:[^*\s"@]+@/);
    }
    expect(out).toContain("redis://***@"); // the URL is logged, masked

    // In-process, with no host given: loopback too.
    const d2 = await startDashboard({ redis: dashRedis, prefix, port: 0, logger: pino({ level: "silent" }) });
    try {
      expect(d2.host).toBe("127.0.0.1");
      expect(d2.url).toBe(`http://127.0.0.1:${d2.port}/`);
    } finally {
      await d2.close();
    }
    proc.kill("SIGTERM");
    await stopped(proc);
    expect(proc.exitCode).toBe(0);
  }, 60_000);
});
