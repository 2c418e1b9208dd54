// Thin helpers over h5wasm: one place that knows how values come back
// (int64 as BigInt, strings fixed or variable length, scalars vs arrays).
import { statSync } from "node:fs";
import h5wasm from "h5wasm/node";
import { StrainFileError } from "./errors.js";

export type H5File = InstanceType<typeof h5wasm.File>;
export type H5Dataset = InstanceType<typeof h5wasm.Dataset>;
export type H5Group = InstanceType<typeof h5wasm.Group>;

let readyPromise: Promise<unknown> | undefined;

export async function h5(): Promise<typeof h5wasm> {
  // HDF5 errors become exceptions instead of diagnostics printed to stderr.
  readyPromise ??= h5wasm.ready.then((m) => m.activate_throwing_error_handler());
  await readyPromise;
  return h5wasm;
}

export async function openH5(path: string, mode: "r" | "w" = "r"): Promise<H5File> {
  const lib = await h5();
  if (mode === "r") {
    try {
      const st = statSync(path);
      if (!st.isFile()) throw new StrainFileError(path, "file", "not a regular file");
    } catch (e) {
      if (e instanceof StrainFileError) throw e;
      throw new StrainFileError(path, "file", "does not exist or cannot be read");
    }
  }
  let f: H5File;
  try {
    f = new lib.File(path, mode);
  } catch (e) {
    throw new StrainFileError(path, "file", `not a readable HDF5 file (${firstLine(e)})`);
  }
  // h5wasm does not throw on a non-HDF5 file: it returns a handle with id 0.
  if ((f as unknown as { file_id: bigint }).file_id < 0n) {
    throw new StrainFileError(path, "file", "not a readable HDF5 file (missing, truncated or another format)");
  }
  return f;
}

export function getDataset(f: H5File, path: string, name: string): H5Dataset {
  let obj: unknown;
  try {
    obj = f.get(name);
  } catch {
    obj = null;
  }
  if (!obj || !(obj instanceof h5wasm.Dataset)) {
    throw new StrainFileError(path, name, "missing dataset");
  }
  return obj;
}

export function hasDataset(f: H5File, name: string): boolean {
  try {
    return f.get(name) instanceof h5wasm.Dataset;
  } catch {
    return false;
  }
}

export function getGroup(f: H5File, path: string, name: string): H5Group {
  let obj: unknown;
  try {
    obj = f.get(name);
  } catch {
    obj = null;
  }
  if (!obj || !(obj instanceof h5wasm.Group)) throw new StrainFileError(path, name, "missing group");
  return obj;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return Number(v);
  if (ArrayBuffer.isView(v) && (v as unknown as ArrayLike<unknown>).length === 1) {
    return toNumber((v as unknown as ArrayLike<unknown>)[0]);
  }
  if (Array.isArray(v) && v.length === 1) return toNumber(v[0]);
  return undefined;
}

function toStr(v: unknown): string | undefined {
  if (typeof v === "string") return v.replace(/\0+$/, "").trim();
  if (v instanceof Uint8Array) return new TextDecoder().decode(v).replace(/\0+$/, "").trim();
  if (Array.isArray(v) && v.length === 1) return toStr(v[0]);
  return undefined;
}

function numberOrThrow(v: unknown, path: string, field: string, kind: "number" | "integer"): number {
  const n = toNumber(v);
  if (n === undefined || !Number.isFinite(n) || (kind === "integer" && !Number.isInteger(n))) {
    throw new StrainFileError(path, field, `expected a finite ${kind}, got ${describe(v)}`);
  }
  return n;
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return String(v);
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${(v as unknown as ArrayLike<unknown>).length})`;
  const s = typeof v === "bigint" ? `${v}n` : JSON.stringify(v);
  return s === undefined ? typeof v : s.slice(0, 60);
}

function readValue(ds: H5Dataset, path: string, name: string): unknown {
  try {
    return ds.value;
  } catch (e) {
    throw new StrainFileError(path, name, `unreadable (${String((e as Error)?.message ?? e)})`);
  }
}

export function readScalar(f: H5File, path: string, name: string, kind: "number" | "integer"): number {
  const ds = getDataset(f, path, name);
  return numberOrThrow(readValue(ds, path, name), path, name, kind);
}

export function readString(f: H5File, path: string, name: string): string {
  const ds = getDataset(f, path, name);
  const s = toStr(readValue(ds, path, name));
  if (s === undefined) throw new StrainFileError(path, name, "expected a string");
  return s;
}

export function readStrings(f: H5File, path: string, name: string): string[] {
  const ds = getDataset(f, path, name);
  const v = readValue(ds, path, name);
  const arr = Array.isArray(v) ? v : [v];
  return arr.map((x, i) => {
    const s = toStr(x);
    if (s === undefined) throw new StrainFileError(path, `${name}[${i}]`, "expected a string");
    return s;
  });
}

export function readAttrNumber(
  ds: H5Dataset | H5Group,
  path: string,
  name: string,
  attr: string,
  kind: "number" | "integer",
): number {
  const attrs = ds.attrs;
  if (!(attr in attrs)) throw new StrainFileError(path, `${name} attribute ${attr}`, "missing attribute");
  let v: unknown;
  try {
    v = attrs[attr].value;
  } catch (e) {
    throw new StrainFileError(path, `${name} attribute ${attr}`, `unreadable (${String(e)})`);
  }
  return numberOrThrow(v, path, `${name} attribute ${attr}`, kind);
}

/** Checks a dataset is 1-D of the given element class; returns its length. */
export function check1D(ds: H5Dataset, path: string, name: string, cls: "float" | "int"): number {
  const m = ds.metadata as { type: number; size: number; shape: number[] | null };
  // H5T_INTEGER = 0, H5T_FLOAT = 1
  const want = cls === "float" ? 1 : 0;
  if (m.type !== want) {
    const got = m.type === 0 ? `${m.size * 8}-bit integer` : m.type === 1 ? `${m.size * 8}-bit float` : m.type === 3 ? "string" : `HDF5 type class ${m.type}`;
    throw new StrainFileError(path, name, `wrong dtype ${String(ds.dtype)} (${got}): expected ${cls === "float" ? "floating point (float64 or float32)" : "integer"}`);
  }
  const shape = ds.shape;
  if (!shape || shape.length !== 1) {
    throw new StrainFileError(path, name, `expected a 1-D dataset, got shape ${JSON.stringify(shape)}`);
  }
  return shape[0];
}

export function closeQuietly(f: H5File | undefined): void {
  try {
    f?.close();
  } catch {
    /* already closed */
  }
}

function firstLine(e: unknown): string {
  const m = String((e as Error)?.message ?? e);
  const lines = m.split("\n");
  for (const re of [/signature/i, /truncat|eof|end of file/i, /errno|error message/i]) {
    const l = lines.find((x) => re.test(x));
    if (l) return l.replace(/^.*?(H5\w+\(\):\s*)/, "").trim().slice(0, 160);
  }
  return lines[0].trim().slice(0, 160);
}
