/**
 * A half-open interval [start, end) of GPS seconds (float64), with the
 * semantics of ligo-segments: start == end is an empty segment, which holds
 * no time and no points. Endpoints may be ±Infinity (for "all time").
 */
export class Segment {
  readonly start: number;
  readonly end: number;

  constructor(start: number, end: number) {
    if (typeof start !== "number" || typeof end !== "number" || Number.isNaN(start) || Number.isNaN(end)) {
      throw new RangeError(`Segment: endpoints must be numbers, got [${String(start)}, ${String(end)})`);
    }
    if (start > end) {
      throw new RangeError(`Segment: start ${start} is after end ${end}`);
    }
    this.start = start;
    this.end = end;
    Object.freeze(this);
  }

  /** end - start; 0 for an empty segment (also [inf, inf), where inf - inf would be NaN). */
  get duration(): number {
    return this.start === this.end ? 0 : this.end - this.start;
  }

  isEmpty(): boolean {
    return this.start === this.end;
  }

  /** True when the two share time of positive length; touching segments do not. */
  intersects(other: Segment): boolean {
    return this.start < other.end && other.start < this.end && !this.isEmpty() && !other.isEmpty();
  }

  /** A time t is inside when start <= t < end; a segment when its bounds lie within these (as in ligo-segments). */
  contains(x: number | Segment): boolean {
    if (typeof x === "number") return this.start <= x && x < this.end;
    return this.start <= x.start && x.end <= this.end;
  }

  /** The common time, or null when there is none of positive length. */
  intersection(other: Segment): Segment | null {
    if (!this.intersects(other)) return null;
    return new Segment(Math.max(this.start, other.start), Math.min(this.end, other.end));
  }

  shift(dt: number): Segment {
    return new Segment(this.start + dt, this.end + dt);
  }

  /** [start - x, end + x]; a negative x contracts (and never inverts, see contract). */
  protract(x: number): Segment {
    return this.contract(-x);
  }

  /**
   * [start + x, end - x]. Contracting by more than half the duration does not
   * invert the segment (that would be an error in ligo-segments terms and
   * meaningless as time): it collapses to an empty segment at the midpoint.
   */
  contract(x: number): Segment {
    if (Number.isNaN(x)) throw new RangeError(`Segment.contract: amount must be a number, got ${x}`);
    const start = this.start + x;
    const end = this.end - x;
    if (start <= end) return new Segment(start, end);
    // halves first, so two huge finite endpoints cannot overflow to Infinity
    const mid = this.start / 2 + this.end / 2;
    return new Segment(mid, mid);
  }

  equals(other: Segment): boolean {
    return this.start === other.start && this.end === other.end;
  }

  /** [start, end]. JSON has no Infinity, so an unbounded segment refuses rather than becoming null. */
  toJSON(): [number, number] {
    if (!Number.isFinite(this.start) || !Number.isFinite(this.end)) {
      throw new RangeError(`Segment ${this.toString()} has an infinite endpoint and cannot be written as JSON`);
    }
    return [this.start, this.end];
  }

  toString(): string {
    return `[${this.start}, ${this.end})`;
  }
}
