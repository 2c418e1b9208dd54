// Injection recovery and sensitivity. An injection's ranking statistic is the
// loudest event the worker matched to it (injection_index); it is found at a
// FAR threshold F when its candidate FAR, (n(x) + 1) / T_bg, is <= F.

import type { BackgroundSummary } from "./summary.js";
import { JULIAN_YEAR_S } from "./far.js";

export interface InjectionInput {
  /** number of injections made (indices 0..injected−1 into the parameter columns) */
  injected: number;
  /** per injection: loudest matched detection statistic, −Infinity when none matched */
  loudest: Float64Array;
  /** Monte-Carlo weight per injection (default 1 each) */
  weight?: ArrayLike<number>;
  /** optimal or network SNR per injection, for efficiency vs SNR */
  snr?: ArrayLike<number>;
}

export interface FoundPoint {
  far_per_year: number;
  found: number;
  efficiency: number;
}
export interface VolumePoint {
  far_per_year: number;
  volume: number;
  error: number;
}
export interface EfficiencyBin {
  snr_low: number;
  snr_high: number;
  injected: number;
  found: number;
  efficiency: number;
  /** binomial standard error sqrt(e(1 − e) / n) */
  error: number;
}

/** Max matched statistic per injection from injection-job events. */
export function loudestPerInjection(injected: number, detection_statistic: ArrayLike<number>, injection_index: ArrayLike<number>): Float64Array {
  const out = new Float64Array(injected).fill(-Infinity);
  for (let i = 0; i < injection_index.length; i++) {
    const k = injection_index[i];
    if (k < 0) continue;
    if (k >= injected) throw new Error(`injection_index ${k} out of range: ${injected} injections`);
    if (detection_statistic[i] > out[k]) out[k] = detection_statistic[i];
  }
  return out;
}

/** Candidate FAR (per year) of each injection against the background: Infinity when not matched. */
export function injectionFars(inj: InjectionInput, bg: BackgroundSummary): Float64Array {
  const far = new Float64Array(inj.injected);
  for (let i = 0; i < inj.injected; i++) {
    far[i] = inj.loudest[i] === -Infinity ? Infinity : ((bg.countAtLeast(inj.loudest[i]).n + 1) * JULIAN_YEAR_S) / bg.livetime;
  }
  return far;
}

/** Default thresholds: quarter decades from the smallest resolvable FAR (1 / T_bg) up to 10^4 / year. */
export function farThresholds(backgroundLivetime: number, maxPerYear = 1e4): number[] {
  if (!(backgroundLivetime > 0)) return [];
  const min = JULIAN_YEAR_S / backgroundLivetime;
  const out: number[] = [];
  for (let k = 0; ; k++) {
    const f = min * 10 ** (k / 4);
    if (f > Math.max(maxPerYear, min)) break;
    out.push(f);
  }
  return out;
}

export function foundAtThresholds(fars: Float64Array, thresholds: number[]): FoundPoint[] {
  const n = fars.length;
  return thresholds.map((t) => {
    let found = 0;
    for (let i = 0; i < n; i++) if (fars[i] <= t) found++;
    return { far_per_year: t, found, efficiency: n ? found / n : 0 };
  });
}

/**
 * V(F) = V0 · Σ_found w / Σ_all w. Error: the binomial-style Monte-Carlo error
 * of the weighted fraction, V0 · sqrt(Σ_found w² − (Σ_found w)² / N) / Σ_all w,
 * which reduces to V0 · sqrt(f (1 − f) / N) for equal weights.
 */
export function sensitiveVolume(fars: Float64Array, thresholds: number[], V0: number, weight?: ArrayLike<number>): VolumePoint[] {
  const N = fars.length;
  let wAll = 0;
  for (let i = 0; i < N; i++) wAll += weight ? weight[i] : 1;
  return thresholds.map((t) => {
    let w = 0;
    let w2 = 0;
    for (let i = 0; i < N; i++) {
      if (!(fars[i] <= t)) continue;
      const wi = weight ? weight[i] : 1;
      w += wi;
      w2 += wi * wi;
    }
    if (!(wAll > 0)) return { far_per_year: t, volume: 0, error: 0 };
    return { far_per_year: t, volume: (V0 * w) / wAll, error: (V0 * Math.sqrt(Math.max(0, w2 - (w * w) / N))) / wAll };
  });
}

/** Efficiency in SNR bins at one FAR threshold, with binomial errors. */
export function efficiencyVsSnr(fars: Float64Array, snr: ArrayLike<number>, threshold: number, edges?: number[]): EfficiencyBin[] {
  const n = fars.length;
  if (!edges) {
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < n; i++) {
      if (snr[i] < lo) lo = snr[i];
      if (snr[i] > hi) hi = snr[i];
    }
    if (!(hi >= lo)) return [];
    if (hi === lo) hi = lo + 1;
    const nb = Math.max(1, Math.min(10, Math.ceil(Math.sqrt(n))));
    edges = Array.from({ length: nb + 1 }, (_, k) => lo + ((hi - lo) * k) / nb);
  }
  const bins: EfficiencyBin[] = [];
  for (let b = 0; b + 1 < edges.length; b++) {
    const last = b + 2 === edges.length;
    let inj = 0;
    let found = 0;
    for (let i = 0; i < n; i++) {
      const s = snr[i];
      if (s < edges[b] || (last ? s > edges[b + 1] : s >= edges[b + 1])) continue;
      inj++;
      if (fars[i] <= threshold) found++;
    }
    const e = inj ? found / inj : 0;
    bins.push({ snr_low: edges[b], snr_high: edges[b + 1], injected: inj, found, efficiency: e, error: inj ? Math.sqrt((e * (1 - e)) / inj) : 0 });
  }
  return bins;
}
