// Time slides, livetime and the detector facts they depend on.
// Livetime follows ../shared/DESIGN.md ("Livetime"): computed in whole
// detection-statistic samples so that sums over segments and jobs are exact.

/** Julian year in seconds: FAR is reported per this year. */
export const JULIAN_YEAR = 31_557_600;

const SPEED_OF_LIGHT = 299_792_458; // m/s

/**
 * Detector vertex positions, Earth-fixed Cartesian coordinates in metres
 * (the published LIGO/Virgo/KAGRA site constants, as tabulated in LALSuite).
 */
export const DETECTOR_VERTICES: Readonly<Record<string, readonly [number, number, number]>> = {
  H1: [-2.16141492636e6, -3.83469517889e6, 4.60035022664e6],
  L1: [-7.42760447238e4, -5.49628371971e6, 3.22425701744e6],
  V1: [4.54637409900e6, 8.42989697626e5, 4.37857696241e6],
  K1: [-3.777336024e6, 3.484898411e6, 3.765313697e6],
};

export const KNOWN_IFOS = Object.keys(DETECTOR_VERTICES) as readonly string[];

/**
 * Unit vectors along each detector's x and y arms, in the same Earth-fixed
 * frame as DETECTOR_VERTICES: the published site constants as tabulated in
 * LALSuite's LALDetectors.h (LIGO: Althouse et al. 1999; conventions of
 * Anderson et al. 2001, LIGO-T010110). The response tensor is (x xᵀ − y yᵀ) / 2.
 */
export const DETECTOR_ARMS: Readonly<Record<string, { readonly x: readonly [number, number, number]; readonly y: readonly [number, number, number] }>> = {
  H1: { x: [-0.22389266154, 0.79983062746, 0.55690487831], y: [-0.91397818574, 0.02609403989, -0.40492342125] },
  L1: { x: [-0.95457412153, -0.1415807734, -0.26218911324], y: [0.29774156894, -0.48791033647, -0.82054461286] },
  V1: { x: [-0.70045821479, 0.20848948619, 0.68256166277], y: [-0.05379255368, -0.96908180549, 0.24080451708] },
  K1: { x: [-0.375904, -0.8361583, 0.3994189], y: [0.7164378, 0.01114076, 0.697562] },
};

export { SPEED_OF_LIGHT };

/** Light-travel time between two detectors' vertices, in seconds. */
export function lightTravelTime(a: string, b: string): number {
  const pa = DETECTOR_VERTICES[a];
  const pb = DETECTOR_VERTICES[b];
  if (!pa || !pb) throw new Error(`unknown detector ${!pa ? a : b}: expected one of ${KNOWN_IFOS.join(", ")}`);
  return Math.hypot(pa[0] - pb[0], pa[1] - pb[1], pa[2] - pb[2]) / SPEED_OF_LIGHT;
}

/** The largest light-travel time over every pair of the given detectors. */
export function maxLightTravelTime(ifos: readonly string[]): { seconds: number; pair: [string, string] } {
  let best = { seconds: 0, pair: [ifos[0] ?? "", ifos[1] ?? ""] as [string, string] };
  for (let i = 0; i < ifos.length; i++)
    for (let j = i + 1; j < ifos.length; j++) {
      const t = lightTravelTime(ifos[i], ifos[j]);
      if (t > best.seconds) best = { seconds: t, pair: [ifos[i], ifos[j]] };
    }
  return best;
}

const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800, y: JULIAN_YEAR };

/**
 * A duration such as `3600`, `"3600s"`, `"2h"`, `"30d"`, `"1.5y"` in seconds
 * (m is minutes, y the Julian year). Returns NaN for anything else, so callers
 * can word the error in their own context.
 */
export function parseDuration(value: string | number): number {
  if (typeof value === "number") return Number.isFinite(value) ? value : Number.NaN;
  const m = /^\s*(\d+(?:\.\d*)?|\.\d+)(?:e([+-]?\d+))?\s*([smhdwy]?)\s*$/i.exec(value);
  if (!m) return Number.NaN;
  const n = Number(m[1] + (m[2] !== undefined ? `e${m[2]}` : ""));
  return n * UNIT_SECONDS[(m[3] || "s").toLowerCase()];
}

/** A duration for people: "3.2 y", "41.0 d", "2.5 h", "96 s". */
export function formatDuration(seconds: number): string {
  const a = Math.abs(seconds);
  if (a >= JULIAN_YEAR) return `${(seconds / JULIAN_YEAR).toFixed(2)} y`;
  if (a >= 86_400) return `${(seconds / 86_400).toFixed(2)} d`;
  if (a >= 3600) return `${(seconds / 3600).toFixed(2)} h`;
  return `${Number(seconds.toFixed(3))} s`;
}

/**
 * Shift vector k for n detectors with step δ: detector i is offset by i·k·δ,
 * so every pair of detectors is slid by a distinct non-zero multiple of δ
 * ([0, kδ] for two detectors, [0, kδ, 2kδ] for three). k = 0 is zero lag.
 */
export function shiftVector(k: number, step: number, nIfo: number): number[] {
  return Array.from({ length: nIfo }, (_, i) => i * k * step);
}

export interface LivetimeOptions {
  /** s of burn-in at the start of each segment (PSD estimate); no output there */
  psdLength: number;
  /** Hz: one detection-statistic sample per 1/rate s */
  inferenceSamplingRate: number;
  /**
   * s lost at the end of each segment: the whitening filter's half-length
   * plus the resampler's half-support (DESIGN.md "Livetime"), so no sample
   * depends on strain past the segment. Circular slides wrap within the valid
   * ring [s + edge, e − edge).
   */
  edge: number;
  /** wrap the shifted detectors within the segment's valid ring instead of losing max δ */
  circular: boolean;
  /**
   * Circular slides only: a shift whose detector offsets, taken modulo the
   * ring length L − 2·edge, bring two detectors within this many seconds of each
   * other (e.g. the light-travel time) is a disguised zero lag and yields 0.
   */
  minSeparation?: number;
}

// Guards floor() against products such as 3 * 0.1 landing a hair below an integer.
const FLOOR_EPS = 1e-9;

/**
 * Number of detection-statistic samples a segment of length `duration` yields
 * under shift vector `shift` (DESIGN.md livetime formula times the rate).
 */
export function livetimeSamples(duration: number, shift: readonly number[], o: LivetimeOptions): number {
  let maxShift = 0;
  for (const d of shift) if (d > maxShift) maxShift = d;
  if (o.circular) {
    const ring = duration - 2 * o.edge;
    if (ring <= 0 || isDegenerateCircularShift(ring, shift, o.minSeparation ?? 0)) return 0;
    return Math.max(0, Math.floor((duration - o.psdLength - o.edge) * o.inferenceSamplingRate + FLOOR_EPS));
  }
  return Math.max(0, Math.floor((duration - maxShift - o.psdLength - o.edge) * o.inferenceSamplingRate + FLOOR_EPS));
}

/** Livetime in seconds of one (segment, shift): DESIGN.md's formula exactly. */
export function livetime(duration: number, shift: readonly number[], o: LivetimeOptions): number {
  return livetimeSamples(duration, shift, o) / o.inferenceSamplingRate;
}

/** True when a slide, modulo the ring length, brings two detectors within `minSeparation` s (zero lag itself is not a disguised one). */
export function isDegenerateCircularShift(duration: number, shift: readonly number[], minSeparation: number): boolean {
  if (shift.every((x) => x === shift[0])) return false; // zero lag itself: the foreground
  const sep = Math.max(minSeparation, FLOOR_EPS);
  for (let i = 0; i < shift.length; i++)
    for (let j = i + 1; j < shift.length; j++) {
      const d = (((shift[j] - shift[i]) % duration) + duration) % duration;
      if (d < sep || duration - d < sep) return true;
    }
  return false;
}

export interface ShiftChoice {
  /** background shift vectors, k = 1..N (zero lag not included) */
  shifts: number[][];
  /** exact background livetime (s) of those shifts over the segments */
  livetime: number;
}

/**
 * The smallest N such that shifts k = 1..N reach `target` seconds of
 * background over segments of the given lengths. Throws when no N can (the
 * non-circular livetime of a shift falls to zero once max δ exceeds a
 * segment), saying what the most reachable is.
 */
export function chooseShifts(
  durations: readonly number[],
  target: number,
  step: number,
  nIfo: number,
  o: LivetimeOptions,
  maxShifts = 10_000_000,
): ShiftChoice {
  const shifts: number[][] = [];
  let samples = 0;
  const targetSamples = Math.ceil(target * o.inferenceSamplingRate - FLOOR_EPS);
  const reachable = () =>
    `the most these segments give is ${formatDuration(samples / o.inferenceSamplingRate)} from ${shifts.length} shifts`;
  if (o.circular && durations.every((d) => d <= o.psdLength))
    throw new Error(`background.livetime: no segment is longer than psd_length (${o.psdLength} s)`);
  for (let k = 1; samples < targetSamples; k++) {
    if (k > maxShifts)
      throw new Error(`background.livetime: more than ${maxShifts} shifts needed; use a larger step or a smaller target`);
    const v = shiftVector(k, step, nIfo);
    let n = 0;
    for (const d of durations) n += livetimeSamples(d, v, o);
    if (n === 0) {
      // Non-circular livetime only falls as k grows: nothing more to gain.
      if (!o.circular)
        throw new Error(
          `background.livetime: ${formatDuration(target)} cannot be reached with step ${step} s: ${reachable()} ` +
            `(try circular: true, a smaller step, or more data)`,
        );
      continue; // circular: this k is a disguised zero lag in every segment
    }
    shifts.push(v);
    samples += n;
  }
  return { shifts, livetime: samples / o.inferenceSamplingRate };
}

export interface VetoGeometry {
  /** s: a sample stamped t depends on each detector's window [t − kernel + δ_i, t + δ_i) */
  kernelLength: number;
  inferenceSamplingRate: number;
  /** circular slides: each detector's own time wraps within this ring [a, b) */
  ring?: readonly [number, number];
}

/**
 * The detection-statistic samples of one shift that a veto removes (DESIGN.md
 * "Real signals in the background"): sample j, stamped `out0 + j/isr`
 * (reference time, window end), is vetoed when its window in any detector's
 * own time overlaps a veto. Returns sorted, disjoint [j0, j1) index ranges
 * within [0, n). `vetoes`: sorted, disjoint segments (a coalesced list).
 */
export function vetoedSamples(
  out0: number,
  n: number,
  shift: readonly number[],
  vetoes: readonly { start: number; end: number }[],
  g: VetoGeometry,
): Array<[number, number]> {
  if (n <= 0 || vetoes.length === 0) return [];
  const isr = g.inferenceSamplingRate;
  const K = g.kernelLength;
  const out1 = out0 + n / isr;
  const ranges: Array<[number, number]> = [];
  // Reference times t with [t − K + δ, t + δ) ∩ [v0, v1) ≠ ∅: t ∈ (v0 − δ, v1 − δ + K).
  const addImage = (v0: number, v1: number, d: number) => {
    const j0 = Math.max(0, Math.floor((v0 - d - out0) * isr + FLOOR_EPS) + 1);
    const j1 = Math.min(n, Math.ceil((v1 - d + K - out0) * isr - FLOOR_EPS));
    if (j1 > j0) ranges.push([j0, j1]);
  };
  for (const d of new Set(shift)) {
    // own-time span of this detector's windows: [out0 − K + δ, out1 + δ)
    const lo = out0 - K + d;
    const hi = out1 + d;
    if (!g.ring) {
      for (let i = firstEndingAfter(vetoes, lo); i < vetoes.length && vetoes[i].start < hi; i++) addImage(vetoes[i].start, vetoes[i].end, d);
      continue;
    }
    const [a, b] = g.ring;
    const R = b - a;
    // the windows' own times, unwrapped, cover [lo, hi); vetoes repeat every R
    for (let m = Math.floor((lo - b) / R); a + m * R < hi; m++) {
      const off = m * R;
      for (let i = firstEndingAfter(vetoes, Math.max(a, lo - off)); i < vetoes.length && vetoes[i].start < Math.min(b, hi - off); i++) {
        const v0 = Math.max(a, vetoes[i].start);
        const v1 = Math.min(b, vetoes[i].end);
        if (v1 > v0) addImage(v0 + off, v1 + off, d);
      }
    }
  }
  return mergeRanges(ranges);
}

/** Number of samples in ranges from `vetoedSamples`. */
export function countRanges(ranges: ReadonlyArray<readonly [number, number]>): number {
  let n = 0;
  for (const [a, b] of ranges) n += b - a;
  return n;
}

function firstEndingAfter(list: readonly { start: number; end: number }[], t: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid].end <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function mergeRanges(r: Array<[number, number]>): Array<[number, number]> {
  if (r.length < 2) return r;
  r.sort((x, y) => x[0] - y[0]);
  const out: Array<[number, number]> = [r[0]];
  for (let i = 1; i < r.length; i++) {
    const last = out[out.length - 1];
    if (r[i][0] <= last[1]) last[1] = Math.max(last[1], r[i][1]);
    else out.push(r[i]);
  }
  return out;
}
