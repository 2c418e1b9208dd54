// Aggregation of a campaign: results/failures hashes + job files ->
// background.h5, foreground.h5, injections.h5, report.json, report.html.
import { existsSync, mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { Redis } from "ioredis";
import { pino, type Logger } from "pino";
import { CampaignSpec, campaignKeys, plannedJobs, readMeta, removalSettings, shiftIndices, JobFailure, JobSummary, type CampaignMeta, type PlannedJobs } from "@timeslide/campaign";
import {
  BackgroundSummary,
  chooseCapacity,
  readColumns,
  readEventsFile,
  writeBackground,
  writeEvents,
  hierarchicalRemoval,
  type EventSet,
  type HierarchicalResult,
} from "@timeslide/stats";
import { ReportJson, renderReportHtml, type ReportExtras } from "@timeslide/report";
import { loadCheckpoint, saveCheckpoint } from "./checkpoint.js";
import { farCurveBlock, foregroundRows, injectionBlock, livetimeBlock, type InjectionSet } from "./build.js";
import { BackgroundRemover, type RemovalJob } from "./removal.js";

export interface AggregateOptions {
  redis: Redis;
  prefix: string;
  campaign: string;
  /** output directory (default: the campaign's output) */
  out?: string;
  /** loudest background events kept exactly (default: chooseCapacity of the planned livetimes) */
  capacity?: number;
  /** the injection file (default: the campaign's injections.file) */
  injectionFile?: string;
  /** ignore the checkpoint of the last aggregation and read every job file */
  fromScratch?: boolean;
  /** hierarchical removal settings instead of the campaign's `significance` block (e.g. to compare with none) */
  significance?: { hierarchical_removal?: number; removal_window?: number };
  logger?: Logger;
}

export interface AggregateResult {
  out: string;
  partial: boolean;
  report: ReportJson;
  files: { background: string; foreground: string; injections: string | null; report_json: string; report_html: string };
}

const defaultLogger = () => pino({ name: "aggregator", level: process.env.LOG_LEVEL ?? "info" }, pino.destination(2));

/** Read a hash in pages (10^5 entries never come back in one reply). */
async function scanHash(redis: Redis, key: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = "0";
  do {
    const [next, flat] = await redis.hscan(key, cursor, "COUNT", 1000);
    for (let i = 0; i < flat.length; i += 2) out.set(flat[i], flat[i + 1]);
    cursor = next;
  } while (cursor !== "0");
  return out;
}

function parseEntry<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, key: string, id: string, raw: string): T {
  let v: unknown;
  try {
    v = JSON.parse(raw);
  } catch {
    throw new Error(`${key} ${id}: not JSON`);
  }
  const r = schema.safeParse(v);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new Error(`${key} ${id}: ${i.path.map(String).join(".") || "(entry)"}: ${i.message}`);
  }
  return r.data;
}

function jobFile(s: JobSummary, out: string, metaOutput: string): string {
  const candidates = [isAbsolute(s.path) ? s.path : resolve(metaOutput || out, s.path), join(metaOutput || out, "jobs", `${s.job_id}.h5`), join(out, "jobs", `${s.job_id}.h5`)];
  return candidates.find((p) => existsSync(p)) ?? candidates[0];
}

function atomicWrite(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

function concat(parts: EventSet[], nIfo: number): EventSet {
  const n = parts.reduce((a, p) => a + p.detection_statistic.length, 0);
  const out: EventSet = { time: new Float64Array(n), detection_statistic: new Float64Array(n), shift: new Float64Array(n * nIfo), nIfo, livetime: 0, ifos: [] };
  const withIdx = parts.some((p) => p.injection_index);
  if (withIdx) out.injection_index = new Int32Array(n).fill(-1);
  let k = 0;
  for (const p of parts) {
    out.time.set(p.time, k);
    out.detection_statistic.set(p.detection_statistic, k);
    out.shift.set(p.shift, k * nIfo);
    if (p.injection_index) out.injection_index!.set(p.injection_index, k);
    out.livetime += p.livetime;
    k += p.detection_statistic.length;
  }
  return out;
}

export async function aggregateCampaign(o: AggregateOptions): Promise<AggregateResult> {
  // a caller's logger already names the campaign (the worker's aggregation thread binds it)
  const log = o.logger ?? defaultLogger().child({ campaign: o.campaign });
  const keys = campaignKeys(o.prefix, o.campaign);
  const meta: CampaignMeta | undefined = await readMeta(o.redis, o.prefix, o.campaign);
  if (!meta) throw new Error(`no campaign ${o.campaign} under prefix ${o.prefix} (was it submitted?)`);
  const spec = (meta.spec ?? {}) as { ifos?: string[]; injections?: { file?: string } };
  const ifos = spec.ifos ?? [];
  const nIfo = Math.max(1, ifos.length);
  const out = resolve(o.out ?? meta.output ?? ".");
  const t0 = Date.now();

  const results = [...(await scanHash(o.redis, keys.results))].map(([id, raw]) => parseEntry(JobSummary, keys.results, id, raw));
  const failures = [...(await scanHash(o.redis, keys.failures))].map(([id, raw]) => parseEntry(JobFailure, keys.failures, id, raw));
  results.sort((a, b) => (a.job_id < b.job_id ? -1 : a.job_id > b.job_id ? 1 : 0)); // deterministic order
  const partial = meta.state !== "submitted" || results.length + failures.length < meta.total_jobs;

  // Background from the last aggregation's checkpoint plus the jobs since.
  const capacity = o.capacity ?? chooseCapacity(meta.planned.background, meta.planned.foreground);
  const key = { campaign: o.campaign, specHash: meta.spec_hash ?? "", capacity, nIfo };
  const completedBg = new Set(results.filter((r) => r.kind === "background").map((r) => r.job_id));
  const bg = (o.fromScratch ? undefined : await loadCheckpoint(out, key, completedBg, log)) ?? new BackgroundSummary({ nIfo, capacity });
  const carried = bg.jobCount;
  const fgParts: EventSet[] = [];
  // every background job, folded before or now (only when removal asks: removal reads the few near each candidate)
  const bgFiles = (): RemovalJob[] =>
    results.filter((s) => s.kind === "background").map((s) => ({ job_id: s.job_id, path: jobFile(s, out, meta.output), livetime: s.livetime }));
  const injParts: EventSet[] = [];
  const injected = new Set<number>();
  let injectedListed = true;
  const tScan = Date.now();
  for (const s of results) {
    if (s.kind === "background" && bg.hasJob(s.job_id)) continue; // folded into the checkpoint
    const path = jobFile(s, out, meta.output);
    const { events: ev } = await readEventsFile(path);
    if (ev.nIfo !== nIfo) throw new Error(`${path}: /events/shift has ${ev.nIfo} columns, campaign ${o.campaign} has ${nIfo} detectors`);
    if (Math.abs(ev.livetime - s.livetime) > 1e-6 * Math.max(1, s.livetime)) {
      log.warn({ job_id: s.job_id, file_livetime: ev.livetime, summary_livetime: s.livetime }, "job file and summary disagree on livetime; using the file");
    }
    if (s.kind === "background") bg.addJob(s.job_id, ev);
    else if (s.kind === "foreground") fgParts.push(ev);
    else {
      injParts.push(ev);
      const idx = await readColumns(path, "injections");
      if (idx?.columns.index) for (const i of idx.columns.index) injected.add(i);
      else injectedListed = false;
    }
  }
  const tRead = Date.now();
  const fg = concat(fgParts, nIfo);
  const tfg = fg.livetime;

  // injections: parameters from the campaign's injection file
  let inj: InjectionSet | null = null;
  let injFile: string | null = null;
  let injTimes: Float64Array | null = null;
  if (injParts.length) {
    injFile = o.injectionFile ?? (spec.injections?.file ? resolve(meta.base_dir || ".", spec.injections.file) : null);
    const params = injFile && existsSync(injFile) ? await readColumns(injFile, "parameters") : null;
    if (injFile && !params) log.warn({ file: injFile }, "injection file unreadable or without /parameters: efficiency without SNR or weights");
    const times = injFile && existsSync(injFile) ? await readColumns(injFile, "injections") : null;
    const nInFile = times?.columns.time?.length ?? 0;
    if (!injectedListed) {
      // job files without /injections/index: assume every injection of the file was made
      log.warn("injection job files lack /injections/index; counting every injection in the file as injected");
      for (let i = 0; i < nInFile; i++) injected.add(i);
    }
    const V0 = Number(params?.attrs.V0 ?? params?.attrs.volume ?? 1);
    inj = { events: concat(injParts, nIfo), injected: [...injected].sort((a, b) => a - b), parameters: params?.columns ?? {}, V0: Number.isFinite(V0) && V0 > 0 ? V0 : 1 };
    if (times?.columns.time) injTimes = times.columns.time;
  }

  // Hierarchical removal (DESIGN.md "Real signals in the background").
  const removal = await removeLoudest(o, meta, bg, fg, tfg, bgFiles, log);
  const { rows } = foregroundRows(bg, fg, tfg, removal?.result);
  const removedBlock = removal?.result.removed.map((r) => ({
    time: r.time,
    detection_statistic: r.detection_statistic,
    events_removed: r.events_removed,
    livetime_removed_s: r.livetime_removed_s,
  }));
  const { block: injBlock, efficiency } = injectionBlock(bg, inj);
  const failedIds = failures.map((f) => f.job_id).sort();
  const report = ReportJson.parse({
    campaign: o.campaign,
    ifos,
    livetime: livetimeBlock(bg, tfg),
    jobs: { total: meta.total_jobs, completed: results.length, failed: failures.length, failed_ids: failedIds },
    far_curve: farCurveBlock(bg),
    foreground: rows,
    ...(removedBlock ? { removed: removedBlock } : {}),
    injections: injBlock,
  });

  const files = {
    background: join(out, "background.h5"),
    foreground: join(out, "foreground.h5"),
    injections: inj ? join(out, "injections.h5") : null,
    report_json: join(out, "report.json"),
    report_html: join(out, "report.html"),
  };
  const jobsList = (kind: string) => results.filter((r) => r.kind === kind).map((r) => r.job_id);
  const tStats = Date.now();
  await writeBackground(files.background, bg, { ifos, campaign: o.campaign });
  saveCheckpoint(out, key, files.background);
  const sig = rows; // time-ordered, like the events written below
  const order = Array.from({ length: fg.time.length }, (_, i) => i).sort((a, b) => fg.time[a] - fg.time[b]);
  const pickRows = (a: Float64Array, w = 1) => Float64Array.from({ length: order.length * w }, (_, k) => a[order[Math.floor(k / w)] * w + (k % w)]);
  await writeEvents(
    files.foreground,
    { time: pickRows(fg.time), detection_statistic: pickRows(fg.detection_statistic), shift: pickRows(fg.shift, nIfo), nIfo, livetime: tfg, ifos, kind: "foreground" },
    { campaign: o.campaign, n_jobs: fgParts.length },
    {
      significance: {
        attrs: { background_livetime: bg.livetime },
        datasets: {
          far_per_year: Float64Array.from(sig, (r) => r.far_per_year ?? Infinity),
          ifar_years: Float64Array.from(sig, (r) => r.ifar_years ?? 0),
          p_value: Float64Array.from(sig, (r) => r.p_value),
          saturated: Int32Array.from(sig, (r) => (r.saturated ? 1 : 0)),
          ...(removal ? { far_per_year_exclusive: Float64Array.from(sig, (r) => r.far_per_year_exclusive ?? Infinity) } : {}),
        },
      },
      ...(removal && removedBlock
        ? {
            removed: {
              attrs: { hierarchical_removal: removal.maxRemovals, removal_window: removal.window, background_livetime_left: removal.result.backgroundLivetimeLeft },
              datasets: {
                time: Float64Array.from(removedBlock, (r) => r.time),
                detection_statistic: Float64Array.from(removedBlock, (r) => r.detection_statistic),
                events_removed: BigInt64Array.from(removedBlock, (r) => BigInt(r.events_removed)),
                livetime_removed_s: Float64Array.from(removedBlock, (r) => r.livetime_removed_s),
              },
            },
          }
        : {}),
      jobs: { datasets: { job_id: jobsList("foreground") } },
    },
  );
  if (inj && files.injections) {
    const ie = inj.events as EventSet;
    await writeEvents(
      files.injections,
      { ...ie, ifos, kind: "injection" },
      { campaign: o.campaign, n_jobs: injParts.length, ...(injFile ? { injection_file: injFile } : {}) },
      {
        parameters: { datasets: inj.parameters },
        // index: the injections made (into the injection file's rows); time: every injection's GPS time, by row
        injections: { datasets: { index: BigInt64Array.from(inj.injected, (i) => BigInt(i)), ...(injTimes ? { time: injTimes } : {}) } },
        jobs: { datasets: { job_id: jobsList("injection") } },
      },
    );
  }
  const extras: ReportExtras = {
    partial,
    generated_at: new Date().toISOString(),
    failures: failures.map((f) => ({ job_id: f.job_id, kind: f.kind, reason: f.reason, livetime_lost: f.livetime_lost })),
    planned_background_s: meta.planned.background,
    efficiency_vs_snr: efficiency,
    ...(removal
      ? {
          removal: {
            hierarchical_removal: removal.maxRemovals,
            removal_window: removal.window,
            background_left_s: removal.result.backgroundLivetimeLeft,
            // by report row (time order): whether the exclusive FAR is a bound
            exclusive_saturated: Array.from(fg.time.keys())
              .sort((a, b) => fg.time[a] - fg.time[b])
              .map((i) => removal.result.exclusive[i].saturated),
          },
        }
      : {}),
  };
  atomicWrite(files.report_json, JSON.stringify(report, null, 2) + "\n");
  atomicWrite(files.report_html, await renderReportHtml(report, extras));
  log.info(
    {
      out,
      partial,
      jobs: results.length,
      jobs_read: results.length - carried,
      failed: failures.length,
      background_s: bg.livetime,
      events: bg.events,
      ms: Date.now() - t0,
      // where the time went: results and checkpoint, job files, statistics and removal, writing
      ms_parts: { start: tScan - t0, read: tRead - tScan, stats: tStats - tRead, write: Date.now() - tStats },
    },
    "aggregated",
  );
  return { out, partial, report, files };
}

/**
 * Hierarchical removal when the campaign (or the caller) asks for it: N > 0.
 * Jobs near each removed candidate are found through the campaign's plan
 * (rebuilt from the metadata) when it can be, else every background job file
 * is looked at.
 */
async function removeLoudest(
  o: AggregateOptions,
  meta: CampaignMeta,
  bg: BackgroundSummary,
  fg: EventSet,
  tfg: number,
  bgFiles: () => RemovalJob[],
  log: Logger,
): Promise<{ result: HierarchicalResult; maxRemovals: number; window: number } | undefined> {
  const raw = (meta.spec ?? {}) as { significance?: { hierarchical_removal?: number } };
  const asked = o.significance?.hierarchical_removal ?? raw.significance?.hierarchical_removal ?? 0;
  if (!(asked > 0)) return undefined;
  const parsed = CampaignSpec.safeParse(meta.spec);
  if (!parsed.success) throw new Error(`campaign ${o.campaign}: hierarchical removal needs the campaign's spec, which does not validate: ${parsed.error.issues[0]?.message}`);
  const spec = parsed.data;
  const settings = removalSettings({ ...spec, significance: { ...spec.significance, hierarchical_removal: asked, ...(o.significance?.removal_window ? { removal_window: o.significance.removal_window } : {}) } });
  let planned: PlannedJobs | undefined;
  try {
    planned = plannedJobs(meta, spec);
  } catch (e) {
    log.warn({ err: (e as Error).message }, "hierarchical removal: the plan cannot be rebuilt; every background job file is looked at");
  }
  const jobs: RemovalJob[] = bgFiles().map((j) => {
    const payload = planned?.get(j.job_id);
    if (!payload || spec.background.circular) return { ...j, payload };
    // each detector's own times: the span shifted by the job's smallest to largest offset of that detector
    const vs = shiftIndices(payload).map((k) => meta.shift_table[k]);
    const ownTimes = spec.ifos.map((_, i): [number, number] => [payload.span[0] + Math.min(...vs.map((v) => v[i])), payload.span[1] + Math.max(...vs.map((v) => v[i]))]);
    return { ...j, payload, ownTimes };
  });
  const remover = new BackgroundRemover(jobs, settings.window, spec.inference.kernel_length / 2 + spec.postprocess.integration_window / 2, log);
  const candidates = Array.from(fg.time, (t, i) => ({ time: t, detection_statistic: fg.detection_statistic[i] }));
  const result = await hierarchicalRemoval({
    candidates,
    countAtLeast: (x) => bg.countAtLeast(x),
    backgroundLivetime: bg.livetime,
    foregroundLivetime: tfg,
    maxRemovals: settings.maxRemovals,
    remove: (c) => remover.remove(c.time),
  });
  return { result, maxRemovals: settings.maxRemovals, window: settings.window };
}
