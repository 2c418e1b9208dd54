// What a worker does once per segment and detector: read, resample to the
// analysis rate, whiten. The shifts of a job then slice the result.
import { decimate, decimationFactor } from "./resample.js";
import type { DetectorStream } from "./stream.js";
import { whiten, type WhitenOptions } from "./whiten.js";
import type { Psd } from "./psd.js";

export interface PreparedSegment {
  ifo: string;
  /** GPS time of sample 0 */
  start: number;
  /** the analysis rate */
  sampleRate: number;
  /** resampled strain, not whitened (for injections added before whitening) */
  strain: Float64Array;
  /** whitened strain, aligned with `strain`; zero outside `valid` */
  whitened: Float64Array;
  /** [first, end) sample indices where the whitening filter had full support */
  valid: [number, number];
  /** the whitening FIR; `Whitener.apply(x, filter)` whitens injections alike */
  filter: Float64Array;
  psd: Psd;
}

/** Strain that should be good but is not (NaN inside a segment). */
export class BadSegmentError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "BadSegmentError";
  }
}

export async function prepareSegment(
  stream: DetectorStream,
  start: number,
  end: number,
  o: Omit<WhitenOptions, "sampleRate"> & { sampleRate: number },
): Promise<PreparedSegment> {
  const q = decimationFactor(stream.sampleRate, o.sampleRate);
  const slice = await stream.read(start, end);
  if (slice.gaps.length > 0) {
    const g = slice.gaps.segments[0];
    const files = stream.files.filter((f) => f.xstart < g.end && f.xstart + f.duration > g.start).map((f) => f.path);
    throw new BadSegmentError(
      `${stream.ifo}: no strain (NaN or no file) at [${g.start}, ${g.end}) inside the segment [${start}, ${end})` +
        (files.length ? ` (${files.join(", ")})` : ""),
    );
  }
  const strain = decimate(slice.data, q);
  const w = whiten(strain, o);
  return { ifo: stream.ifo, start: slice.start, sampleRate: o.sampleRate, strain, whitened: w.data, valid: w.valid, filter: w.filter, psd: w.psd };
}
