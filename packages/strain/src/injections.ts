// The injection file (DESIGN.md layout) and adding its waveforms to strain.
import type { SegmentList } from "@timeslide/segments";
import { StrainFileError } from "./errors.js";
import { check1D, closeQuietly, getDataset, getGroup, openH5, readAttrNumber, type H5File } from "./h5.js";

export interface InjectionSet {
  path: string;
  /** GPS time of each injection (reference detector) */
  times: Float64Array;
  /** waveform sample rate, Hz */
  sampleRate: number;
  /** time of waveform sample 0 relative to `times[i]` */
  tOffset: number;
  /** samples per waveform */
  length: number;
  /** per detector: M × length, row-major */
  waveforms: Record<string, Float32Array>;
  /** parameter columns (`snr`, `distance`, `weight`, ...) */
  parameters: Record<string, Float64Array>;
}

function toF64(v: unknown, path: string, name: string): Float64Array {
  if (v instanceof Float64Array) return v;
  if (v instanceof Float32Array) return Float64Array.from(v);
  if (ArrayBuffer.isView(v)) return Float64Array.from(v as unknown as ArrayLike<number | bigint>, (x) => Number(x));
  throw new StrainFileError(path, name, "expected a numeric array");
}

interface InjectionLayout {
  times: Float64Array;
  sampleRate: number;
  tOffset: number;
  length: number;
  /** injections/<ifo> dataset names, by detector */
  detectors: string[];
}

/**
 * Checks the injection layout (DESIGN.md) on an open file from metadata only
 * (shapes, dtypes, attributes; the waveforms are not read), so planning can
 * refuse a bad file before any job runs: every message names the file, the
 * HDF5 path and what was expected.
 */
function checkLayout(f: H5File, path: string, ifos?: readonly string[]): InjectionLayout {
  const g = getGroup(f, path, "injections");
  const tds = getDataset(f, path, "injections/time");
  const m = check1D(tds, path, "injections/time", "float");
  const times = toF64(tds.value, path, "injections/time");
  const bad = times.findIndex((t) => !Number.isFinite(t));
  if (bad >= 0) throw new StrainFileError(path, `injections/time[${bad}]`, `expected a finite GPS time, got ${times[bad]}`);
  const sampleRate = readAttrNumber(g, path, "injections", "sample_rate", "number");
  const tOffset = readAttrNumber(g, path, "injections", "t_offset", "number");
  if (!(sampleRate > 0)) throw new StrainFileError(path, "injections attribute sample_rate", `expected > 0, got ${sampleRate}`);
  const detectors: string[] = [];
  let length = -1;
  let lengthFrom = "";
  for (const key of g.keys()) {
    if (key === "time") continue;
    const name = `injections/${key}`;
    const ds = getDataset(f, path, name);
    const shape = ds.shape ?? [];
    if (shape.length !== 2 || shape[0] !== m) {
      throw new StrainFileError(path, name, `expected shape [${m}, L] (one row per injections/time entry), got ${JSON.stringify(shape)}`);
    }
    if ((ds.metadata as { type: number }).type !== 1) throw new StrainFileError(path, name, `wrong dtype ${String(ds.dtype)}: expected float32 waveforms`);
    if (length >= 0 && shape[1] !== length) {
      throw new StrainFileError(path, name, `waveform length ${shape[1]} differs from ${length} in ${lengthFrom}`);
    }
    length = shape[1];
    lengthFrom = name;
    detectors.push(key);
  }
  if (length < 0) throw new StrainFileError(path, "injections", "no detector waveforms (injections/<ifo>)");
  if (length === 0) throw new StrainFileError(path, lengthFrom, "expected waveforms of at least one sample, got length 0");
  // injections/time is the signal's reference time (the merger): a waveform
  // that does not contain it means sample_rate, t_offset or the length is wrong.
  const span = length / sampleRate;
  if (!(tOffset <= 0 && tOffset + span >= 0)) {
    throw new StrainFileError(
      path,
      "injections attributes sample_rate, t_offset",
      `${length} samples at ${sampleRate} Hz from t_offset ${tOffset} s span [${tOffset}, ${tOffset + span}] s, which does not contain the injection time (0): ` +
        `sample_rate, t_offset and the waveform length disagree`,
    );
  }
  for (const ifo of ifos ?? []) {
    if (!detectors.includes(ifo)) throw new StrainFileError(path, `injections/${ifo}`, `missing: no waveforms for ${ifo} (the file has ${detectors.join(", ")})`);
  }
  return { times, sampleRate, tOffset, length, detectors };
}

/**
 * The injection times (`injections/time`): what planning needs. The rest of
 * the layout is checked too (without reading the waveforms), with `ifos` the
 * detectors that need waveforms.
 */
export async function readInjectionTimes(path: string, ifos?: readonly string[]): Promise<Float64Array> {
  const f = await openH5(path, "r");
  try {
    return checkLayout(f, path, ifos).times;
  } finally {
    closeQuietly(f);
  }
}

/** Reads a whole injection file (waveforms included; they are short). */
export async function readInjections(path: string, ifos?: readonly string[]): Promise<InjectionSet> {
  const f = await openH5(path, "r");
  try {
    const { times, sampleRate, tOffset, length, detectors } = checkLayout(f, path, ifos);
    const m = times.length;
    const waveforms: Record<string, Float32Array> = {};
    for (const key of detectors) {
      const name = `injections/${key}`;
      const v = getDataset(f, path, name).value;
      if (v instanceof Float32Array) waveforms[key] = v;
      else if (v instanceof Float64Array) waveforms[key] = Float32Array.from(v);
      else throw new StrainFileError(path, name, "expected float32 waveforms");
    }
    const parameters: Record<string, Float64Array> = {};
    let pg;
    try {
      pg = getGroup(f, path, "parameters");
    } catch {
      pg = undefined;
    }
    for (const key of pg?.keys() ?? []) {
      const name = `parameters/${key}`;
      const col = toF64(getDataset(f, path, name).value, path, name);
      if (col.length !== m) throw new StrainFileError(path, name, `expected ${m} values, got ${col.length}`);
      parameters[key] = col;
    }
    return { path, times, sampleRate, tOffset, length, waveforms, parameters };
  } finally {
    closeQuietly(f);
  }
}

/** Kaiser-windowed sinc interpolation kernel (half-width in input samples). */
const HALF = 16;
const BETA = 8;
function besselI0(x: number): number {
  let sum = 1, term = 1;
  const q = (x * x) / 4;
  for (let k = 1; k < 100; k++) {
    term *= q / (k * k);
    sum += term;
    if (term < 1e-16 * sum) break;
  }
  return sum;
}
const I0B = besselI0(BETA);

/**
 * Band-limited evaluation of a waveform sampled at `rate` (sample 0 at
 * time `t0`) on another grid: start `u0`, rate `outRate`, n samples. When
 * the output rate is lower the kernel is widened to low-pass at its
 * Nyquist frequency. Equal rates and an integer offset copy exactly.
 */
export function resampleWaveform(
  w: ArrayLike<number>,
  rate: number,
  t0: number,
  outRate: number,
  u0: number,
  n: number,
): Float64Array {
  const out = new Float64Array(n);
  const scale = Math.min(1, outRate / rate); // cutoff relative to the input Nyquist
  const half = Math.ceil(HALF / scale);
  for (let j = 0; j < n; j++) {
    const x = (u0 + j / outRate - t0) * rate; // position in input samples
    const c = Math.round(x);
    if (Math.abs(x - c) < 1e-9 && scale === 1) {
      out[j] = c >= 0 && c < w.length ? w[c] : 0;
      continue;
    }
    let s = 0;
    const lo = Math.max(0, Math.ceil(x - half)), hi = Math.min(w.length - 1, Math.floor(x + half));
    for (let k = lo; k <= hi; k++) {
      const d = x - k;
      const r = d / half;
      const win = besselI0(BETA * Math.sqrt(Math.max(0, 1 - r * r))) / I0B;
      const a = Math.PI * d * scale;
      s += w[k] * (a === 0 ? scale : (scale * Math.sin(a)) / a) * win;
    }
    out[j] = s;
  }
  return out;
}

export interface InjectTarget {
  ifo: string;
  /** GPS time of data[0] */
  start: number;
  sampleRate: number;
  data: Float64Array;
}

export interface InjectOptions {
  /** this detector's offset in the job's shift vector (s); 0 for the reference */
  shift?: number;
  /** analysed time in reference-detector GPS; injections whose time is outside are not added */
  analysed?: SegmentList;
  /** only these injections (indices); default all */
  indices?: readonly number[];
}

export interface InjectReport {
  /** indices added to the data */
  injected: number[];
  /** indices whose time is outside the analysed time (or outside this data) */
  outside: number[];
}

/**
 * Adds each injection's waveform for `target.ifo` at its time plus this
 * detector's shift, so that once the job aligns the shifted streams every
 * detector's copy sits at the same reference time. Waveforms at another
 * rate are resampled onto the data grid.
 */
export function injectInto(target: InjectTarget, set: InjectionSet, o: InjectOptions = {}): InjectReport {
  const w = set.waveforms[target.ifo];
  if (!w) throw new StrainFileError(set.path, `injections/${target.ifo}`, "missing: no waveforms for this detector");
  const shift = o.shift ?? 0;
  const L = set.length;
  const fs = target.sampleRate;
  const n = target.data.length;
  const end = target.start + n / fs;
  const injected: number[] = [];
  const outside: number[] = [];
  const idx = o.indices ?? Array.from(set.times, (_, i) => i);
  for (const i of idx) {
    const tRef = set.times[i];
    const t = tRef + shift; // where this detector's copy lies in its own GPS
    const inAnalysed = o.analysed ? o.analysed.contains(tRef) : true;
    if (!inAnalysed || t < target.start || t >= end) {
      outside.push(i);
      continue;
    }
    const w0 = t + set.tOffset; // GPS of waveform sample 0
    const w1 = w0 + L / set.sampleRate;
    const j0 = Math.max(0, Math.ceil((w0 - target.start) * fs - 1e-9));
    const j1 = Math.min(n, Math.floor((w1 - target.start) * fs + 1e-9));
    if (j1 <= j0) {
      outside.push(i);
      continue;
    }
    const seg = resampleWaveform(w.subarray(i * L, (i + 1) * L), set.sampleRate, w0, fs, target.start + j0 / fs, j1 - j0);
    for (let j = 0; j < seg.length; j++) target.data[j0 + j] += seg[j];
    injected.push(i);
  }
  return { injected, outside };
}
