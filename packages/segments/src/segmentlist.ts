import { Segment } from "./segment.js";
import { formatGps, parseSegmentJSON, parseSegmentText } from "./segmentio.js";

type SegmentLike = Segment | readonly [number, number];

function toSegment(x: SegmentLike, index: number): Segment {
  if (x instanceof Segment) return x;
  if (Array.isArray(x) && x.length === 2) return new Segment(x[0], x[1]);
  throw new TypeError(`SegmentList: item ${index} is not a Segment or a [start, end] pair: ${String(x)}`);
}

/**
 * An immutable list of segments. The list keeps its segments as given (in
 * order, possibly overlapping, like a ligo-segments segmentlist); the set
 * operations, protract/contract, duration and contains work on the
 * coalesced form, and return coalesced lists.
 */
export class SegmentList implements Iterable<Segment> {
  readonly segments: readonly Segment[];
  // computed once: operations on one list are frequent in planning
  #coalesced: SegmentList | undefined;

  constructor(segments: Iterable<SegmentLike> = []) {
    const list: Segment[] = [];
    let i = 0;
    for (const s of segments) list.push(toSegment(s, i++));
    this.segments = Object.freeze(list);
  }

  /** Wraps segments already sorted, disjoint, non-touching and non-empty. */
  static #ofCoalesced(segments: Segment[]): SegmentList {
    const list = new SegmentList(segments);
    list.#coalesced = list;
    return list;
  }

  get length(): number {
    return this.segments.length;
  }

  [Symbol.iterator](): Iterator<Segment> {
    return this.segments[Symbol.iterator]();
  }

  /** Sorted, with overlapping and touching segments merged and empty ones dropped. */
  coalesce(): SegmentList {
    if (this.#coalesced) return this.#coalesced;
    const sorted = this.segments.filter((s) => !s.isEmpty()).sort((a, b) => a.start - b.start || a.end - b.end);
    const out: Segment[] = [];
    let cur = sorted[0];
    for (let i = 1; i < sorted.length; i++) {
      const s = sorted[i];
      if (s.start <= cur.end) {
        if (s.end > cur.end) cur = new Segment(cur.start, s.end);
      } else {
        out.push(cur);
        cur = s;
      }
    }
    if (cur) out.push(cur);
    // reuse this object when nothing changed, so later calls are free too
    const same = out.length === this.segments.length && out.every((s, i) => s === this.segments[i]);
    this.#coalesced = same ? this : SegmentList.#ofCoalesced(out);
    return this.#coalesced;
  }

  /** Time in both (ligo-segments `&`). */
  intersect(other: SegmentList): SegmentList {
    const a = this.coalesce().segments;
    const b = other.coalesce().segments;
    const out: Segment[] = [];
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      const start = Math.max(a[i].start, b[j].start);
      const end = Math.min(a[i].end, b[j].end);
      if (start < end) out.push(new Segment(start, end));
      // the one that ends first cannot meet anything further in the other list
      if (a[i].end < b[j].end) i++;
      else j++;
    }
    return SegmentList.#ofCoalesced(out);
  }

  /** Time in either (ligo-segments `|`). */
  union(other: SegmentList): SegmentList {
    return new SegmentList([...this.coalesce().segments, ...other.coalesce().segments]).coalesce();
  }

  /** Time in this list and not in the other (ligo-segments `-`). */
  subtract(other: SegmentList): SegmentList {
    const a = this.coalesce().segments;
    const b = other.coalesce().segments;
    const out: Segment[] = [];
    let j = 0;
    for (const seg of a) {
      let start = seg.start;
      // segments of b that end at or before this one starts can't cut it, nor anything later in a
      while (j < b.length && b[j].end <= start) j++;
      let k = j;
      while (k < b.length && b[k].start < seg.end) {
        if (b[k].start > start) out.push(new Segment(start, b[k].start));
        start = Math.max(start, b[k].end);
        if (b[k].end >= seg.end) break;
        k++;
      }
      if (start < seg.end) out.push(new Segment(start, seg.end));
    }
    return SegmentList.#ofCoalesced(out);
  }

  /** The complement within (-Infinity, +Infinity) (ligo-segments `~`). */
  invert(): SegmentList {
    const out: Segment[] = [];
    let prev = -Infinity;
    for (const s of this.coalesce().segments) {
      if (s.start > prev) out.push(new Segment(prev, s.start));
      prev = s.end;
    }
    if (prev < Infinity) out.push(new Segment(prev, Infinity));
    return SegmentList.#ofCoalesced(out);
  }

  /** Every segment moved by dt; order and overlaps are kept. */
  shift(dt: number): SegmentList {
    const out = new SegmentList(this.segments.map((s) => s.shift(dt)));
    if (this.#coalesced === this) out.#coalesced = out;
    return out;
  }

  /**
   * The time covered, widened by x at both ends of each coalesced segment
   * (a negative x contracts). Working on the coalesced form makes the result
   * depend only on the time covered, not on how the list was split.
   */
  protract(x: number): SegmentList {
    return new SegmentList(this.coalesce().segments.map((s) => s.protract(x))).coalesce();
  }

  /**
   * Each coalesced segment narrowed by x at both ends; a segment never
   * inverts, it becomes empty and is dropped. For a coalesced list this is
   * ligo-segments' contract; [0,5) + [5,10) contracts like [0,10).
   */
  contract(x: number): SegmentList {
    return new SegmentList(this.coalesce().segments.map((s) => s.contract(x))).coalesce();
  }

  /** Total time covered (the list's livetime): overlaps count once. */
  get duration(): number {
    let total = 0;
    for (const s of this.coalesce().segments) total += s.duration;
    return total;
  }

  /** From the earliest start to the latest end of the time covered; null when the list covers no time. */
  extent(): Segment | null {
    const c = this.coalesce().segments;
    if (c.length === 0) return null;
    return new Segment(c[0].start, c[c.length - 1].end);
  }

  /** Whether time t lies in the list (binary search of the coalesced form). */
  contains(t: number): boolean {
    const c = this.coalesce().segments;
    let lo = 0;
    let hi = c.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (c[mid].end <= t) lo = mid + 1;
      else hi = mid;
    }
    return lo < c.length && c[lo].contains(t);
  }

  filter(pred: (s: Segment) => boolean): SegmentList {
    return new SegmentList(this.segments.filter((s) => pred(s)));
  }

  /** Same segments in the same order. */
  equals(other: SegmentList): boolean {
    return this.length === other.length && this.segments.every((s, i) => s.equals(other.segments[i]));
  }

  /** One "start end" line per segment, numbers written so they read back exactly. */
  toText(): string {
    return this.segments.map((s) => `${formatGps(s.start)} ${formatGps(s.end)}\n`).join("");
  }

  /** [[start, end], ...]; refuses infinite endpoints (JSON would turn them into null). */
  toJSON(): Array<[number, number]> {
    return this.segments.map((s) => s.toJSON());
  }

  toString(): string {
    return `[${this.segments.map((s) => s.toString()).join(", ")}]`;
  }

  /** "start end" lines, or segwizard "index start end duration" lines; '#' comments. Not coalesced. */
  static fromText(text: string, source?: string): SegmentList {
    return new SegmentList(parseSegmentText(text, source));
  }

  /** [[start, end], ...] or {"segments": [[start, end], ...]}. Not coalesced. */
  static fromJSON(value: unknown, source?: string): SegmentList {
    return new SegmentList(parseSegmentJSON(value, source));
  }
}
