// A source's sky position seen from the detectors: Greenwich mean sidereal
// time, the detectors' antenna patterns F+ / F× and the arrival-time delay
// from the geocentre. Detector positions and arm directions are the
// published site constants kept in @timeslide/segments (DETECTOR_VERTICES,
// DETECTOR_ARMS); the formulas follow Anderson et al. 2001 (LIGO-T010110,
// "Beam pattern response functions and times of arrival for earthbound
// interferometers"): response tensor D = (x xᵀ − y yᵀ)/2, F+ = X·D·X − Y·D·Y,
// F× = X·D·Y + Y·D·X with (X, Y) the wave-frame axes rotated by the
// polarisation angle ψ, and t_ifo = t_geocentre − r_ifo · n̂ / c, n̂ the unit
// vector from the geocentre towards the source.
import { DETECTOR_ARMS, DETECTOR_VERTICES, KNOWN_IFOS, SPEED_OF_LIGHT } from "@timeslide/segments";

const GPS_EPOCH_UNIX = 315_964_800; // 1980-01-06T00:00:00Z
/** UTC dates (year, month) at whose start a leap second was inserted since the GPS epoch. */
const LEAP_SECOND_DATES: ReadonlyArray<[number, number]> = [
  [1981, 7], [1982, 7], [1983, 7], [1985, 7], [1988, 1], [1990, 1], [1991, 1], [1992, 7], [1993, 7],
  [1994, 7], [1996, 1], [1997, 7], [1999, 1], [2006, 1], [2009, 1], [2012, 7], [2015, 7], [2017, 1],
];
/** GPS time of each leap second: from it on, GPS − UTC is its index + 1. */
const LEAP_GPS = LEAP_SECOND_DATES.map(([y, m], i) => Date.UTC(y, m - 1, 1) / 1000 - GPS_EPOCH_UNIX + i + 1);

/** GPS seconds to Unix (UTC) seconds, with the leap seconds (GPS − UTC = 18 s since 2017). */
export function gpsToUnix(gps: number): number {
  let leaps = 0;
  for (const g of LEAP_GPS) if (gps >= g) leaps++;
  return gps + GPS_EPOCH_UNIX - leaps;
}

/**
 * Greenwich mean sidereal time (rad, in [0, 2π)) at a GPS time: the IAU 1982
 * expression (Aoki et al. 1982) with UT1 ≈ UTC (|UT1 − UTC| < 0.9 s, < 7e-5 rad).
 */
export function greenwichMeanSiderealTime(gps: number): number {
  const jd = gpsToUnix(gps) / 86_400 + 2_440_587.5;
  const jd0 = Math.floor(jd - 0.5) + 0.5; // the preceding 0h UT
  const secs = (jd - jd0) * 86_400;
  const t = (jd0 - 2_451_545.0) / 36_525;
  let g = 24_110.54841 + t * (8_640_184.812866 + t * (0.093104 - 6.2e-6 * t)) + 1.002737909350795 * secs;
  g = ((g % 86_400) + 86_400) % 86_400;
  return (g / 86_400) * 2 * Math.PI;
}

type Vec3 = readonly [number, number, number];

function detectorOrThrow(ifo: string): { r: Vec3; x: Vec3; y: Vec3 } {
  const r = DETECTOR_VERTICES[ifo];
  const arms = DETECTOR_ARMS[ifo];
  if (!r || !arms) throw new Error(`unknown detector ${ifo}: expected one of ${KNOWN_IFOS.join(", ")}`);
  return { r, x: arms.x, y: arms.y };
}

/** Unit vector from the geocentre towards a source at (ra, dec), Earth-fixed frame, at sidereal time gmst. */
export function sourceDirection(ra: number, dec: number, gmst: number): [number, number, number] {
  const gha = gmst - ra;
  return [Math.cos(dec) * Math.cos(gha), -Math.cos(dec) * Math.sin(gha), Math.sin(dec)];
}

/** Arrival time at the detector minus arrival time at the geocentre (s). */
export function timeDelayFromGeocenter(ifo: string, ra: number, dec: number, gmst: number): number {
  const { r } = detectorOrThrow(ifo);
  const n = sourceDirection(ra, dec, gmst);
  return -(r[0] * n[0] + r[1] * n[1] + r[2] * n[2]) / SPEED_OF_LIGHT;
}

/** Antenna pattern (F+, F×) of a detector for a source at (ra, dec) with polarisation psi, at sidereal time gmst. */
export function antennaResponse(ifo: string, ra: number, dec: number, psi: number, gmst: number): { fplus: number; fcross: number } {
  const { x, y } = detectorOrThrow(ifo);
  const gha = gmst - ra;
  const cg = Math.cos(gha), sg = Math.sin(gha), cd = Math.cos(dec), sd = Math.sin(dec), cp = Math.cos(psi), sp = Math.sin(psi);
  const X: Vec3 = [-cp * sg - sp * cg * sd, -cp * cg + sp * sg * sd, sp * cd];
  const Y: Vec3 = [sp * sg - cp * cg * sd, sp * cg + cp * sg * sd, cp * cd];
  // with D = (x xᵀ − y yᵀ)/2: a·D·b = ((a·x)(b·x) − (a·y)(b·y)) / 2
  const dot = (a: Vec3, b: Vec3) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];
  const Xx = dot(X, x), Xy = dot(X, y), Yx = dot(Y, x), Yy = dot(Y, y);
  return {
    fplus: 0.5 * (Xx * Xx - Xy * Xy) - 0.5 * (Yx * Yx - Yy * Yy),
    fcross: Xx * Yx - Xy * Yy,
  };
}
