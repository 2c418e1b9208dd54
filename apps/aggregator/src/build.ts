// From merged event sets to report.json's pieces (shared by the campaign
// aggregator and `timeslide far`).
import {
  BackgroundSummary,
  JULIAN_YEAR_S,
  efficiencyVsSnr,
  farThresholds,
  foundAtThresholds,
  injectionFars,
  loudestPerInjection,
  sensitiveVolume,
  thinFarCurve,
  type EventSet,
  type Significance,
} from "@timeslide/stats";
import { jsonSafe, type ReportExtras, type ReportJson } from "@timeslide/report";

export interface ForegroundRow {
  time: number;
  detection_statistic: number;
  far_per_year: number | null;
  ifar_years: number | null;
  p_value: number;
  saturated: boolean;
  /** with hierarchical removal: FAR against the background left after the removals made before this candidate */
  far_per_year_exclusive?: number | null;
}

/** report.json's livetime block. */
export function livetimeBlock(bg: BackgroundSummary, foregroundLivetime: number): ReportJson["livetime"] {
  return { background_s: bg.livetime, background_years: bg.livetime / JULIAN_YEAR_S, foreground_s: foregroundLivetime };
}

/**
 * Every foreground event's significance, in time order; `exact` false where
 * n(x) came from the bulk histogram. `removal`: per foreground event (in the
 * order given), its inclusive and exclusive significance from hierarchical
 * removal; rows then carry far_per_year_exclusive.
 */
export function foregroundRows(
  bg: BackgroundSummary,
  fg: { time: ArrayLike<number>; detection_statistic: ArrayLike<number> },
  foregroundLivetime: number,
  removal?: { inclusive: Significance[]; exclusive: Significance[] },
): { rows: ForegroundRow[]; sig: Significance[] } {
  const order = Array.from({ length: fg.time.length }, (_, i) => i).sort((a, b) => fg.time[a] - fg.time[b]);
  const sig = order.map((i) => removal?.inclusive[i] ?? bg.significance(fg.detection_statistic[i], foregroundLivetime));
  const rows = order.map((i, k) =>
    jsonSafe({
      time: fg.time[i],
      detection_statistic: fg.detection_statistic[i],
      far_per_year: sig[k].far_per_year,
      ifar_years: sig[k].ifar_years,
      p_value: sig[k].p_value,
      saturated: sig[k].saturated,
      ...(removal ? { far_per_year_exclusive: removal.exclusive[i].far_per_year } : {}),
    }),
  );
  return { rows, sig };
}

export function farCurveBlock(bg: BackgroundSummary, maxPoints = 500): ReportJson["far_curve"] {
  return jsonSafe(thinFarCurve(bg.farCurve(), maxPoints));
}

export interface InjectionSet {
  /** events of injection jobs, with injection_index */
  events: Pick<EventSet, "detection_statistic" | "injection_index">;
  /** indices into the injection file of the injections actually made */
  injected: number[];
  /** parameter columns of the injection file (full length) */
  parameters: Record<string, Float64Array>;
  /** V0: the volume the injections were drawn from (1: fraction of it) */
  V0: number;
}

/** report.json's injections block and the efficiency-vs-SNR extra. */
export function injectionBlock(bg: BackgroundSummary, inj: InjectionSet | null): { block: ReportJson["injections"]; efficiency?: ReportExtras["efficiency_vs_snr"] } {
  if (!inj || inj.injected.length === 0) return { block: { injected: 0, found: [], sensitive_volume: [] } };
  const nAll = Math.max(0, ...Object.values(inj.parameters).map((c) => c.length), ...inj.injected.map((i) => i + 1));
  const idx = inj.events.injection_index ?? new Int32Array(inj.events.detection_statistic.length).fill(-1);
  const loudestAll = loudestPerInjection(nAll, inj.events.detection_statistic, idx);
  const pick = (col: Float64Array | undefined) => (col ? Float64Array.from(inj.injected, (i) => col[i]) : undefined);
  const loudest = Float64Array.from(inj.injected, (i) => loudestAll[i]);
  const fars = injectionFars({ injected: inj.injected.length, loudest }, bg);
  const thresholds = farThresholds(bg.livetime);
  const block = jsonSafe({
    injected: inj.injected.length,
    found: foundAtThresholds(fars, thresholds),
    sensitive_volume: sensitiveVolume(fars, thresholds, inj.V0, pick(inj.parameters.weight)),
  });
  const snr = pick(inj.parameters.snr);
  // efficiency at 1 per year, or at the smallest FAR the background resolves
  const at = thresholds.length ? Math.max(1, thresholds[0]) : 1;
  return { block, efficiency: snr ? { far_per_year: at, bins: efficiencyVsSnr(fars, snr, at) } : undefined };
}
