// What a worker checks before it trusts a job or a campaign read from Redis.
// Anything there can be edited after submit (a job's data through BullMQ's
// job hash or job.updateData, the campaign metadata hash), so the worker
// rebuilds the plan from the stored spec, segments and shift table and
// refuses what the plan does not hold, and refuses paths outside the
// campaign's data and output roots.
import { isAbsolute, relative, resolve, sep } from "node:path";
import { z } from "zod";
import { Segment, SegmentList } from "@timeslide/segments";
import { planJobs, type Exclusions } from "./plan.js";
import type { Redis } from "ioredis";
import { CampaignSpec } from "./schema.js";
import { readMeta, type CampaignMeta } from "./store.js";
import { InvalidPayloadError, type JobPayload } from "./jobs.js";

/**
 * A campaign's metadata as stored, its spec validated again (the hash can be
 * edited in Redis). No metadata: an Error (purged, or not submitted yet); a
 * spec that does not validate: an InvalidPayloadError (retrying can't help).
 */
export async function readStoredCampaign(redis: Redis, prefix: string, campaign: string): Promise<{ meta: CampaignMeta; spec: CampaignSpec }> {
  const meta = await readMeta(redis, prefix, campaign);
  if (!meta) throw new Error(`campaign ${campaign}: no metadata under prefix ${prefix} (purged?)`);
  const parsed = CampaignSpec.safeParse(meta.spec);
  if (!parsed.success) throw new InvalidPayloadError(`campaign ${campaign}: stored spec does not validate: ${parsed.error.issues[0]?.message}`);
  return { meta, spec: parsed.data };
}

/** Job ids as the planner writes them (`jobId`): they name result files, so nothing else is accepted. */
export const JOB_ID_PATTERN = /^(bg|fg|inj)-\d+(\.\d+)?-k\d+$/;

const StoredSegments = z.object({
  segments: z.array(z.tuple([z.number(), z.number()])).min(1),
  edge_s: z.number().nonnegative(),
  vetoes: z.array(z.tuple([z.number(), z.number()])).optional(),
});
const ShiftTable = z.array(z.array(z.number())).min(1);

/**
 * A campaign's planned jobs by id, compact: each payload is kept as its JSON
 * text (about a third of the objects' heap; 2·10^5 jobs cost ~40 MiB per
 * worker thread instead of ~100) and parsed when asked for.
 */
export class PlannedJobs {
  readonly #json = new Map<string, string>();
  constructor(jobs: Iterable<{ id: string; payload: JobPayload }>) {
    for (const j of jobs) this.#json.set(j.id, JSON.stringify(j.payload));
  }
  get size(): number {
    return this.#json.size;
  }
  has(id: string): boolean {
    return this.#json.has(id);
  }
  get(id: string): JobPayload | undefined {
    const text = this.#json.get(id);
    return text === undefined ? undefined : (JSON.parse(text) as JobPayload);
  }
  keys(): IterableIterator<string> {
    return this.#json.keys();
  }
}

/**
 * The campaign's jobs by id, rebuilt from its metadata (the stored plan's
 * segments and shift table, and the spec). `injectionTimes`: as planned; when
 * not known, every chunk is given an injection job (its livetime is the
 * chunk's, so lost livetime is still right).
 */
export function plannedJobs(meta: Pick<CampaignMeta, "campaign" | "plan" | "shift_table">, spec: CampaignSpec, injectionTimes?: Float64Array): PlannedJobs {
  const stored = StoredSegments.safeParse(meta.plan);
  if (!stored.success) throw new Error(`campaign ${meta.campaign}: the stored plan has no valid segments and edge_s (metadata edited or from another version?)`);
  const table = ShiftTable.safeParse(meta.shift_table);
  if (!table.success || table.data.some((v) => v.length !== spec.ifos.length))
    throw new Error(`campaign ${meta.campaign}: the stored shift table is not a list of ${spec.ifos.length}-detector shift vectors`);
  const segments = stored.data.segments.map(([s, e]) => new Segment(s, e));
  const times = injectionTimes ? Float64Array.from(injectionTimes).sort() : spec.injections ? ("every-chunk" as const) : undefined;
  const vetoes = stored.data.vetoes && new SegmentList(stored.data.vetoes).coalesce();
  return new PlannedJobs(planJobs(spec, { edge: stored.data.edge_s, vetoes }, segments, table.data, times).jobs);
}

/** The segment-end edge (s) and background vetoes the campaign was planned with (the stored plan's edge_s and vetoes). */
export function storedExclusions(meta: Pick<CampaignMeta, "campaign" | "plan">): Exclusions {
  const stored = StoredSegments.safeParse(meta.plan);
  if (!stored.success) throw new Error(`campaign ${meta.campaign}: the stored plan has no valid segments and edge_s (metadata edited or from another version?)`);
  return { edge: stored.data.edge_s, vetoes: stored.data.vetoes && new SegmentList(stored.data.vetoes).coalesce() };
}

/**
 * Why a payload read from Redis is not the planned job of that id, or
 * undefined when it is. Names the job, the field, what the plan says and
 * what the payload holds.
 */
export function payloadMismatch(id: string, payload: JobPayload, planned: { get(id: string): JobPayload | undefined }): string | undefined {
  const want = planned.get(id);
  if (!want) return `job ${id}: not a job of campaign ${payload.campaign}'s plan (refused: it was not submitted by timeslide submit)`;
  for (const field of ["v", "campaign", "kind", "segment", "span", "shifts", "livetime"] as const) {
    const a = JSON.stringify(payload[field]);
    const b = JSON.stringify(want[field]);
    if (a !== b) return `job ${id}: payload field ${field} is ${a}, the campaign's plan says ${b} (job data edited in Redis?)`;
  }
  return undefined;
}

/** Whether `path` is `root` or lies under it (both absolute, normalised). */
export function isInside(root: string, path: string): boolean {
  const r = relative(resolve(root), resolve(path));
  return r === "" || (!r.startsWith(`..${sep}`) && r !== ".." && !isAbsolute(r));
}

/** The directory part of a glob before its first wildcard segment: `data/**\/H-*.hdf5` → `data`. */
export function globRoot(pattern: string): string {
  const parts = pattern.split("/");
  const i = parts.findIndex((p) => /[*?[\]{}()!]/.test(p));
  return i < 0 ? pattern : parts.slice(0, i).join("/") || (pattern.startsWith("/") ? "/" : ".");
}

/** Where a campaign's data may be: the fixed directory part of each data.files glob, against base_dir. */
export function dataRoots(spec: CampaignSpec, baseDir: string): string[] {
  return spec.data.files.map((p) => resolve(baseDir, globRoot(p)));
}

/** The output directory the spec names (as loadCampaign resolves it). */
export function specOutput(spec: CampaignSpec, baseDir: string): string {
  return resolve(baseDir, spec.output ?? `results/${spec.name}`);
}

/**
 * Problems with the file paths in a campaign's metadata: every data file must
 * lie under a root of data.files, and the output must be the spec's. Each
 * names the metadata field, the path and the roots allowed.
 */
export function campaignPathProblems(meta: Pick<CampaignMeta, "campaign" | "base_dir" | "output" | "files">, spec: CampaignSpec): string[] {
  const problems: string[] = [];
  const at = `campaign ${meta.campaign} metadata`;
  if (!meta.base_dir || !isAbsolute(meta.base_dir)) return [`${at}: base_dir ${JSON.stringify(meta.base_dir)} is not an absolute directory`];
  if (spec.name !== meta.campaign) problems.push(`${at}: spec.name is ${JSON.stringify(spec.name)}, expected ${JSON.stringify(meta.campaign)}`);
  const output = specOutput(spec, meta.base_dir);
  if (typeof meta.output !== "string" || resolve(meta.output) !== output)
    problems.push(`${at}: output ${JSON.stringify(meta.output)} is not the campaign's output directory ${output} (from output in the spec)`);
  const roots = dataRoots(spec, meta.base_dir);
  for (const [ifo, list] of Object.entries(meta.files ?? {})) {
    if (!spec.ifos.includes(ifo)) problems.push(`${at}: files lists detector ${JSON.stringify(ifo)}, not one of ifos ${spec.ifos.join(", ")}`);
    if (!Array.isArray(list)) {
      problems.push(`${at}: files.${ifo} is not a list of paths`);
      continue;
    }
    list.forEach((p, i) => {
      if (typeof p !== "string" || !isAbsolute(p) || !roots.some((r) => isInside(r, p)))
        problems.push(`${at}: files.${ifo}[${i}] ${JSON.stringify(p)} is outside the data roots of data.files (${roots.join(", ")})`);
    });
  }
  return problems;
}
