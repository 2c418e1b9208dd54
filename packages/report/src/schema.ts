import { z } from "zod";

// report.json, exactly the DESIGN.md shape. Non-finite numbers (an infinite
// FAR when there is no background livetime) are written as null.
const num = z.number().nullable();

export const ReportJson = z.strictObject({
  campaign: z.string(),
  ifos: z.array(z.string()),
  livetime: z.strictObject({ background_s: z.number(), background_years: z.number(), foreground_s: z.number() }),
  jobs: z.strictObject({
    total: z.number().int().nonnegative(),
    completed: z.number().int().nonnegative(),
    failed: z.number().int().nonnegative(),
    failed_ids: z.array(z.string()),
  }),
  far_curve: z.array(z.strictObject({ detection_statistic: z.number(), far_per_year: num })),
  foreground: z.array(
    z.strictObject({
      time: z.number(),
      detection_statistic: z.number(),
      far_per_year: num,
      ifar_years: num,
      p_value: z.number(),
      saturated: z.boolean(),
      /** hierarchical removal: FAR against the background left after the removals made before this candidate */
      far_per_year_exclusive: num.optional(),
    }),
  ),
  /** hierarchical removal: what was taken out of the background, in the order removed */
  removed: z
    .array(
      z.strictObject({
        time: z.number(),
        detection_statistic: z.number(),
        events_removed: z.number().int().nonnegative(),
        livetime_removed_s: z.number().nonnegative(),
      }),
    )
    .optional(),
  injections: z.strictObject({
    injected: z.number().int().nonnegative(),
    found: z.array(z.strictObject({ far_per_year: num, found: z.number().int().nonnegative(), efficiency: z.number() })),
    sensitive_volume: z.array(z.strictObject({ far_per_year: num, volume: z.number(), error: z.number() })),
  }),
});
export type ReportJson = z.infer<typeof ReportJson>;

/** What the HTML shows beyond report.json (kept out of it so its shape stays the contract). */
export interface ReportExtras {
  /** true while the campaign is still running */
  partial?: boolean;
  generated_at?: string;
  /** failed jobs with their reasons and the livetime each cost */
  failures?: { job_id: string; kind: string; reason: string; livetime_lost: number }[];
  /** livetime planned for the campaign (s), when known */
  planned_background_s?: number;
  /** efficiency against SNR at one FAR threshold */
  efficiency_vs_snr?: {
    far_per_year: number;
    bins: { snr_low: number; snr_high: number; injected: number; found: number; efficiency: number; error: number }[];
  };
  /** hierarchical removal: the settings, the background livetime left, and per foreground row (report order) whether its exclusive FAR is a bound */
  removal?: { hierarchical_removal: number; removal_window: number; background_left_s: number; exclusive_saturated: boolean[] };
  /** the distance unit or name of the volume V0 (e.g. "Mpc^3") */
  volume_unit?: string;
}

/** Replace non-finite numbers by null, recursively (JSON has no Infinity). */
export function jsonSafe<T>(value: T): T {
  return JSON.parse(JSON.stringify(value, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? null : v)));
}
