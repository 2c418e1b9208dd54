import { Segment } from "./segment.js";
import { SegmentList } from "./segmentlist.js";

export interface DQMaskOptions {
  /** One integer per mask sample (GWOSC `quality/simple/DQmask`); int64 files give BigInt. */
  mask: ArrayLike<number | bigint>;
  /** Bit i is names[i] (GWOSC `quality/simple/DQShortnames`); never assume the layout. */
  names: readonly string[];
  /** GPS time of mask sample 0. */
  start: number;
  /** Mask samples per second; GWOSC masks are 1 Hz. */
  rate?: number;
  /** Flags that must all be set for a sample to count as good time. */
  required: readonly string[];
  /** For error messages, e.g. the file path. */
  source?: string;
}

/**
 * The time where every required DQ bit is set: sample i covers
 * [start + i/rate, start + (i+1)/rate), and runs of good samples become
 * segments (coalesced).
 */
export function segmentsFromDQMask(opts: DQMaskOptions): SegmentList {
  const { mask, names, start, required } = opts;
  const rate = opts.rate ?? 1;
  const source = opts.source ?? "<DQ mask>";
  if (!Number.isFinite(start)) throw new RangeError(`${source}: DQ mask start must be a finite GPS time, got ${start}`);
  if (!(rate > 0) || !Number.isFinite(rate)) throw new RangeError(`${source}: DQ mask rate must be > 0 Hz, got ${rate}`);

  // h5py fixed-length strings can come back padded with NULs or spaces
  const clean = names.map((n) => n.replace(/\0+$/, "").trim());
  let bits = 0n;
  for (const flag of required) {
    const bit = clean.indexOf(flag);
    if (bit < 0) {
      throw new Error(
        `${source}: DQ flag ${JSON.stringify(flag)} is not in DQShortnames; available: ${clean.map((n) => JSON.stringify(n)).join(", ")}`,
      );
    }
    bits |= 1n << BigInt(bit);
  }

  // Fast path: with every required bit below 32, `&` on a number keeps its low 32 bits exactly.
  const low = bits < 1n << 32n ? Number(bits) >>> 0 : undefined;
  const good = (v: number | bigint, i: number): boolean => {
    if (typeof v === "bigint") return (v & bits) === bits;
    if (!Number.isInteger(v)) throw new RangeError(`${source}: DQ mask sample ${i} is not an integer: ${v}`);
    if (low !== undefined && Math.abs(v) <= Number.MAX_SAFE_INTEGER) return ((v & low) >>> 0) === low;
    return (BigInt(v) & bits) === bits;
  };

  const out: Segment[] = [];
  let runStart = -1;
  const n = mask.length;
  // times from the index, not by accumulation, so long masks do not drift
  const at = (i: number) => start + i / rate;
  for (let i = 0; i < n; i++) {
    const ok = good(mask[i], i);
    if (ok && runStart < 0) runStart = i;
    else if (!ok && runStart >= 0) {
      out.push(new Segment(at(runStart), at(i)));
      runStart = -1;
    }
  }
  if (runStart >= 0) out.push(new Segment(at(runStart), at(n)));
  return new SegmentList(out).coalesce();
}
