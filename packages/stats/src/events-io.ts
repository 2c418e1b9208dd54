// Events files (DESIGN.md "Events"): job results and the aggregated
// background / foreground / injection sets. Read by slices so long files never
// sit in memory twice; written atomically (temporary file, then rename).

import h5wasm from "h5wasm/node";
import { existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, basename, join } from "node:path";
import { randomBytes } from "node:crypto";
import { z } from "zod";

type H5File = InstanceType<typeof h5wasm.File>;
type H5Group = InstanceType<typeof h5wasm.Group>;
type H5Dataset = InstanceType<typeof h5wasm.Dataset>;

export const SLICE_ROWS = 1 << 16;

export interface EventSet {
  time: Float64Array;
  detection_statistic: Float64Array;
  /** row-major [n, nIfo] */
  shift: Float64Array;
  nIfo: number;
  /** injection jobs only: matched injection, −1 if none */
  injection_index?: Int32Array;
  livetime: number;
  ifos: string[];
  kind?: string;
  job_id?: string;
}

/** Extra content of an events file beside /events (aggregated sets). */
export interface ExtraGroup {
  attrs?: Record<string, number | string | string[]>;
  datasets?: Record<string, Float64Array | BigInt64Array | Int32Array | string[] | ShapedData>;
}

/** A numeric dataset of more than one dimension (row-major). */
export interface ShapedData {
  data: Float64Array | BigInt64Array | Int32Array;
  shape: number[];
}

/** A whole events file as read back: the event set, the other /events attrs, and any extra groups. */
export interface EventsFile {
  events: EventSet;
  attrs: Record<string, unknown>;
}

let ready: Promise<unknown> | null = null;
/** h5wasm's wasm module, loaded once. */
export async function h5(): Promise<typeof h5wasm> {
  ready ??= h5wasm.ready;
  await ready;
  return h5wasm;
}

const stringList = z.union([z.array(z.string()), z.string().transform((s) => s.split(",").map((x) => x.trim()).filter(Boolean))]);
const numberLike = z.union([z.number(), z.bigint().transform((b) => Number(b))]);
const EventsAttrs = z.looseObject({
  livetime: numberLike.pipe(z.number().nonnegative()),
  ifos: stringList.optional(),
  kind: z.string().optional(),
  job_id: z.string().optional(),
});

function fail(path: string, field: string, expected: string): never {
  throw new Error(`${path}: ${field}: expected ${expected}`);
}

export function openH5(lib: typeof h5wasm, path: string): H5File {
  if (!existsSync(path)) throw new Error(`${path}: no such file`);
  let f: H5File;
  try {
    f = new lib.File(path, "r");
  } catch (err) {
    throw new Error(`${path}: cannot open as HDF5 (${(err as Error).message})`);
  }
  // h5wasm reports a missing file as an invalid id rather than throwing
  if (!f.file_id || f.file_id < 0n) throw new Error(`${path}: cannot open as HDF5 (missing or unreadable)`);
  return f;
}

function attrValues(path: string, where: string, g: H5Group | H5Dataset): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, a] of Object.entries(g.attrs)) {
    try {
      let v: unknown = a.value;
      if (ArrayBuffer.isView(v) && !(v instanceof DataView)) v = Array.from(v as unknown as ArrayLike<number>);
      out[k] = v;
    } catch (err) {
      throw new Error(`${path}: ${where} attr ${k}: unreadable (${(err as Error).message})`);
    }
  }
  return out;
}

function dataset(path: string, g: H5Group, name: string, where: string): H5Dataset {
  const d = g.get(name);
  if (!(d instanceof h5wasm.Dataset)) fail(path, `${where}/${name}`, "a dataset");
  return d;
}

/** Read rows [0, n) of a numeric dataset by slices into a Float64Array (width values per row). */
export function readRows(path: string, d: H5Dataset, field: string, n: number, width: number): Float64Array {
  const out = new Float64Array(n * width);
  const meta = d.metadata;
  if (meta.type !== 0 && meta.type !== 1) fail(path, field, `a numeric dataset, got HDF5 type class ${meta.type}`);
  for (let a = 0; a < n; a += SLICE_ROWS) {
    const b = Math.min(n, a + SLICE_ROWS);
    const part = d.slice([[a, b]]) as ArrayLike<number | bigint> | null;
    if (!part || part.length !== (b - a) * width) fail(path, field, `${(b - a) * width} values in rows [${a}, ${b})`);
    if (part instanceof BigInt64Array || part instanceof BigUint64Array) {
      for (let i = 0; i < part.length; i++) out[a * width + i] = Number(part[i]);
    } else out.set(part as ArrayLike<number>, a * width);
  }
  return out;
}

function readEventsGroup(lib: typeof h5wasm, f: H5File, path: string): EventsFile {
  const g = f.get("events");
  if (!(g instanceof lib.Group)) fail(path, "/events", "a group (DESIGN.md events layout)");
  const raw = attrValues(path, "/events", g);
  const parsed = EventsAttrs.safeParse(raw);
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    fail(path, `/events attr ${i.path.join(".") || "(attrs)"}`, i.message);
  }
  const attrs = parsed.data;
  const dStat = dataset(path, g, "detection_statistic", "/events");
  const dTime = dataset(path, g, "time", "/events");
  const dShift = dataset(path, g, "shift", "/events");
  const n = dStat.shape?.[0] ?? fail(path, "/events/detection_statistic", "a 1-d dataset");
  if (dStat.shape?.length !== 1) fail(path, "/events/detection_statistic", `shape [n], got [${dStat.shape}]`);
  if (dTime.shape?.length !== 1 || dTime.shape[0] !== n) fail(path, "/events/time", `shape [${n}], got [${dTime.shape}]`);
  const ss = dShift.shape ?? [];
  if (ss.length !== 2 || ss[0] !== n) fail(path, "/events/shift", `shape [${n}, n_ifo], got [${ss}]`);
  const nIfo = ss[1];
  const ifos = attrs.ifos ?? [];
  if (ifos.length && ifos.length !== nIfo) fail(path, "/events attr ifos", `${nIfo} names (shift has ${nIfo} columns), got ${JSON.stringify(ifos)}`);
  const events: EventSet = {
    detection_statistic: readRows(path, dStat, "/events/detection_statistic", n, 1),
    time: readRows(path, dTime, "/events/time", n, 1),
    shift: readRows(path, dShift, "/events/shift", n, nIfo),
    nIfo,
    livetime: attrs.livetime,
    ifos,
    kind: attrs.kind,
    job_id: attrs.job_id,
  };
  for (let i = 0; i < n; i++) if (Number.isNaN(events.detection_statistic[i])) fail(path, `/events/detection_statistic[${i}]`, "a number, got NaN");
  if (g.keys().includes("injection_index")) {
    const dIdx = dataset(path, g, "injection_index", "/events");
    if (dIdx.shape?.length !== 1 || dIdx.shape[0] !== n) fail(path, "/events/injection_index", `shape [${n}], got [${dIdx.shape}]`);
    events.injection_index = Int32Array.from(readRows(path, dIdx, "/events/injection_index", n, 1));
  }
  return { events, attrs: raw };
}

/** Read an events file (any HDF5 writer) into memory, by slices. */
export async function readEvents(path: string): Promise<EventSet> {
  return (await readEventsFile(path)).events;
}

/** Like readEvents, with every /events attribute as read. */
export async function readEventsFile(path: string): Promise<EventsFile> {
  const lib = await h5();
  const f = openH5(lib, path);
  try {
    return readEventsGroup(lib, f, path);
  } finally {
    f.close();
  }
}

/** Read a group of 1-d numeric datasets (e.g. /parameters, /histogram) as Float64Arrays; null when absent. */
export async function readColumns(path: string, group: string): Promise<{ columns: Record<string, Float64Array>; attrs: Record<string, unknown> } | null> {
  const lib = await h5();
  const f = openH5(lib, path);
  try {
    const g = f.get(group);
    if (g === null) return null;
    if (!(g instanceof lib.Group)) fail(path, `/${group}`, "a group");
    const columns: Record<string, Float64Array> = {};
    for (const k of g.keys()) {
      const d = g.get(k);
      if (!(d instanceof lib.Dataset)) continue;
      if (d.metadata.type === 3) continue; // strings: not a numeric column
      const shape = d.shape ?? [];
      if (shape.length !== 1) continue;
      columns[k] = readRows(path, d, `/${group}/${k}`, shape[0], 1);
    }
    return { columns, attrs: attrValues(path, `/${group}`, g) };
  } finally {
    f.close();
  }
}

/** Read a 1-d string dataset (e.g. /jobs/job_id); null when absent. */
export async function readStrings(path: string, name: string): Promise<string[] | null> {
  const lib = await h5();
  const f = openH5(lib, path);
  try {
    const d = f.get(name);
    if (d === null) return null;
    if (!(d instanceof lib.Dataset)) fail(path, name, "a dataset of strings");
    const v = d.value;
    if (!Array.isArray(v) || v.some((s) => typeof s !== "string")) fail(path, name, "a 1-d dataset of strings");
    return v as string[];
  } finally {
    f.close();
  }
}

function writeDataset(g: H5Group, name: string, data: Float64Array | BigInt64Array | Int32Array | string[], shape?: number[]): void {
  if (Array.isArray(data)) {
    // h5wasm cannot create an empty string dataset; an empty list is written as absent
    if (data.length) g.create_dataset({ name, data, shape: [data.length] });
    return;
  }
  const dtype = data instanceof Float64Array ? "<d" : data instanceof BigInt64Array ? "<q" : "<i";
  g.create_dataset({ name, data, shape: shape ?? [data.length], dtype });
}

/**
 * Write an events file atomically: the file appears complete under `path` or
 * not at all (a retried job overwrites, never duplicates). `extra` adds groups
 * beside /events (histogram, jobs, injection parameters).
 */
export async function writeEvents(
  path: string,
  events: EventSet,
  attrs: Record<string, number | string | string[]> = {},
  extra: Record<string, ExtraGroup> = {},
): Promise<void> {
  const n = events.detection_statistic.length;
  if (events.time.length !== n || events.shift.length !== n * events.nIfo) {
    throw new Error(`${path}: events: expected time [${n}] and shift [${n}, ${events.nIfo}]`);
  }
  if (events.injection_index && events.injection_index.length !== n) throw new Error(`${path}: events: injection_index must have ${n} entries`);
  const lib = await h5();
  mkdirSync(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const f = new lib.File(tmp, "w");
    try {
      const g = f.create_group("events");
      writeDataset(g, "time", events.time);
      writeDataset(g, "detection_statistic", events.detection_statistic);
      writeDataset(g, "shift", events.shift, [n, events.nIfo]);
      if (events.injection_index) writeDataset(g, "injection_index", BigInt64Array.from(events.injection_index, (v) => BigInt(v)));
      g.create_attribute("livetime", events.livetime, null, "<d");
      if (events.ifos.length) g.create_attribute("ifos", events.ifos);
      if (events.kind) g.create_attribute("kind", events.kind);
      if (events.job_id) g.create_attribute("job_id", events.job_id);
      for (const [k, v] of Object.entries(attrs)) g.create_attribute(k, v, null, typeof v === "number" ? "<d" : null);
      for (const [name, grp] of Object.entries(extra)) {
        const eg = f.create_group(name);
        for (const [k, v] of Object.entries(grp.attrs ?? {})) eg.create_attribute(k, v, null, typeof v === "number" ? "<d" : null);
        for (const [k, v] of Object.entries(grp.datasets ?? {})) {
          if (Array.isArray(v) || ArrayBuffer.isView(v)) writeDataset(eg, k, v);
          else writeDataset(eg, k, v.data, v.shape);
        }
      }
    } finally {
      f.close();
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
