// The output sample grid of a job result file (`/grid`): which
// detection-statistic samples the job produced, shift by shift, so that
// livetime taken out of the background (hierarchical removal) can be counted
// exactly, sample by sample, from the file alone.
//
//   /grid/shift_index   int64 [S]          index into the campaign's shift table
//   /grid/shift         float64 [S, n_ifo] the shift vector
//   /grid/first         float64 [S]        GPS stamp of output sample 0 (reference time, window end)
//   /grid/count         int64 [S]          samples in the output span (vetoed ones included)
//   /grid/event_start   int64 [S]          first /events row of this shift (events are in shift order)
//   /grid/event_count   int64 [S]          its number of events
//   /grid/vetoed_row, vetoed_start, vetoed_end   int64 [V]: samples [start, end) of row `row` not produced (vetoes)
//   attrs: inference_sampling_rate (Hz): sample j is stamped first + j / rate;
//          event_time_offset (s): an event at sample j has time first + j / rate − offset;
//          circular (0/1), ring_start, ring_end, ring_period (circular: each detector wraps within
//          [ring_start, ring_end) with period ring_period: the ring's length in whole samples at the analysis rate)
import type h5wasm from "h5wasm/node";
import { h5, openH5, readRows, type ExtraGroup } from "./events-io.js";

export interface GridRow {
  shiftIndex: number;
  shift: number[];
  first: number;
  count: number;
  eventStart: number;
  eventCount: number;
  /** sorted, disjoint sample ranges [a, b) not produced */
  vetoed: Array<[number, number]>;
}

export interface JobGrid {
  inferenceSamplingRate: number;
  eventTimeOffset: number;
  /** circular slides: the ring each detector wraps within */
  ring?: [number, number];
  /** circular slides: the period of the wrap (s): the ring's length in whole samples of the analysis rate */
  ringPeriod?: number;
  rows: GridRow[];
}

/** Samples a grid row produced (its count less the vetoed ones). */
export function producedSamples(r: GridRow): number {
  let n = r.count;
  for (const [a, b] of r.vetoed) n -= b - a;
  return n;
}

/** The `/grid` group of a job result file (for writeEvents' `extra`). */
export function gridGroup(g: JobGrid, nIfo: number): ExtraGroup {
  const S = g.rows.length;
  const shift = new Float64Array(S * nIfo);
  g.rows.forEach((r, i) => shift.set(r.shift, i * nIfo));
  const vet = g.rows.flatMap((r, i) => r.vetoed.map(([a, b]) => [i, a, b]));
  const big = (f: (r: GridRow) => number) => BigInt64Array.from(g.rows, (r) => BigInt(f(r)));
  return {
    attrs: {
      inference_sampling_rate: g.inferenceSamplingRate,
      event_time_offset: g.eventTimeOffset,
      circular: g.ring ? 1 : 0,
      ...(g.ring ? { ring_start: g.ring[0], ring_end: g.ring[1], ring_period: g.ringPeriod ?? g.ring[1] - g.ring[0] } : {}),
    },
    datasets: {
      shift_index: big((r) => r.shiftIndex),
      shift: { data: shift, shape: [S, nIfo] },
      first: Float64Array.from(g.rows, (r) => r.first),
      count: big((r) => r.count),
      event_start: big((r) => r.eventStart),
      event_count: big((r) => r.eventCount),
      vetoed_row: BigInt64Array.from(vet, (v) => BigInt(v[0])),
      vetoed_start: BigInt64Array.from(vet, (v) => BigInt(v[1])),
      vetoed_end: BigInt64Array.from(vet, (v) => BigInt(v[2])),
    },
  };
}

type H5File = InstanceType<typeof h5wasm.File>;
type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

/**
 * A job result file opened for reading slices: its grid (null when the file
 * has none: written before grids were recorded) and rows of /events columns.
 */
export class JobFileReader {
  private constructor(
    readonly path: string,
    private readonly lib: typeof h5wasm,
    private readonly f: H5File,
  ) {}

  static async open(path: string): Promise<JobFileReader> {
    const lib = await h5();
    return new JobFileReader(path, lib, openH5(lib, path));
  }

  close(): void {
    this.f.close();
  }

  #dataset(name: string): H5Dataset {
    const d = this.f.get(name);
    if (!(d instanceof this.lib.Dataset)) throw new Error(`${this.path}: ${name}: expected a dataset`);
    return d;
  }

  /** Rows [a, b) of a 1-d /events column (time, detection_statistic). */
  column(name: "time" | "detection_statistic", a: number, b: number): Float64Array {
    if (b <= a) return new Float64Array(0);
    const d = this.#dataset(`events/${name}`);
    const n = d.shape?.[0] ?? 0;
    if (a < 0 || b > n) throw new Error(`${this.path}: /events/${name}: rows [${a}, ${b}) outside [0, ${n})`);
    const part = d.slice([[a, b]]) as ArrayLike<number> | null;
    if (!part || part.length !== b - a) throw new Error(`${this.path}: /events/${name}: expected ${b - a} values in rows [${a}, ${b})`);
    return Float64Array.from(part);
  }

  /** The whole of an /events column (files without a grid). */
  wholeColumn(name: "time" | "detection_statistic" | "shift"): { values: Float64Array; width: number } {
    const d = this.#dataset(`events/${name}`);
    const [n, width = 1] = d.shape ?? [0];
    return { values: readRows(this.path, d, `/events/${name}`, n, width), width };
  }

  grid(): JobGrid | null {
    const g = this.f.get("grid");
    if (g === null) return null;
    if (!(g instanceof this.lib.Group)) throw new Error(`${this.path}: /grid: expected a group`);
    const attr = (k: string): number => {
      const a = g.attrs[k];
      const v = a ? Number(a.value as number | bigint) : Number.NaN;
      if (!Number.isFinite(v)) throw new Error(`${this.path}: /grid attr ${k}: expected a number`);
      return v;
    };
    const col = (k: string): Float64Array => {
      const d = this.#dataset(`grid/${k}`);
      const shape = d.shape ?? [];
      return readRows(this.path, d, `/grid/${k}`, shape[0] ?? 0, shape.length > 1 ? shape[1] : 1);
    };
    const shiftIndex = col("shift_index");
    const S = shiftIndex.length;
    const shift = col("shift");
    const nIfo = S ? shift.length / S : 0;
    const first = col("first");
    const count = col("count");
    const eventStart = col("event_start");
    const eventCount = col("event_count");
    const vr = col("vetoed_row");
    const va = col("vetoed_start");
    const vb = col("vetoed_end");
    for (const [k, a] of Object.entries({ first, count, event_start: eventStart, event_count: eventCount }))
      if (a.length !== S) throw new Error(`${this.path}: /grid/${k}: expected ${S} rows (one per shift), got ${a.length}`);
    const rows: GridRow[] = Array.from({ length: S }, (_, i) => ({
      shiftIndex: shiftIndex[i],
      shift: Array.from(shift.subarray(i * nIfo, (i + 1) * nIfo)),
      first: first[i],
      count: count[i],
      eventStart: eventStart[i],
      eventCount: eventCount[i],
      vetoed: [],
    }));
    for (let v = 0; v < vr.length; v++) rows[vr[v]]?.vetoed.push([va[v], vb[v]]);
    const circular = attr("circular") === 1;
    return {
      inferenceSamplingRate: attr("inference_sampling_rate"),
      eventTimeOffset: attr("event_time_offset"),
      ...(circular ? { ring: [attr("ring_start"), attr("ring_end")] as [number, number], ringPeriod: attr("ring_period") } : {}),
      rows,
    };
  }
}
