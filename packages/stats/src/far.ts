// FAR and significance, exactly as DESIGN.md defines them (see README.md for
// the conventions and their sources).

/** The Julian year in seconds: FAR is reported per year of this length. */
export const JULIAN_YEAR_S = 31_557_600;

export interface FarPoint {
  detection_statistic: number;
  /** n(x) / T_bg in events per Julian year, n(x) counting ties as louder */
  far_per_year: number;
}

export interface Significance {
  /** background events with statistic >= x (ties count as louder) */
  n_louder: number;
  /** (n + 1) / T_bg per year; Infinity when T_bg is 0 */
  far_per_year: number;
  ifar_years: number;
  /** 1 − exp(−T_fg · far) */
  p_value: number;
  /** true when no background event was as loud: the FAR is a bound */
  saturated: boolean;
  /** false when n came from the bulk histogram (an upper bound, so FAR is conservative) */
  exact: boolean;
}

/**
 * Candidate significance from its count of louder background events.
 * Order of operations is fixed so other implementations can match bit for bit:
 * far_per_year = ((n + 1) · year) / T_bg (the count times the year is an exact
 * integer, so this is the correctly rounded value), ifar = 1 / far_per_year,
 * p = −expm1(−T_fg · (n + 1) / T_bg).
 */
export function significance(nLouder: number, backgroundLivetime: number, foregroundLivetime: number, exact = true): Significance {
  if (!(backgroundLivetime >= 0) || !(foregroundLivetime >= 0)) {
    throw new Error(`significance: livetimes must be >= 0 (background ${backgroundLivetime} s, foreground ${foregroundLivetime} s)`);
  }
  const farPerS = (nLouder + 1) / backgroundLivetime; // Infinity when T_bg = 0
  const far_per_year = ((nLouder + 1) * JULIAN_YEAR_S) / backgroundLivetime;
  const p_value = farPerS === Infinity ? 1 : -Math.expm1(-foregroundLivetime * farPerS);
  return { n_louder: nLouder, far_per_year, ifar_years: 1 / far_per_year, p_value, saturated: nLouder === 0, exact };
}

/** Count of values >= x in a descending-sorted array (ties count as louder). */
export function countAtLeastSorted(descending: ArrayLike<number>, x: number): number {
  let lo = 0;
  let hi = descending.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (descending[mid] >= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Background FAR curve at the distinct statistics of a descending-sorted
 * array: one point per distinct value x with far = n(x) / T_bg.
 */
export function farCurveSorted(descending: ArrayLike<number>, backgroundLivetime: number): FarPoint[] {
  const out: FarPoint[] = [];
  const n = descending.length;
  for (let i = 0; i < n; i++) {
    const x = descending[i];
    if (i + 1 < n && descending[i + 1] === x) continue; // last of a tie run: n(x) includes all ties
    out.push({ detection_statistic: x, far_per_year: ((i + 1) * JULIAN_YEAR_S) / backgroundLivetime });
  }
  return out;
}

/**
 * Thin a FAR curve for plotting and report.json: keep the loudest `head`
 * points exactly, then points spaced evenly in log(FAR) (so the histogram
 * part of a bounded-memory summary keeps its share), and the last one.
 */
export function thinFarCurve(curve: FarPoint[], maxPoints = 500, head = 100): FarPoint[] {
  if (curve.length <= maxPoints) return curve.slice();
  const keep = new Set<number>();
  for (let i = 0; i < Math.min(head, curve.length); i++) keep.add(i);
  const rest = maxPoints - keep.size - 1;
  const first = Math.min(head, curve.length - 1);
  const lo = Math.log(Math.max(curve[first].far_per_year, Number.MIN_VALUE));
  const hi = Math.log(Math.max(curve[curve.length - 1].far_per_year, Number.MIN_VALUE));
  let i = first;
  for (let k = 0; k <= rest; k++) {
    const target = Math.exp(lo + ((hi - lo) * k) / rest);
    while (i < curve.length - 1 && curve[i].far_per_year < target) i++; // FAR grows along the curve
    keep.add(i);
  }
  keep.add(curve.length - 1);
  return [...keep].sort((a, b) => a - b).map((j) => curve[j]);
}
