// Analytic fit to the advanced-LIGO zero-detuned high-power design
// sensitivity: B. S. Sathyaprakash and B. F. Schutz, "Physics, Astrophysics
// and Cosmology with Gravitational Waves", Living Rev. Relativity 12, 2
// (2009), Table 1 (Advanced LIGO row):
//   S_h(f) = S0 [ x^-4.14 − 5 x^-2 + 111 (1 − x² + x⁴/2) / (1 + x²/2) ],
//   x = f / 215 Hz, S0 = 1e-49 Hz^-1 (the table's low-frequency cutoff f_s
// is the lower edge of the band the fit describes). We use it from 10 Hz
// up and hold the 10 Hz value below (the data are high-passed well above).
export const ALIGO_F0 = 215;
export const ALIGO_S0 = 1e-49;
export const ALIGO_FLOW = 10;

/** One-sided PSD (strain²/Hz) of the analytic aLIGO design fit. */
export function aLigoDesignPsd(f: number): number {
  const x = Math.max(f, ALIGO_FLOW) / ALIGO_F0;
  const x2 = x * x;
  return ALIGO_S0 * (x ** -4.14 - 5 / x2 + (111 * (1 - x2 + 0.5 * x2 * x2)) / (1 + 0.5 * x2));
}

// The low-frequency wall of a real observing run. Measured LIGO spectra do
// not flatten below 10 Hz: seismic motion, suspension and control noise make
// the ASD rise by orders of magnitude from ~30 Hz down to a few Hz (the O3
// sensitivity curves of LIGO-T2000012, "aligo_O3actual_H1/L1.txt" (also in
// LIGO-T1800044), stand at a few 1e-22 /√Hz at their 10 Hz start, against
// ~6e-24 at 50 Hz; open-data strain keeps rising below 10 Hz). We add to the
// design fit above a seismic term of the steep power-law form used in the
// initial-LIGO SRD fit (LALSimulation's XLALSimNoisePSDiLIGOSRD, f^-14 in ASD
// there, with its wall at ~40 Hz), moved down to aLIGO's ~10 Hz:
//   ASD_wall(f) = A (f_w / f)^p / sqrt(1 + (f_p / f)^(2p)),
// A = 5e-22 /√Hz at f_w = 10 Hz, p = 8, flattening below f_p = 4 Hz (the
// plateau keeps the strain's rms near 1e-18, as in open data). Anchor, slope
// and plateau are our choices, not a published fit: the ASD is ≈ 5.3e-22 at
// 10 Hz, ≈ 1.7e-19 at 5 Hz and ≈ 6.6e-24 at 50 Hz, a wall of ≈ 2.5e4 between
// 50 Hz and 5 Hz (what matters for the pipeline: ≥ 1e3 below ~10 Hz), and
// the term is < 0.2 % of the PSD above 20 Hz.
export const WALL_ASD = 5e-22;
export const WALL_F = 10;
export const WALL_SLOPE = 8;
export const WALL_PLATEAU_F = 4;

/** One-sided PSD (strain²/Hz) of the seismic wall alone. */
export function seismicWallPsd(f: number): number {
  if (!(f > 0)) return seismicWallPsd(1e-3);
  const r = (WALL_F / f) ** (2 * WALL_SLOPE);
  const p = (WALL_PLATEAU_F / f) ** (2 * WALL_SLOPE);
  return (WALL_ASD * WALL_ASD * r) / (1 + p);
}

/** One-sided PSD of the realistic synthetic noise: the design fit plus the low-frequency wall. */
export function observingRunPsd(f: number): number {
  return aLigoDesignPsd(f) + seismicWallPsd(f);
}
