// Security of a campaign run as a site runs it, through separate processes:
// Redis behind a password and TLS (rediss://, a CA of the test's own),
// inference over gRPC with TLS, no secret in any log, output or report, and
// a report.html that escapes every string that came from an input file.
// Certificates come from openssl into a temp dir; the Redis is a private
// redis-server on a free TLS port (no plaintext port), stopped at the end.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Redis } from "ioredis";
import { freePort } from "@timeslide/campaign";
import { InferenceClient } from "@timeslide/kserve";
import { renderReportHtml, type ReportJson } from "@timeslide/report";
import { readInjections, writeInjectionFile } from "@timeslide/strain";
import { recordOutcome } from "./outcomes.js";
import { cliProcesses } from "./cli-processes.js";

const SECRET = `pw-${randomBytes(12).toString("hex")}`;
const prefix = `tssec-${randomBytes(4).toString("hex")}`;
const dir = mkdtempSync(join(tmpdir(), "timeslide-sec-"));
const pem = (name: string) => join(dir, "pki", name);
// An HDF5 name can't hold '/', so the hostile column is a tag without one.
const HOSTILE = `<img src=x onerror=alert(1)>&"'`;
let redisPort = 0;
let grpcPort = 0;
let redisUrl = "";
let env: NodeJS.ProcessEnv = {};
let redisServer: ChildProcess | undefined;
/** Everything every timeslide process printed, for the secret check. */
const captured: { what: string; text: string }[] = [];

const { runSync, cli: cliOk, start, children } = cliProcesses(dir, () => env, {
  onOutput: (what, text) => {
    const rec = captured.find((c) => c.what === what);
    if (rec) rec.text += text;
    else captured.push({ what, text });
  },
});

function openssl(args: string[]) {
  const r = spawnSync("openssl", args, { encoding: "utf8", cwd: join(dir, "pki") });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")}: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 / localhost signed by it. */
function makePki() {
  spawnSync("mkdir", ["-p", join(dir, "pki")]);
  openssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=timeslide test CA"]);
  openssl(["req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"]);
  writeFileSync(pem("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n");
  openssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "san.ext"]);
}

async function redisAnswers(url: string, opts: object): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, ...opts });
  r.on("error", () => {});
  try {
    await r.connect();
    return (await r.ping()) === "PONG";
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

/** Every file under `root`, recursively. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(root)) {
    const p = join(root, name);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p));
    else out.push(p);
  }
  return out;
}

const tlsOpts = () => ({ tls: { ca: readFileSync(pem("ca.pem")) } });

beforeAll(async () => {
  makePki();
  redisPort = await freePort();
  redisServer = spawn(
    "redis-server",
    [
      "--port", "0", // no plaintext listener at all
      "--tls-port", String(redisPort),
      "--bind", "127.0.0.1",
      "--tls-cert-file", pem("server.pem"),
      "--tls-key-file", pem("server.key"),
      "--tls-ca-cert-file", pem("ca.pem"),
      "--tls-auth-clients", "no",
      "--requirepass", SECRET,
      "--save", "",
      "--appendonly", "no",
      "--dir", dir,
    ],
    { stdio: "ignore" },
  );
  redisUrl = `rediss://:${SECRET}@127.0.0.1:${redisPort}`;
  let up = false;
  for (let i = 0; i < 100 && !(up = await redisAnswers(redisUrl, tlsOpts())); i++) await new Promise((r) => setTimeout(r, 100));
  if (!up) throw new Error("the TLS redis-server did not come up (is redis-server built with TLS?)");
  env = {
    ...process.env,
    REDIS_URL: redisUrl,
    TIMESLIDE_REDIS_CA: pem("ca.pem"),
    TIMESLIDE_GRPC_CA: pem("ca.pem"),
    TIMESLIDE_PREFIX: prefix,
    LOG_LEVEL: "info", // the most a site logs by default: everything that could leak is printed
  };

  cliOk(["synth", "--out", "data", "--ifos", "H1,L1", "--duration", "20m", "--sample-rate", "256", "--file-duration", "600", "--gaps", "1", "--injections", "8", "--snr", "15:40", "--seed", "5"]);
  // The injection file gains a parameter column whose name is markup.
  const inj = await readInjections(join(dir, "data", "injections.h5"));
  await writeInjectionFile(join(dir, "data", "hostile.h5"), { ...inj, parameters: { ...inj.parameters, [HOSTILE]: Float64Array.from(inj.times, () => 1) } });
  cliOk(["model-repo", "--out", "models", "--ifos", "2", "--kernel-length", "1", "--sample-rate", "128", "--inference-sampling-rate", "2", "--batch-size", "32"]);
  grpcPort = await freePort();
  start([
    "serve", "--repo", "models", "--host", "127.0.0.1", "--port", String(grpcPort), "--threads", "1",
    "--tls-cert", pem("server.pem"), "--tls-key", pem("server.key"),
    "--register", "redis", // through REDIS_URL: rediss:// with the password
  ]);
  writeFileSync(
    join(dir, "campaign.yaml"),
    `name: sec
ifos: [H1, L1]
data: { files: ["data/H-*.hdf5", "data/L-*.hdf5"], sample_rate: 128, segments: { flags: [DATA], min_duration: 120 } }
model: { name: detector-stream, servers: registry }
inference: { kernel_length: 1, inference_sampling_rate: 2, batch_size: 32, psd_length: 16, fduration: 1, highpass: 20 }
background: { livetime: 6h, step: 2, max_job_duration: 400, job_livetime: 3h }
injections: { file: data/hostile.h5 }
output: results
queue: { redis: "${redisUrl}" }
`,
  );
  // The server is up and registered (over rediss://) before workers look.
  const reg = new Redis(redisUrl, tlsOpts());
  try {
    for (let i = 0; i < 200 && !(await reg.zcard(`${prefix}:servers`)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await reg.zrange(`${prefix}:servers`, "0", "-1")).toEqual([`127.0.0.1:${grpcPort}`]);
  } finally {
    reg.disconnect();
  }
}, 120_000);

afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  if (redisServer && redisServer.exitCode === null) {
    await new Promise((r) => (redisServer!.once("exit", r), redisServer!.kill("SIGTERM")));
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("security", () => {
  it("runs a campaign over rediss:// with a password and over gRPC with TLS; no secret anywhere; the report escapes input strings", async () => {
    // Redis: plaintext or an unknown CA get nothing; the URL with the CA works.
    expect(await redisAnswers(`redis://:${SECRET}@127.0.0.1:${redisPort}`, {})).toBe(false);
    expect(await redisAnswers(redisUrl, {})).toBe(false); // TLS, but the system roots don't know our CA
    expect(await redisAnswers(`rediss://:wrong@127.0.0.1:${redisPort}`, tlsOpts())).toBe(false);
    const noCa = runSync(["status", "--list"], { TIMESLIDE_REDIS_CA: "" });
    expect(noCa.code).not.toBe(0);
    expect(noCa.stderr).toMatch(/cannot reach Redis at rediss:\/\/:\*\*\*@127\.0\.0\.1/);
    expect(noCa.stderr).toMatch(/certificate/);
    expect(noCa.stderr).toMatch(/TIMESLIDE_REDIS_CA/);

    const plan = JSON.parse(cliOk(["plan", "campaign.yaml", "--json"]));
    const submitted = JSON.parse(cliOk(["submit", "campaign.yaml", "--json"]));
    expect(submitted.added).toBe(plan.jobs.total);
    expect(submitted.redis).toBe(`rediss://:***@127.0.0.1:${redisPort}`);

    const workers = [start(["worker", "sec"]), start(["worker", "sec"])];
    const deadline = Date.now() + 150_000;
    let status = JSON.parse(cliOk(["status", "sec", "--json"]));
    while (!status.done && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      status = JSON.parse(cliOk(["status", "sec", "--json"]));
    }
    expect(status.done).toBe(true);
    expect(status.jobs.failed).toBe(0);
    expect(status.livetime.background_s).toBe(plan.livetime.background_s);

    // Aggregated by the last job (a thread of the worker, over rediss://), then on demand.
    const htmlPath = join(dir, "results", "report.html");
    for (let i = 0; i < 240 && !existsSync(htmlPath); i++) await new Promise((r) => setTimeout(r, 250));
    expect(existsSync(htmlPath)).toBe(true);
    const onDemand = JSON.parse(cliOk(["report", "sec", "--json"]));
    expect(onDemand.campaign).toBe("sec");
    const report = JSON.parse(readFileSync(join(dir, "results", "report.json"), "utf8"));
    expect(report.jobs).toMatchObject({ total: plan.jobs.total, completed: plan.jobs.total, failed: 0 });
    expect(report.injections.injected).toBeGreaterThan(0);

    await Promise.all(workers.map((w) => new Promise((r) => (w.once("exit", r), w.kill("SIGTERM")))));
    for (const w of workers) expect(w.exitCode).toBe(0);
    const workerLogs = captured.filter((c) => c.what.startsWith("timeslide worker")).map((c) => c.text).join("\n");
    const servedOverTls = JSON.parse(captured.find((c) => c.what.startsWith("timeslide serve"))!.text.split("\n").find((l) => l.includes("inference server listening"))!).tls;
    expect(servedOverTls).toBe(true);
    expect(workerLogs).toMatch(/"grpcTls":true/);
    recordOutcome({
      area: "security",
      case: "Redis with a password over TLS (rediss://, private CA)",
      outcome: "protected",
      detail:
        `redis-server with --port 0 --tls-port and --requirepass; submit, serve --register, 2 workers (BullMQ, processor threads, aggregation thread), status, report all over rediss:// with TIMESLIDE_REDIS_CA: ` +
        `${plan.jobs.total} jobs completed, 0 failed, background ${status.livetime.background_s} s = plan. Plaintext, unknown-CA and wrong-password clients get no answer; ` +
        `timeslide without the CA says: "${noCa.stderr.trim().split("\n").at(-1)!.slice(0, 240)}"`,
    });
    recordOutcome({
      area: "security",
      case: "gRPC inference over TLS (serve --tls-cert/--tls-key, workers TIMESLIDE_GRPC_CA)",
      outcome: "protected",
      detail: `the server listened with TLS and registered 127.0.0.1:${grpcPort}; both workers dialled it over TLS (model lookup, health, streams) and completed all ${plan.jobs.total} jobs`,
    });

    // A plaintext client to the TLS server: refused, with a message.
    const plain = new InferenceClient({ endpoint: `127.0.0.1:${grpcPort}` });
    const plainErr = await plain.serverLive({ deadlineMs: 3000 }).then(
      () => "answered",
      (e: Error) => e.message,
    );
    plain.close();
    expect(plainErr).not.toBe("answered");
    expect(plainErr).toMatch(/UNAVAILABLE/);
    expect(plainErr).toMatch(/dialled in plaintext: if the server serves TLS, set TIMESLIDE_GRPC_CA/);
    // And one that trusts only the system roots: refused by the certificate check.
    const wrongCa = new InferenceClient({ endpoint: `127.0.0.1:${grpcPort}`, tls: true });
    const wrongCaErr = await wrongCa.serverLive({ deadlineMs: 3000 }).then(
      () => "answered",
      (e: Error) => e.message,
    );
    wrongCa.close();
    expect(wrongCaErr).not.toBe("answered");
    const good = new InferenceClient({ endpoint: `127.0.0.1:${grpcPort}`, tls: { rootCerts: readFileSync(pem("ca.pem")) } });
    expect(await good.serverLive({ deadlineMs: 3000 })).toBe(true);
    good.close();
    recordOutcome({
      area: "security",
      case: "plaintext gRPC client to the TLS inference server",
      outcome: "refused",
      detail: `plaintext: "${plainErr.replace(/ \(\d{4}-[^)]*\)/, "").slice(0, 240)}"; TLS with the system roots only: "${wrongCaErr.slice(0, 160)}"; with the CA: live`,
    });

    // No secret anywhere: every process's output and every file written.
    const outFiles = filesUnder(join(dir, "results"));
    expect(outFiles.some((f) => f.endsWith("report.html"))).toBe(true);
    expect(outFiles.filter((f) => f.includes("/jobs/")).length).toBe(plan.jobs.total);
    const leaks: string[] = [];
    for (const c of captured) if (c.text.includes(SECRET)) leaks.push(c.what);
    for (const f of outFiles) if (readFileSync(f).includes(SECRET)) leaks.push(f); // h5 attrs included (bytes)
    expect(leaks).toEqual([]);
    const logBytes = captured.reduce((a, c) => a + c.text.length, 0);
    expect(logBytes).toBeGreaterThan(1000); // there were logs to check
    recordOutcome({
      area: "security",
      case: "Redis password in REDIS_URL and in the campaign's queue.redis",
      outcome: "protected",
      detail: `absent from the output of all ${captured.length} timeslide processes (${logBytes} bytes, LOG_LEVEL=info; URLs shown as rediss://:***@…) and from all ${outFiles.length} files written (report.json, report.html, background/foreground/injections.h5, ${plan.jobs.total} job files)`,
    });

    // report.html: the hostile column never comes out as markup.
    const html = readFileSync(htmlPath, "utf8");
    expect(html).not.toContain("<img");
    expect(html).not.toMatch(/onerror=/i);
    // Every string field the HTML shows, hostile, straight into the renderer.
    const evil = (tag: string) => `<script>alert("${tag}")</script><img src=x onerror=alert(1)>&amp;"'\``;
    const hostileReport: ReportJson = {
      ...report,
      campaign: evil("campaign"),
      ifos: [evil("ifo1"), "L1&<"],
      jobs: { ...report.jobs, failed: 1, failed_ids: [evil("failed_id")] },
    };
    const rendered = await renderReportHtml(hostileReport, {
      generated_at: evil("generated_at"),
      failures: [{ job_id: evil("job"), kind: evil("kind"), reason: evil("reason"), livetime_lost: 10 }],
      volume_unit: evil("unit"),
      planned_background_s: 1,
    });
    // (booleans: a failing match would print the whole page)
    expect(/<script/i.test(rendered)).toBe(false);
    expect(/<img/i.test(rendered)).toBe(false);
    // No event-handler attribute on any real tag (quoted attribute values, where Vega puts escaped labels, set aside).
    const handlers = (h: string) => (h.match(/<[a-z][^>]*>/gi) ?? []).filter((t) => /\son[a-z]+\s*=/i.test(t.replace(/"[^"]*"|'[^']*'/g, '""')));
    expect(handlers(rendered)).toEqual([]);
    expect(handlers(html)).toEqual([]);
    for (const tag of ["campaign", "ifo1", "job", "kind", "reason", "generated_at"]) expect(rendered.includes(`&#60;script&#62;alert(&#34;${tag}&#34;)`), tag).toBe(true);
    // The volume unit goes through Vega into the SVG, which escapes it too.
    if (rendered.includes('id="plot-volume"')) expect(rendered.includes("sensitive volume (&lt;script&gt;alert(")).toBe(true);
    recordOutcome({
      area: "security",
      case: "markup in input strings (injection parameter column, campaign, detector, job, failure reason, volume unit)",
      outcome: "protected",
      detail: `an injection file with a parameter column named ${HOSTILE} ran through the campaign: report.html has no <img or onerror=; renderReportHtml with <script>/<img onerror>/&/quotes in campaign, ifos, failed job id, kind, reason, generated_at and volume unit writes them all as entities`,
    });
  });
});
