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
