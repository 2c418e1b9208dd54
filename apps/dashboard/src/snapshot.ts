// What the dashboard shows, gathered from Redis, the result directory and the
// inference servers. Campaign numbers are campaignStatus()'s, the function
// behind `timeslide status --json`: the page never recomputes them.
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Redis } from "ioredis";
import {
  JobFailure,
  campaignKeys,
  campaignStatus,
  listCampaigns,
  openQueue,
  queueName,
  redactUrls,
  type CampaignStatus,
} from "@timeslide/campaign";
import { grpcTlsFromEnv, InferenceClient, parseEndpoints, registryKey, slotLeaseKey } from "@timeslide/kserve";
import { ReportJson, renderPlots } from "@timeslide/report";
import { JULIAN_YEAR, formatDuration } from "@timeslide/segments";

export interface FailureRow {
  job_id: string;
  kind: string;
  reason: string;
  livetime_lost_s: number;
  attempts: number;
}

/** A zero-lag candidate as report.json lists it. */
export type CandidateRow = ReportJson["foreground"][number];

export interface ReportView {
  /** false once the campaign was complete when the report was written */
  partial: boolean;
  /** when report.json was written (file time), ms */
  written_at: number;
  jobs_completed: number;
  jobs_total: number;
  background_s: number;
  /** the report's FAR curve, drawn by @timeslide/report (the same SVG as report.html's) */
  far_svg: string;
  /** loudest zero-lag candidates, loudest first */
  loudest: CandidateRow[];
}

export interface CampaignView {
  /** exactly what `timeslide status CAMPAIGN --json` prints */
  status: CampaignStatus;
  /** when the status was read (ms): its rate and ETA are as of then */
  status_at: number;
  /** 1/T_bg: the smallest FAR (per year) the background so far can measure; null before any background */
  far_reach_per_year: number | null;
  failures: FailureRow[];
  /** failures beyond those listed */
  failures_more: number;
  report: ReportView | null;
  /** why there is no report view (none written yet, or unreadable) */
  report_note: string;
  /** the same numbers for people, formatted as `timeslide status` prints them */
  text: Record<string, string>;
}

export interface ModelView {
  name: string;
  version: string;
  state: string;
  reason: string;
  /** requests answered per second since the previous refresh (ModelStatistics success count); null on the first look */
  requests_per_s: number | null;
  inferences_per_s: number | null;
  /** sequences open on this server for this model: the workers' slot leases in Redis */
  sequences: number;
}

export interface ServerView {
  endpoint: string;
  /** seconds until the registry entry lapses unless refreshed; null for a server only a campaign lists */
  lease_s: number | null;
  /** where the dashboard learned of it: the registry, or the running campaigns whose model.servers list it */
  source: { registry: boolean; campaigns: string[] };
  live: boolean;
  ready: boolean;
  models: ModelView[];
  in_flight_sequences: number;
  error?: string;
}

export interface WorkerView {
  /** TIMESLIDE_WORKER_NAME (default host:pid); BullMQ's connection name */
  name: string;
  /** connected to Redis now (BullMQ's CLIENT LIST): alive; null when Redis will not say */
  alive: boolean | null;
  campaigns: string[];
  /** age of its oldest connection (s); null when unknown */
  connected_s: number | null;
  jobs_running: string[];
}

export interface Snapshot {
  generated_at: string;
  /** increases with each refresh */
  seq: number;
  prefix: string;
  campaigns: CampaignView[];
  servers: ServerView[];
  workers: WorkerView[];
  errors: string[];
}

const pct = (done: number, planned: number) => (planned > 0 ? `${((100 * done) / planned).toFixed(1)}%` : "100.0%");

function describe(s: CampaignStatus, reach: number | null): Record<string, string> {
  const l = s.livetime;
  const d = formatDuration;
  return {
    background: `${d(l.background_s)} of ${d(l.background_planned_s)} (${pct(l.background_s, l.background_planned_s)})`,
    foreground: `${d(l.foreground_s)} of ${d(l.foreground_planned_s)}`,
    injection: `${d(l.injection_s)} of ${d(l.injection_planned_s)}`,
    lost: d(l.lost_s),
    rate: s.rate ? `${d(s.rate)} of background per second` : "-",
    eta: s.done ? "done" : s.eta_s !== null ? d(s.eta_s) : "-",
    far_reach: reach === null ? "-" : `${reach.toPrecision(3)} per year (T_bg ${d(l.background_s)})`,
  };
}

/** Failure reasons listed per campaign (the count is in the status). */
const FAILURES_SHOWN = 50;
/** Candidates listed per report. */
const LOUDEST_SHOWN = 10;
const PROBE_DEADLINE_MS = 1500;

type Counters = { t: number; success: number; inferences: number };

/**
 * Holds what must persist between refreshes: gRPC clients per endpoint, the
 * previous ModelStatistics counters (rates are differences), and the
 * rendered FAR plot per report file (vega costs ~0.1 s; redrawn only when
 * report.json changes).
 */
export class SnapshotCollector {
  #seq = 0;
  readonly #clients = new Map<string, InferenceClient>();
  readonly #counters = new Map<string, Counters>();
  readonly #reports = new Map<string, { mtimeMs: number; size: number; view: ReportView }>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  async collect(): Promise<Snapshot> {
    const errors: string[] = [];
    const names = await listCampaigns(this.redis, this.prefix);
    const [campaigns, workers] = await Promise.all([
      Promise.all(names.map((n) => this.#campaign(n, errors))).then((cs) => cs.filter((c): c is CampaignView => c !== null)),
      this.#workers(names, errors).catch((e: Error) => (errors.push(`workers: ${redactUrls(e.message)}`), [] as WorkerView[])),
    ]);
    const running = campaigns.filter((c) => !c.status.done && c.status.state !== "cancelled").map((c) => c.status.campaign);
    const servers = await this.#servers(running).catch((e: Error) => (errors.push(`servers: ${redactUrls(e.message)}`), [] as ServerView[]));
    return { generated_at: new Date().toISOString(), seq: ++this.#seq, prefix: this.prefix, campaigns, servers, workers, errors };
  }

  close(): void {
    for (const c of this.#clients.values()) c.close();
    this.#clients.clear();
  }

  async #campaign(name: string, errors: string[]): Promise<CampaignView | null> {
    const status_at = Date.now();
    let status: CampaignStatus;
    try {
      status = await campaignStatus(this.redis, this.prefix, name);
    } catch (e) {
      // purged between the list and the read: said on the page, no made-up numbers
      errors.push(`campaign ${name}: ${redactUrls((e as Error).message)}`);
      return null;
    }
    const t = status.livetime.background_s;
    const { rows, more } = await this.#failures(name, status.jobs.failed);
    const { report, note } = await this.#report(name);
    const reach = t > 0 ? JULIAN_YEAR / t : null;
    return { status, status_at, far_reach_per_year: reach, failures: rows, failures_more: more, report, report_note: note, text: describe(status, reach) };
  }

  /** Up to FAILURES_SHOWN recorded failures (the newest of the first few hundred scanned); reasons with any URL credentials masked. */
  async #failures(name: string, failed: number): Promise<{ rows: FailureRow[]; more: number }> {
    if (failed === 0) return { rows: [], more: 0 };
    const key = campaignKeys(this.prefix, name).failures;
    const found: JobFailure[] = [];
    let cursor = "0";
    // HSCAN pages; a campaign with 10^5 failures is read only as far as the page shows
    do {
      const [next, flat] = await this.redis.hscan(key, cursor, "COUNT", 200);
      for (let i = 0; i < flat.length; i += 2) {
        try {
          const r = JobFailure.safeParse(JSON.parse(flat[i + 1]));
          if (r.success) found.push(r.data);
        } catch {
          // not JSON: not ours to show
        }
      }
      cursor = next;
    } while (cursor !== "0" && found.length < 4 * FAILURES_SHOWN);
    found.sort((a, b) => (b.failed_at ?? 0) - (a.failed_at ?? 0));
    const rows = found.slice(0, FAILURES_SHOWN).map((f) => ({
      job_id: f.job_id,
      kind: f.kind,
      reason: redactUrls(f.reason),
      livetime_lost_s: f.livetime_lost,
      attempts: f.attempts ?? 0,
    }));
    return { rows, more: Math.max(0, failed - rows.length) };
  }

  /**
   * The latest report.json the aggregator wrote in the campaign's output
   * (partial while it runs: `timeslide report CAMPAIGN`; final at the end).
   * Read-only: the dashboard never aggregates.
   */
  async #report(name: string): Promise<{ report: ReportView | null; note: string }> {
    // one field, not readMeta: the metadata also holds the shift table (MBs for 10^3 years)
    const output = await this.redis.hget(campaignKeys(this.prefix, name).meta, "output");
    if (!output) return { report: null, note: "no output directory recorded" };
    const path = join(output, "report.json");
    let st;
    try {
      st = statSync(path);
    } catch {
      return { report: null, note: `no report yet: \`timeslide report ${name}\` writes a partial one` };
    }
    const cached = this.#reports.get(name);
    if (cached && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return { report: cached.view, note: "" };
    try {
      const r = ReportJson.parse(JSON.parse(readFileSync(path, "utf8")));
      const plots = await renderPlots(r);
      const loudest = [...r.foreground]
        .sort((a, b) => b.detection_statistic - a.detection_statistic)
        .slice(0, LOUDEST_SHOWN);
      const view: ReportView = {
        partial: r.jobs.completed + r.jobs.failed < r.jobs.total,
        written_at: st.mtimeMs,
        jobs_completed: r.jobs.completed,
        jobs_total: r.jobs.total,
        background_s: r.livetime.background_s,
        far_svg: plots.find((p) => p.id === "far")?.svg ?? "",
        loudest,
      };
      this.#reports.set(name, { mtimeMs: st.mtimeMs, size: st.size, view });
      return { report: view, note: "" };
    } catch (e) {
      return { report: null, note: `report.json unreadable: ${redactUrls((e as Error).message).slice(0, 300)}` };
    }
  }

  /**
   * Servers in the registry (`<prefix>:servers`), read without the expiry
   * sweep discoverServers does (the dashboard writes nothing), each asked
   * over gRPC, as Triton and the embedded server both answer: ready, models,
   * ModelStatistics (rates as differences between refreshes).
   */
  async #servers(running: string[]): Promise<ServerView[]> {
    const [s, us] = await this.redis.time();
    const now = Number(s) * 1000 + Math.floor(Number(us) / 1000);
    const flat = await this.redis.zrangebyscore(registryKey(this.prefix), now, "+inf", "WITHSCORES");
    const entries: { endpoint: string; expires: number | null; campaigns: string[] }[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      try {
        entries.push({ endpoint: parseEndpoints(flat[i], "registry")[0], expires: Number(flat[i + 1]), campaigns: [] });
      } catch {
        // not an endpoint: not dialled
      }
    }
    // Running campaigns that name their servers (model.servers: [...]) use them without the registry.
    for (const name of running) {
      for (const endpoint of await this.#campaignServers(name)) {
        const e = entries.find((x) => x.endpoint === endpoint);
        if (e) e.campaigns.push(name);
        else entries.push({ endpoint, expires: null, campaigns: [name] });
      }
    }
    entries.sort((a, b) => (a.endpoint < b.endpoint ? -1 : 1));
    for (const [ep, c] of this.#clients)
      if (!entries.some((e) => e.endpoint === ep)) {
        c.close();
        this.#clients.delete(ep);
      }
    return Promise.all(
      entries.map((e) => this.#server(e.endpoint, e.expires === null ? null : (e.expires - now) / 1000, { registry: e.expires !== null, campaigns: e.campaigns }, now)),
    );
  }

  /** The endpoints a campaign's spec lists in model.servers (none for `registry`); one field of its metadata, not the shift table. */
  async #campaignServers(name: string): Promise<string[]> {
    const raw = await this.redis.hget(campaignKeys(this.prefix, name).meta, "spec");
    let servers: unknown;
    try {
      servers = (JSON.parse(raw ?? "null") as { model?: { servers?: unknown } } | null)?.model?.servers;
    } catch {
      return [];
    }
    if (!Array.isArray(servers)) return [];
    const out: string[] = [];
    for (const v of servers) {
      try {
        if (typeof v === "string") out.push(...parseEndpoints(v, `campaign ${name}`));
      } catch {
        // not an endpoint: not dialled
      }
    }
    return out;
  }

  async #server(endpoint: string, lease_s: number | null, source: ServerView["source"], now: number): Promise<ServerView> {
    let client = this.#clients.get(endpoint);
    if (!client) this.#clients.set(endpoint, (client = new InferenceClient({ endpoint, tls: grpcTlsFromEnv() })));
    const probe = { deadlineMs: PROBE_DEADLINE_MS };
    const view: ServerView = { endpoint, lease_s: lease_s === null ? null : Math.max(0, lease_s), source, live: false, ready: false, models: [], in_flight_sequences: 0 };
    try {
      view.live = await client.serverLive(probe);
      view.ready = await client.serverReady(probe);
      const [index, stats] = await Promise.all([client.repositoryIndex(probe), client.modelStatistics("", "", probe).catch(() => [])]);
      const t = Date.now();
      for (const m of index) {
        const st = stats.filter((x) => x.name === m.name);
        const success = st.reduce((a, x) => a + Number(x.inference_stats?.success?.count ?? 0), 0);
        const inferences = st.reduce((a, x) => a + Number(x.inference_count ?? 0), 0);
        const key = `${endpoint}\n${m.name}`;
        const prev = this.#counters.get(key);
        this.#counters.set(key, { t, success, inferences });
        const dt = prev ? (t - prev.t) / 1000 : 0;
        // a restarted server starts its counters again: no rate for that interval
        const ok = prev && dt > 0 && success >= prev.success;
        const sequences = await this.redis.zcount(slotLeaseKey(this.prefix, endpoint, m.name), now, "+inf");
        view.in_flight_sequences += sequences;
        view.models.push({
          name: m.name,
          version: m.version,
          state: m.state,
          reason: redactUrls(m.reason ?? "").slice(0, 300),
          requests_per_s: ok ? (success - prev.success) / dt : null,
          inferences_per_s: ok ? (inferences - prev.inferences) / dt : null,
          sequences,
        });
      }
    } catch (e) {
      view.error = redactUrls((e as Error).message).slice(0, 300);
    }
    return view;
  }

  /**
   * Workers: the BullMQ connections named after each worker
   * (`<prefix>:<queue>:w:<name>`, one per campaign it consumes) that Redis
   * lists now, and the active jobs each holds (BullMQ's processedBy). Where
   * an ACL refuses CLIENT LIST (it is in @admin), the workers holding jobs
   * are still listed, from the jobs, with alive unknown.
   */
  async #workers(campaigns: string[], errors: string[]): Promise<WorkerView[]> {
    const byName = new Map<string, WorkerView>();
    const worker = (name: string, alive: boolean | null) => {
      let w = byName.get(name);
      if (!w) byName.set(name, (w = { name, alive, campaigns: [], connected_s: null, jobs_running: [] }));
      return w;
    };
    let refused = "";
    for (const campaign of campaigns) {
      const queue = openQueue(this.redis, this.prefix, campaign);
      try {
        // BullMQ's connection name for the queue (its clientName(), protected)
        const base = `${this.prefix}:${Buffer.from(queueName(campaign)).toString("base64")}`;
        const [clients, active] = await Promise.all([
          refused ? [] : queue.getWorkers().catch((e: Error) => ((refused = e.message), [])),
          queue.getActive(0, 999),
        ]);
        for (const c of clients) {
          const raw = c.rawname ?? ""; // BullMQ puts the queue's name in `name`, the connection's in `rawname`
          const w = worker(raw.startsWith(`${base}:w:`) ? raw.slice(base.length + 3) : `unnamed ${c.addr ?? ""}`.trim(), true);
          if (!w.campaigns.includes(campaign)) w.campaigns.push(campaign);
          w.connected_s = Math.max(w.connected_s ?? 0, Number(c.age ?? 0));
        }
        for (const j of active) {
          if (!j.processedBy || !j.id) continue;
          const w = byName.get(j.processedBy) ?? (refused ? worker(j.processedBy, null) : undefined);
          if (!w) continue; // its connection is gone: the job waits for its lock to expire
          if (!w.campaigns.includes(campaign)) w.campaigns.push(campaign);
          w.jobs_running.push(`${campaign}/${j.id}`);
        }
      } finally {
        await queue.close();
      }
    }
    if (refused) errors.push(`workers: Redis refused CLIENT LIST (${redactUrls(refused).slice(0, 200)}): only workers holding a job are listed; allow it with +client|list`);
    return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }
}
