import { z } from "zod";
import { KNOWN_IFOS, parseDuration } from "@timeslide/segments";

// The campaign file (DESIGN.md "Campaign file"). Every object is strict, so a
// misspelt field is an error rather than a silently ignored default.

const positive = (what: string) => z.number({ error: (i) => expected(`${what}`, i.input) }).positive({ error: (i) => expected(what, i.input) });
const positiveInt = (what: string) =>
  z.number({ error: (i) => expected(what, i.input) }).int({ error: (i) => expected(what, i.input) }).positive({ error: (i) => expected(what, i.input) });

function expected(what: string, got: unknown): string {
  return `expected ${what}, got ${got === undefined ? "nothing" : JSON.stringify(got)}`;
}

/** A duration: seconds as a number, or a string with unit s, m, h, d, w or y ("1y", "30d"). */
const duration = (what: string) =>
  z
    .union([z.number(), z.string()], { error: (i) => expected(what, i.input) })
    .transform((v, ctx) => {
      const s = parseDuration(v);
      if (!(s > 0)) {
        ctx.addIssue({ code: "custom", message: expected(what, v) });
        return z.NEVER;
      }
      return s;
    });

const Ifo = z.enum(KNOWN_IFOS as [string, ...string[]], {
  error: (i) => expected(`a detector name (${KNOWN_IFOS.join(", ")})`, i.input),
});

export const SegmentsSpec = z
  .strictObject({
    flags: z.array(z.string().min(1)).min(1).optional(),
    file: z.string().min(1).optional(),
    min_duration: positive("a duration in seconds > 0").default(128),
  })
  .refine((s) => !(s.flags && s.file), { message: "give either flags (DQ bits) or file (a segment list), not both" });

const CampaignFields = z.strictObject({
  name: z
    .string({ error: (i) => expected("a campaign name", i.input) })
    .regex(/^[A-Za-z0-9_-]+$/, { error: (i) => expected("letters, digits, '-' or '_'", i.input) })
    .max(64),
  ifos: z
    .array(Ifo)
    .min(2, { error: "expected at least two detectors (time slides need a pair)" })
    .refine((a) => new Set(a).size === a.length, { message: "expected each detector once" }),
  data: z.strictObject({
    files: z.array(z.string().min(1)).min(1, { error: "expected at least one file glob" }),
    sample_rate: positiveInt("an integer rate in Hz").default(2048),
    segments: SegmentsSpec.default({ min_duration: 128 }),
  }),
  model: z
    .strictObject({
    name: z.string().min(1).default("detector-stream"),
    /** the model input that takes the strain; needed only when the model has several */
    input: z.string().min(1).optional(),
    /** the model output that is the detection statistic; needed only when the model has several */
    output: z.string().min(1).optional(),
    version: z
      .union([z.literal("latest"), z.number().int().positive()], { error: (i) => expected('"latest" or a version number', i.input) })
      .default("latest"),
    servers: z
      .union([z.literal("registry"), z.array(z.string().regex(/^[^\s:]+:\d+$/, { error: (i) => expected("host:port", i.input) })).min(1)], {
        error: (i) => expected('a list of "host:port" or "registry"', i.input),
      })
      .default(["localhost:8001"]),
    /**
     * a factorized pair (DESIGN.md "Factorized models"): `name` is its slides
     * ensemble; workers encode each detector once per job and run the head per shift
     */
    factorized: z.boolean({ error: (i) => expected("true or false", i.input) }).default(false),
    })
    .default({ name: "detector-stream", version: "latest", servers: ["localhost:8001"], factorized: false }),
  inference: z
    .strictObject({
      kernel_length: positive("a kernel length in s > 0").default(1.5),
      inference_sampling_rate: positive("a rate in Hz > 0").default(4),
      batch_size: positiveInt("an integer number of windows > 0").default(128),
      psd_length: positive("a burn-in length in s > 0").default(64),
      fduration: positive("a whitening filter length in s > 0").default(1),
      highpass: z.number().nonnegative({ error: (i) => expected("a frequency in Hz ≥ 0", i.input) }).default(32),
      /** s per Welch segment of the whitening PSD; default: see psdFftLength */
      fftlength: positive("a PSD segment length in s > 0").optional(),
    })
    .default({ kernel_length: 1.5, inference_sampling_rate: 4, batch_size: 128, psd_length: 64, fduration: 1, highpass: 32 }),
  background: z
    .strictObject({
      livetime: duration('a duration such as 3600, "30d" or "1y"').optional(),
      shifts: z
        .union([positiveInt("a number of shifts"), z.array(z.array(z.number()).min(2)).min(1)], {
          error: (i) => expected("a number of shifts or a list of shift vectors", i.input),
        })
        .optional(),
      /** default: max(1 s, inference.kernel_length), so the defaults never warn (a step below the kernel does) */
      step: z.number({ error: (i) => expected("a number of seconds", i.input) }).optional(),
      circular: z.boolean({ error: (i) => expected("true or false", i.input) }).default(false),
      max_job_duration: positive("a duration in s > 0").default(4096),
      /**
       * background livetime one job analyses at most: its chunk's shifts are
       * packed up to this. Unset: 2 d, grown for very large campaigns so the
       * background is at most MAX_BACKGROUND_JOBS jobs (see plan.ts).
       */
      job_livetime: duration('a duration such as 86400 or "2d"').optional(),
      /** segment file ("start end" lines): background samples whose window overlaps one, in any detector's own time, are not produced */
      vetoes: z.string().min(1).optional(),
    })
    .refine((b) => (b.livetime === undefined) !== (b.shifts === undefined), {
      message: "give exactly one of livetime (a target) or shifts (a count or a list)",
    }),
  /** hierarchical removal (DESIGN.md "Real signals in the background"); absent: none */
  significance: z
    .strictObject({
      /** remove up to N saturated zero-lag candidates' neighbourhoods from the background */
      hierarchical_removal: z
        .number({ error: (i) => expected("an integer number of removals ≥ 0", i.input) })
        .int({ error: (i) => expected("an integer number of removals ≥ 0", i.input) })
        .nonnegative({ error: (i) => expected("an integer number of removals ≥ 0", i.input) })
        .default(0),
      /** s: w in |t + δ_i − t_c| < w; default postprocess.cluster_window */
      removal_window: positive("a window in s > 0").optional(),
    })
    .optional(),
  injections: z
    .strictObject({
      file: z.string().min(1),
      window: positive("a window in s > 0").default(1.0),
    })
    .optional(),
  postprocess: z
    .strictObject({
      integration_window: positive("a window in s > 0").default(1.0),
      cluster_window: positive("a window in s > 0").default(8.0),
    })
    .default({ integration_window: 1.0, cluster_window: 8.0 }),
  output: z.string().min(1).optional(),
  queue: z
    .strictObject({
      redis: z.string().regex(/^rediss?:\/\//, { error: (i) => expected("a redis:// or rediss:// URL", i.input) }).default("redis://localhost:6379"),
      attempts: positiveInt("an integer number of attempts > 0").default(3),
    })
    .default({ redis: "redis://localhost:6379", attempts: 3 }),
});

/** The campaign file's fields with the defaults that depend on other fields filled in. */
export const CampaignSpec = CampaignFields.transform((c) => ({
  ...c,
  background: { ...c.background, step: c.background.step ?? Math.max(1, c.inference.kernel_length) },
}));

export type CampaignSpecInput = z.input<typeof CampaignSpec>;
export type CampaignSpec = z.output<typeof CampaignSpec>;

/** The campaign's hierarchical-removal settings, defaults resolved: N (0: none) and the window w (s). */
export function removalSettings(spec: Pick<CampaignSpec, "significance" | "postprocess">): { maxRemovals: number; window: number } {
  return {
    maxRemovals: spec.significance?.hierarchical_removal ?? 0,
    window: spec.significance?.removal_window ?? spec.postprocess.cluster_window,
  };
}

/**
 * Welch segment length (s) of the whitening PSD: `inference.fftlength`, else
 * 4 s, halved while the burn-in would hold fewer than 4 such segments, and
 * never below `fduration`. Why 4 s: real strain's ASD rises by orders of
 * magnitude below ~30 Hz, and 1 s Hann segments leak that wall into the
 * 20–35 Hz band (PSD there 1.5–4× too high, the band under-weighted); 4 s
 * segments do not. gwpy and aframe also estimate it from segments longer
 * than the whitening filter.
 */
export function psdFftLength(inference: Pick<CampaignSpec["inference"], "fftlength" | "fduration" | "psd_length">): number {
  if (inference.fftlength !== undefined) return inference.fftlength;
  let f = 4;
  while (f > inference.fduration && 4 * f > inference.psd_length) f /= 2;
  return Math.max(f, inference.fduration);
}
