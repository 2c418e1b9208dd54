import { z } from "zod";

export const JOB_KINDS = ["background", "foreground", "injection"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

const gpsPair = z.tuple([z.number(), z.number()]).refine(([a, b]) => a <= b, "start must not exceed end");

/**
 * What a worker needs to run one job. Kept small (it sits in Redis for every
 * waiting job): shifts are indices into the campaign's shift table (stored
 * once in the campaign metadata; index 0 is zero lag), not vectors.
 */
export const JobPayload = z.strictObject({
  v: z.literal(1),
  campaign: z.string().min(1),
  kind: z.enum(JOB_KINDS),
  /** the analysable segment [s, e) the job belongs to (bounds every read, and circular wrapping) */
  segment: gpsPair,
  /** reference-detector span [c0, c1): the first psd_length s are burn-in, output runs from c0 + psd_length */
  span: gpsPair,
  /** shift-table indices analysed by this job */
  shifts: z.array(z.number().int().nonnegative()).min(1),
  /** planned livetime of the job (s), summed over its shifts */
  livetime: z.number().nonnegative(),
});
export type JobPayload = z.infer<typeof JobPayload>;

/** A job's return value and its entry in the campaign's results hash: never bulk arrays. */
export const JobSummary = z.object({
  job_id: z.string(),
  kind: z.enum(JOB_KINDS),
  livetime: z.number().nonnegative(),
  events: z.number().int().nonnegative(),
  loudest: z.number().nullable(),
  path: z.string(),
  shifts: z.number().int().nonnegative(),
  /** seconds of strain read per detector (after the shifts share one read) */
  strain_s: z.number().nonnegative().optional(),
  timings: z.record(z.string(), z.number()).optional(),
  worker: z.string().optional(),
  finished_at: z.number().optional(),
});
export type JobSummary = z.infer<typeof JobSummary>;

/** Entry in the failures hash for a job that failed for good: its livetime is lost, not counted. */
export const JobFailure = z.object({
  job_id: z.string(),
  kind: z.enum(JOB_KINDS),
  reason: z.string(),
  livetime_lost: z.number().nonnegative(),
  attempts: z.number().int().nonnegative(),
  failed_at: z.number(),
});
export type JobFailure = z.infer<typeof JobFailure>;

/**
 * Deterministic job id: kind, span start (GPS) and first shift index. BullMQ
 * forbids ':' in ids and refuses integer-like ids; these never are either.
 */
export function jobId(kind: JobKind, spanStart: number, firstShift: number): string {
  const tag = kind === "background" ? "bg" : kind === "foreground" ? "fg" : "inj";
  return `${tag}-${formatGps(spanStart)}-k${firstShift}`;
}

/** GPS time printed exactly, without exponent (ids and file names). */
export function formatGps(t: number): string {
  return Number.isInteger(t) ? t.toFixed(0) : String(t);
}

/** Validate a payload from Redis, naming the job on failure. */
export function parseJobPayload(id: string | undefined, data: unknown): JobPayload {
  const r = JobPayload.safeParse(data);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`).join("; ");
    throw new Error(`job ${id ?? "(no id)"}: invalid payload: ${issues}`);
  }
  return r.data;
}
