import { StrainFileError } from "./errors.js";
import {
  check1D,
  closeQuietly,
  getDataset,
  openH5,
  readAttrNumber,
  readScalar,
  readString,
  readStrings,
  type H5File,
} from "./h5.js";

export interface StrainFileInfo {
  path: string;
  ifo: string; // meta/Detector
  start: number; // meta/GPSstart
  duration: number; // meta/Duration
  xstart: number; // strain/Strain attrs
  xspacing: number;
  npoints: number;
  /** 1 / xspacing, rounded to an integer when within 1e-9 */
  sampleRate: number;
  /** quality/simple: 1 Hz bit mask starting at GPSstart, bits named by DQShortnames */
  dq: { names: string[]; mask: Int32Array; start: number; rate: number };
}

export const STRAIN = "strain/Strain";
export const DQMASK = "quality/simple/DQmask";
export const DQNAMES = "quality/simple/DQShortnames";

export function rateFromSpacing(xspacing: number): number {
  const r = 1 / xspacing;
  const ri = Math.round(r);
  return Math.abs(r - ri) <= 1e-9 * Math.max(1, r) ? ri : r;
}

/** Reads the metadata and the DQ mask of a GWOSC-layout file (not the strain). */
export async function readStrainFileInfo(path: string): Promise<StrainFileInfo> {
  const f = await openH5(path, "r");
  try {
    return infoFromOpen(f, path);
  } finally {
    closeQuietly(f);
  }
}

export function infoFromOpen(f: H5File, path: string): StrainFileInfo {
  const ifo = readString(f, path, "meta/Detector");
  if (!/^[A-Z][0-9]$/.test(ifo)) {
    throw new StrainFileError(path, "meta/Detector", `expected a detector name like H1, got ${JSON.stringify(ifo)}`);
  }
  const start = readScalar(f, path, "meta/GPSstart", "number");
  const duration = readScalar(f, path, "meta/Duration", "number");
  if (duration <= 0) throw new StrainFileError(path, "meta/Duration", `expected > 0, got ${duration}`);

  const strain = getDataset(f, path, STRAIN);
  const n = check1D(strain, path, STRAIN, "float");
  const xstart = readAttrNumber(strain, path, STRAIN, "Xstart", "number");
  const xspacing = readAttrNumber(strain, path, STRAIN, "Xspacing", "number");
  const npoints = readAttrNumber(strain, path, STRAIN, "Npoints", "integer");
  if (!(xspacing > 0)) throw new StrainFileError(path, `${STRAIN} attribute Xspacing`, `expected > 0, got ${xspacing}`);
  if (npoints !== n) {
    throw new StrainFileError(path, STRAIN, `holds ${n} samples but attribute Npoints says ${npoints} (truncated file?)`);
  }
  const sampleRate = rateFromSpacing(xspacing);
  // Xstart must sit on the file span, and the samples must cover it.
  if (Math.abs(xstart - start) > xspacing / 2) {
    throw new StrainFileError(path, `${STRAIN} attribute Xstart`, `${xstart} does not match meta/GPSstart ${start}`);
  }
  if (Math.abs(npoints * xspacing - duration) > xspacing / 2) {
    throw new StrainFileError(
      path,
      STRAIN,
      `${npoints} samples at ${sampleRate} Hz span ${npoints * xspacing} s, but meta/Duration is ${duration} s (truncated file?)`,
    );
  }

  const maskDs = getDataset(f, path, DQMASK);
  const nmask = check1D(maskDs, path, DQMASK, "int");
  if (nmask !== Math.round(duration)) {
    throw new StrainFileError(path, DQMASK, `expected ${duration} 1 Hz values, got ${nmask}`);
  }
  const raw = maskDs.value as unknown;
  let mask: Int32Array;
  if (raw instanceof Int32Array) mask = raw;
  else if (ArrayBuffer.isView(raw)) {
    mask = Int32Array.from(raw as unknown as ArrayLike<number | bigint>, (x) => Number(x));
  } else throw new StrainFileError(path, DQMASK, "expected an integer array");
  const names = readStrings(f, path, DQNAMES);
  if (names.length === 0 || names.length > 32) {
    throw new StrainFileError(path, DQNAMES, `expected 1 to 32 bit names, got ${names.length}`);
  }
  return { path, ifo, start, duration, xstart, xspacing, npoints, sampleRate, dq: { names, mask, start, rate: 1 } };
}
