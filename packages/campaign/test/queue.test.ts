import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { randomBytes } from "node:crypto";
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import type { Redis } from "ioredis";
import {
  campaignKeys,
  campaignStatus,
  cancelCampaign,
  connectRedis,
  deleteKeys,
  openQueue,
  prepareCampaign,
  readMeta,
  recordJobFailure,
  recordJobResult,
  submitCampaign,
} from "@timeslide/campaign";
import { FIXTURES, tempDir, writeCampaign } from "./helpers.js";

const CLI = join(import.meta.dirname, "../../../apps/cli/dist/main.js");
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
// Each run has its own key prefix and removes it afterwards: tests share the machine's Redis.
const prefix = `tstest-${randomBytes(4).toString("hex")}`;
let redis: Redis;
const { dir, cleanup } = tempDir();

function campaignFile(name: string, extra = ""): string {
  return writeCampaign(
    dir,
    `name: ${name}
ifos: [H1, L1]
data:
  files: ["${FIXTURES}/gwosc/*.hdf5"]
  sample_rate: 512
  segments: { min_duration: 32 }
inference: { psd_length: 16, kernel_length: 1 }
background: { shifts: 40, step: 1.5, max_job_duration: 48, job_livetime: 200 }
injections: { file: ${FIXTURES}/injections.h5 }
${extra}`,
    `${name}.yaml`,
  );
}

function cli(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { ...process.env, REDIS_URL, TIMESLIDE_PREFIX: prefix } });
}

beforeAll(async () => {
  redis = await connectRedis(REDIS_URL);
});

afterAll(async () => {
  await deleteKeys(redis, `${prefix}:*`);
  redis.disconnect();
  cleanup();
});

describe("submit, resubmit, status and cancel against a real Redis", () => {
  it("queues every planned job once; a second submit adds nothing and says so", async () => {
    const file = campaignFile("qa");
    const { plan } = await prepareCampaign(file);
    const first = cli(["submit", file, "--json"]);
    expect(first.status, first.stderr).toBe(0);
    const r1 = JSON.parse(first.stdout);
    expect(r1).toMatchObject({ campaign: "qa", added: plan.jobs.length, existing: 0, alreadySubmitted: false });

    const queue = openQueue(redis, prefix, "qa");
    expect(await queue.getWaitingCount()).toBe(plan.jobs.length);
    const job = await queue.getJob(plan.jobs[0].id);
    expect(job?.data).toEqual(plan.jobs[0].payload);
    await queue.close();

    const second = cli(["submit", file]);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toMatch(/already submitted \(\d+ jobs\): nothing added/);
    const q2 = openQueue(redis, prefix, "qa");
    expect(await q2.getWaitingCount()).toBe(plan.jobs.length);
    await q2.close();

    const meta = await readMeta(redis, prefix, "qa");
    expect(meta?.state).toBe("submitted");
    expect(meta?.total_jobs).toBe(plan.jobs.length);
    expect(meta?.planned.background).toBe(plan.livetime.background_s);
    expect(meta?.shift_table).toEqual(plan.shiftTable);
  });

  it("refuses to resubmit a campaign name with a different spec", () => {
    const file = campaignFile("qa", "postprocess: { cluster_window: 4 }\n");
    const r = cli(["submit", file]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/campaign qa was already submitted with a different spec or data/);
  });

  it("counts results and failures once each, and status reports them", async () => {
    const { plan } = await prepareCampaign(campaignFile("qa"));
    const [a, b, c] = plan.jobs.filter((j) => j.payload.kind === "background");
    const summary = (j: typeof a) => ({
      job_id: j.id,
      kind: j.payload.kind,
      livetime: j.payload.livetime,
      events: 3,
      loudest: 7.5,
      path: `/results/jobs/${j.id}.h5`,
      shifts: j.payload.shifts.length,
    });
    // Take two jobs off the queue as a worker would, so counts move.
    expect(await recordJobResult(redis, prefix, "qa", summary(a))).toBe(true);
    expect(await recordJobResult(redis, prefix, "qa", summary(a))).toBe(false); // a retried job counts once
    expect(await recordJobResult(redis, prefix, "qa", summary(b))).toBe(true);
    const failure = { job_id: c.id, kind: c.payload.kind, reason: "NaN in good data", livetime_lost: c.payload.livetime, attempts: 3, failed_at: Date.now() };
    expect(await recordJobFailure(redis, prefix, "qa", failure)).toBe(true);
    expect(await recordJobFailure(redis, prefix, "qa", failure)).toBe(false);
    expect(await recordJobFailure(redis, prefix, "qa", { ...failure, job_id: a.id })).toBe(false); // already completed

    const s = await campaignStatus(redis, prefix, "qa");
    expect(s.jobs.total).toBe(plan.jobs.length);
    expect(s.jobs.completed).toBe(2);
    expect(s.jobs.failed).toBe(1);
    expect(s.jobs.waiting).toBe(plan.jobs.length);
    expect(s.livetime.background_s).toBe(a.payload.livetime + b.payload.livetime);
    expect(s.livetime.lost_s).toBe(c.payload.livetime);
    expect(s.done).toBe(false);

    // A job that failed and later succeeds (e.g. retried by hand) moves from lost to counted.
    expect(await recordJobResult(redis, prefix, "qa", summary(c))).toBe(true);
    const s2 = await campaignStatus(redis, prefix, "qa");
    expect(s2.jobs.failed).toBe(0);
    expect(s2.livetime.lost_s).toBe(0);
    expect(s2.livetime.background_s).toBe(a.payload.livetime + b.payload.livetime + c.payload.livetime);

    const out = cli(["status", "qa", "--json"]);
    expect(out.status, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout).jobs.completed).toBe(3);
    const text = cli(["status", "qa"]);
    expect(text.stdout).toMatch(/jobs: +3\/\d+ completed/);
  });

  it("a finished campaign's status says done (not submitted) and its rate stays put", async () => {
    const { campaign, plan } = await prepareCampaign(campaignFile("qd"));
    await submitCampaign({ redis, prefix, campaign, plan });
    const record = (j: (typeof plan.jobs)[number]) =>
      recordJobResult(redis, prefix, "qd", { job_id: j.id, kind: j.payload.kind, livetime: j.payload.livetime, events: 0, loudest: null, path: "x", shifts: 1 });
    await record(plan.jobs[0]);
    expect((await campaignStatus(redis, prefix, "qd")).state).toBe("submitted");
    await new Promise((r) => setTimeout(r, 200));
    for (const j of plan.jobs.slice(1)) await record(j);
    const d1 = await campaignStatus(redis, prefix, "qd");
    expect(d1).toMatchObject({ done: true, state: "done", eta_s: 0 });
    expect(d1.rate).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await campaignStatus(redis, prefix, "qd")).rate).toBe(d1.rate);
    const out = cli(["status", "qd", "--json"]);
    expect(JSON.parse(out.stdout)).toMatchObject({ state: "done", done: true });
  });

  it("an interrupted submit is completed by the next one, skipping jobs already done", async () => {
    const file = campaignFile("qb");
    const { campaign, plan } = await prepareCampaign(file);
    const half = { ...plan, jobs: plan.jobs.slice(0, 10) };
    await submitCampaign({ redis, prefix, campaign, plan: half });
    // Simulate: the submit died before marking itself done, and one job already ran and was removed.
    await redis.hset(campaignKeys(prefix, "qb").meta, "state", "submitting");
    const queue = openQueue(redis, prefix, "qb");
    await queue.remove(plan.jobs[0].id);
    await recordJobResult(redis, prefix, "qb", {
      job_id: plan.jobs[0].id, kind: plan.jobs[0].payload.kind, livetime: plan.jobs[0].payload.livetime, events: 0, loudest: null, path: "x", shifts: 1,
    });
    const r = await submitCampaign({ redis, prefix, campaign, plan });
    expect(r.added).toBe(plan.jobs.length - 10);
    expect(r.existing).toBe(10);
    expect(await queue.getWaitingCount()).toBe(plan.jobs.length - 1);
    await queue.close();
  });

  it("cancel removes waiting jobs and keeps results; --purge removes everything", async () => {
    const r = cli(["cancel", "qa", "--json"]);
    expect(r.status, r.stderr).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.removed).toBeGreaterThan(0);
    const queue = openQueue(redis, prefix, "qa");
    expect(await queue.getWaitingCount()).toBe(0);
    const s = await campaignStatus(redis, prefix, "qa");
    expect(s.state).toBe("cancelled");
    expect(s.jobs.completed).toBe(3);

    const again = cli(["submit", campaignFile("qa")]);
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/was cancelled; purge it/);

    const p = await cancelCampaign(redis, prefix, "qa", true);
    expect(p.purged).toBe(true);
    const left = await redis.keys(`${prefix}:qa:*`);
    expect(left).toEqual([]);
    await queue.close();
    await expect(campaignStatus(redis, prefix, "qa")).rejects.toThrow(/no campaign qa/);
  });

  it("says what to do when Redis cannot be reached", () => {
    const r = spawnSync(process.execPath, [CLI, "status", "qa"], {
      encoding: "utf8",
      env: { ...process.env, REDIS_URL: "redis://:secret@127.0.0.1:1", TIMESLIDE_PREFIX: prefix },
    });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/cannot reach Redis at redis:\/\/:\*\*\*@127\.0\.0\.1:1.*Start one/);
    expect(r.stderr).not.toContain("secret");
  });
});
