// A detector's strain over many GWOSC-layout files, read as slices.
import { Segment, SegmentList, segmentsFromDQMask } from "@timeslide/segments";
import { StrainFileError } from "./errors.js";
import { closeQuietly, getDataset, openH5, type H5File } from "./h5.js";
import { STRAIN, readStrainFileInfo, type StrainFileInfo } from "./info.js";

export interface StrainSlice {
  ifo: string;
  /** GPS time of data[0] (on the files' sample grid) */
  start: number;
  sampleRate: number;
  /** strain; NaN where the files have NaN or there is no file */
  data: Float64Array;
  /** where data is NaN, as time segments (coalesced) */
  gaps: SegmentList;
}

export interface DetectorStreamOptions {
  /** the detector the campaign expects; every file's meta/Detector must match */
  ifo?: string;
  /**
   * Keep going when some files can't be opened (damaged after planning): they
   * are listed in `unreadable`, and their time reads as a gap (NaN), so a
   * read that needs them fails while reads covered by other files succeed.
   */
  skipUnreadable?: boolean;
}

// GPS times before 1980 or after ~2300 mean a broken Xstart
const GPS_MIN = 0;
const GPS_MAX = 1e10;

function readSlice(f: H5File, path: string, a: number, b: number): Float64Array {
  let v: unknown;
  try {
    v = getDataset(f, path, STRAIN).slice([[a, b]]);
  } catch (e) {
    if (e instanceof StrainFileError) throw e;
    throw new StrainFileError(path, STRAIN, `samples [${a}, ${b}) unreadable (truncated file?)`);
  }
  if (v instanceof Float64Array) return v;
  if (v instanceof Float32Array) return Float64Array.from(v);
  throw new StrainFileError(path, STRAIN, "expected floating-point samples");
}

function sameSample(a: number, b: number): boolean {
  return a === b || (Number.isNaN(a) && Number.isNaN(b));
}

/** Runs of NaN in data as time segments. */
export function nanSegments(data: ArrayLike<number>, start: number, sampleRate: number): SegmentList {
  const out: Segment[] = [];
  let run = -1;
  for (let i = 0; i < data.length; i++) {
    const bad = Number.isNaN(data[i]);
    if (bad && run < 0) run = i;
    else if (!bad && run >= 0) {
      out.push(new Segment(start + run / sampleRate, start + i / sampleRate));
      run = -1;
    }
  }
  if (run >= 0) out.push(new Segment(start + run / sampleRate, start + data.length / sampleRate));
  return new SegmentList(out).coalesce();
}

export class DetectorStream {
  readonly ifo: string;
  readonly sampleRate: number;
  /** sorted by start */
  readonly files: readonly StrainFileInfo[];
  /** files left out because they could not be opened (with `skipUnreadable`) */
  readonly unreadable: readonly StrainFileError[];
  readonly #t0: number; // sample grid origin
  readonly #xspacing: number;
  // The file read last stays open: a job reads its range in consecutive
  // steps, and opening an HDF5 file costs more than reading a step of it.
  #held: { info: StrainFileInfo; file: H5File } | undefined;

  private constructor(ifo: string, files: StrainFileInfo[], unreadable: StrainFileError[] = []) {
    this.ifo = ifo;
    this.files = files;
    this.unreadable = unreadable;
    this.sampleRate = files[0].sampleRate;
    this.#t0 = files[0].xstart;
    this.#xspacing = files[0].xspacing;
  }

  /** Opens and checks the files of one detector (metadata only). */
  static async open(paths: readonly string[], opts: DetectorStreamOptions = {}): Promise<DetectorStream> {
    const unique = [...new Set(paths)];
    if (unique.length === 0) throw new Error(`no strain files${opts.ifo ? ` for ${opts.ifo}` : ""}`);
    const infos: StrainFileInfo[] = [];
    const unreadable: StrainFileError[] = [];
    for (const p of unique) {
      try {
        infos.push(await readStrainFileInfo(p));
      } catch (e) {
        if (opts.skipUnreadable && e instanceof StrainFileError) unreadable.push(e);
        else throw e;
      }
    }
    if (infos.length === 0) throw unreadable[0];
    infos.sort((a, b) => a.xstart - b.xstart);
    const first = infos[0];
    const ifo = opts.ifo ?? first.ifo;
    for (const f of infos) {
      if (f.ifo !== ifo) {
        throw new StrainFileError(f.path, "meta/Detector", `is ${f.ifo}, expected ${ifo}${opts.ifo ? "" : ` (as in ${first.path})`}`);
      }
      if (!(f.xstart > GPS_MIN && f.xstart < GPS_MAX)) {
        throw new StrainFileError(f.path, `${STRAIN} attribute Xstart`, `${f.xstart} is not a plausible GPS time`);
      }
      if (Math.abs(f.xspacing - first.xspacing) > 1e-12 * first.xspacing) {
        throw new StrainFileError(
          f.path,
          `${STRAIN} attribute Xspacing`,
          `${f.xspacing} s (${f.sampleRate} Hz) differs from ${first.xspacing} s (${first.sampleRate} Hz) in ${first.path}`,
        );
      }
      const off = (f.xstart - first.xstart) / first.xspacing;
      if (Math.abs(off - Math.round(off)) > 1e-3) {
        throw new StrainFileError(f.path, `${STRAIN} attribute Xstart`, `${f.xstart} is not on the sample grid of ${first.path}`);
      }
    }
    const stream = new DetectorStream(ifo, infos, unreadable);
    try {
      await stream.#checkOverlaps();
    } finally {
      stream.close();
    }
    return stream;
  }

  #index(t: number): number {
    return Math.round((t - this.#t0) / this.#xspacing);
  }

  #fileRange(f: StrainFileInfo): [number, number] {
    const a = this.#index(f.xstart);
    return [a, a + f.npoints];
  }

  async #checkOverlaps(): Promise<void> {
    for (let i = 1; i < this.files.length; i++) {
      const a1 = this.#fileRange(this.files[i - 1])[1];
      const [b0, b1] = this.#fileRange(this.files[i]);
      if (b0 >= a1) continue;
      const lo = b0, hi = Math.min(a1, b1);
      const x = await this.#readFile(this.files[i - 1], lo, hi);
      const y = await this.#readFile(this.files[i], lo, hi);
      for (let k = 0; k < x.length; k++) {
        if (!sameSample(x[k], y[k])) {
          const t = this.#t0 + (lo + k) * this.#xspacing;
          throw new StrainFileError(
            this.files[i].path,
            STRAIN,
            `overlaps ${this.files[i - 1].path} and disagrees with it at GPS ${t}`,
          );
        }
      }
    }
  }

  /** Samples [lo, hi) of the grid from one file (clipped by the caller). */
  async #readFile(f: StrainFileInfo, lo: number, hi: number): Promise<Float64Array> {
    const [s] = this.#fileRange(f);
    if (this.#held?.info !== f) {
      const file = await openH5(f.path, "r");
      this.close(); // whatever is held now: another read may have opened a file meanwhile
      this.#held = { info: f, file };
    }
    try {
      return readSlice(this.#held.file, f.path, lo - s, hi - s);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Closes the file kept open between reads (a later read opens it again). */
  close(): void {
    closeQuietly(this.#held?.file);
    this.#held = undefined;
  }

  /** GPS span of the files (first start to last end). */
  get span(): Segment {
    const last = this.files.reduce((m, f) => Math.max(m, f.xstart + f.npoints * f.xspacing), -Infinity);
    return new Segment(this.files[0].xstart, last);
  }

  /** Where some file holds samples (NaN or not). */
  coverage(): SegmentList {
    return new SegmentList(this.files.map((f) => new Segment(f.xstart, f.xstart + f.npoints * f.xspacing))).coalesce();
  }

  /** Time where every flag in `flags` is set in the files' DQ masks. */
  dataSegments(flags: readonly string[]): SegmentList {
    let out = new SegmentList();
    for (const f of this.files) {
      const seg = segmentsFromDQMask({ mask: f.dq.mask, names: f.dq.names, start: f.dq.start, rate: f.dq.rate, required: flags, source: f.path });
      out = out.union(seg);
    }
    return out.coalesce();
  }

  /**
   * Strain over [start, end): the nearest grid samples, NaN where no file
   * covers the time; gaps reported as segments.
   */
  async read(start: number, end: number): Promise<StrainSlice> {
    if (!(end >= start)) throw new RangeError(`${this.ifo}: bad time range [${start}, ${end})`);
    const i0 = this.#index(start);
    const i1 = this.#index(end);
    const t0 = this.#t0 + i0 * this.#xspacing;
    if (Math.abs(t0 - start) > 1e-3 * this.#xspacing + 1e-9) {
      throw new RangeError(`${this.ifo}: start ${start} is not on the ${this.sampleRate} Hz sample grid of the files`);
    }
    const data = new Float64Array(i1 - i0).fill(Number.NaN);
    for (const f of this.files) {
      const [a, b] = this.#fileRange(f);
      const lo = Math.max(a, i0), hi = Math.min(b, i1);
      if (hi <= lo) continue;
      data.set(await this.#readFile(f, lo, hi), lo - i0);
    }
    return { ifo: this.ifo, start: t0, sampleRate: this.sampleRate, data, gaps: nanSegments(data, t0, this.sampleRate) };
  }
}
