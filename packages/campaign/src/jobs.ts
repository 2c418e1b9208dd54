import { z } from "zod";
import { formatGps } from "@timeslide/segments";

export const JOB_KINDS = ["background", "foreground", "injection"] as const;
export type JobKind = (typeof JOB_KINDS)[number];
/** Short kind names: job names and ids (they are stored with every job). */
export const JOB_TAG: Record<JobKind, string> = { background: "bg", foreground: "fg", injection: "inj" };

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
  /** shift-table indices analysed by this job, as inclusive ranges [first, last] (compact in Redis) */
  shifts: z
    .array(z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).refine(([a, b]) => a <= b, "first must not exceed last"))
    .min(1),
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

/** The shift-table indices of a job, expanded from its ranges. */
export function shiftIndices(payload: Pick<JobPayload, "shifts">): number[] {
  const out: number[] = [];
  for (const [a, b] of payload.shifts) for (let k = a; k <= b; k++) out.push(k);
  return out;
}

/** Sorted indices as inclusive ranges: [1,2,3,7] -> [[1,3],[7,7]]. */
export function toRanges(indices: readonly number[]): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const k of indices) {
    const last = out[out.length - 1];
    if (last && k === last[1] + 1) last[1] = k;
    else out.push([k, k]);
  }
  return out;
}

/**
 * Deterministic job id: kind, span start (GPS) and first shift index. BullMQ
 * forbids ':' in ids and refuses integer-like ids; these never are either.
 */
export function jobId(kind: JobKind, spanStart: number, firstShift: number): string {
  return `${JOB_TAG[kind]}-${formatGps(spanStart)}-k${firstShift}`;
}


/** A payload that does not validate: retrying can't help (workers fail the job for good). */
export class InvalidPayloadError extends Error {
  override name = "InvalidPayloadError";
}

/** Validate a payload from Redis, naming the job on failure. */
export function parseJobPayload(id: string | undefined, data: unknown): JobPayload {
  const r = JobPayload.safeParse(data);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`).join("; ");
    throw new InvalidPayloadError(`job ${id ?? "(no id)"}: invalid payload: ${issues}`);
  }
  return r.data;
}
