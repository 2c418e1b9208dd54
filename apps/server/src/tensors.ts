import { status } from "@grpc/grpc-js";
import { InferenceError } from "./errors.js";

/** KServe v2 tensor data types. */
export type Datatype =
  | "BOOL"
  | "UINT8"
  | "UINT16"
  | "UINT32"
  | "UINT64"
  | "INT8"
  | "INT16"
  | "INT32"
  | "INT64"
  | "FP16"
  | "FP32"
  | "FP64"
  | "BYTES";

type TypedArray =
  | Uint8Array
  | Uint16Array
  | Uint32Array
  | BigUint64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Float32Array
  | Float64Array;

/** A tensor in the server: ONNX Runtime's element type name, data and shape. */
export interface HostTensor {
  datatype: Datatype;
  data: TypedArray | string[];
  dims: number[];
}

interface TypeInfo {
  ort: string;
  size: number;
  make: (buf: ArrayBuffer, offset: number, length: number) => TypedArray;
  alloc: (n: number) => TypedArray;
}

const T: Record<Exclude<Datatype, "BYTES">, TypeInfo> = {
  BOOL: { ort: "bool", size: 1, make: (b, o, n) => new Uint8Array(b, o, n), alloc: (n) => new Uint8Array(n) },
  UINT8: { ort: "uint8", size: 1, make: (b, o, n) => new Uint8Array(b, o, n), alloc: (n) => new Uint8Array(n) },
  UINT16: { ort: "uint16", size: 2, make: (b, o, n) => new Uint16Array(b, o, n), alloc: (n) => new Uint16Array(n) },
  UINT32: { ort: "uint32", size: 4, make: (b, o, n) => new Uint32Array(b, o, n), alloc: (n) => new Uint32Array(n) },
  UINT64: { ort: "uint64", size: 8, make: (b, o, n) => new BigUint64Array(b, o, n), alloc: (n) => new BigUint64Array(n) },
  INT8: { ort: "int8", size: 1, make: (b, o, n) => new Int8Array(b, o, n), alloc: (n) => new Int8Array(n) },
  INT16: { ort: "int16", size: 2, make: (b, o, n) => new Int16Array(b, o, n), alloc: (n) => new Int16Array(n) },
  INT32: { ort: "int32", size: 4, make: (b, o, n) => new Int32Array(b, o, n), alloc: (n) => new Int32Array(n) },
  INT64: { ort: "int64", size: 8, make: (b, o, n) => new BigInt64Array(b, o, n), alloc: (n) => new BigInt64Array(n) },
  FP16: { ort: "float16", size: 2, make: (b, o, n) => new Uint16Array(b, o, n), alloc: (n) => new Uint16Array(n) },
  FP32: { ort: "float32", size: 4, make: (b, o, n) => new Float32Array(b, o, n), alloc: (n) => new Float32Array(n) },
  FP64: { ort: "float64", size: 8, make: (b, o, n) => new Float64Array(b, o, n), alloc: (n) => new Float64Array(n) },
};

const ORT_TO_DATATYPE: Record<string, Datatype> = {
  bool: "BOOL",
  uint8: "UINT8",
  uint16: "UINT16",
  uint32: "UINT32",
  uint64: "UINT64",
  int8: "INT8",
  int16: "INT16",
  int32: "INT32",
  int64: "INT64",
  float16: "FP16",
  float32: "FP32",
  float64: "FP64",
  string: "BYTES",
};

export function isDatatype(s: string): s is Datatype {
  return s === "BYTES" || s in T;
}

/** Triton config TYPE_* → KServe datatype (TYPE_STRING is BYTES). */
export function configToDatatype(configType: string): Datatype {
  if (configType === "TYPE_STRING") return "BYTES";
  const d = configType.replace(/^TYPE_/, "");
  if (!isDatatype(d)) throw new Error(`data type ${configType} is not supported by the ONNX Runtime server`);
  return d;
}

export function ortType(d: Datatype): string {
  return d === "BYTES" ? "string" : T[d].ort;
}

export function fromOrtType(t: string): Datatype {
  const d = ORT_TO_DATATYPE[t];
  if (!d) throw new InferenceError(status.INTERNAL, `ONNX Runtime returned unsupported tensor type ${t}`);
  return d;
}

export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) n *= d;
  return n;
}

/** A zero-filled tensor (initial implicit state). */
export function zeros(datatype: Datatype, dims: number[]): HostTensor {
  const n = elementCount(dims);
  return { datatype, dims, data: datatype === "BYTES" ? new Array<string>(n).fill("") : T[datatype].alloc(n) };
}

/** A one-element tensor of `value` (control inputs). */
export function scalar(datatype: Datatype, dims: number[], value: number | bigint | boolean | string): HostTensor {
  const t = zeros(datatype, dims);
  const d = t.data;
  if (datatype === "BYTES") (d as string[])[0] = String(value);
  else if (datatype === "INT64" || datatype === "UINT64") (d as BigInt64Array)[0] = BigInt(value as number);
  else (d as Float32Array)[0] = Number(value);
  return t;
}

/** raw_input_contents bytes → tensor (little-endian, row-major; BYTES: 4-byte length prefixes). */
export function decodeRaw(name: string, datatype: Datatype, dims: number[], raw: Uint8Array): HostTensor {
  const n = elementCount(dims);
  if (datatype === "BYTES") {
    const out: string[] = [];
    let off = 0;
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    while (off < raw.byteLength) {
      if (off + 4 > raw.byteLength) throw new InferenceError(status.INVALID_ARGUMENT, `truncated BYTES element length in input '${name}'`);
      const len = view.getUint32(off, true);
      off += 4;
      if (off + len > raw.byteLength) throw new InferenceError(status.INVALID_ARGUMENT, `truncated BYTES element in input '${name}'`);
      out.push(Buffer.from(raw.buffer, raw.byteOffset + off, len).toString("utf8"));
      off += len;
    }
    if (out.length !== n) {
      throw new InferenceError(status.INVALID_ARGUMENT, `unexpected number of string elements ${out.length} for input '${name}', expecting ${n}`);
    }
    return { datatype, dims, data: out };
  }
  const info = T[datatype];
  const expected = n * info.size;
  if (raw.byteLength !== expected) {
    throw new InferenceError(
      status.INVALID_ARGUMENT,
      `unexpected total byte size ${raw.byteLength} for input '${name}', expecting ${expected} for shape [${dims.join(",")}] of ${datatype}`,
    );
  }
  // Copy: gRPC buffers are views into pooled memory and may be unaligned, and
  // the data is moved to a worker thread.
  const copy = new ArrayBuffer(expected);
  new Uint8Array(copy).set(raw);
  return { datatype, dims, data: info.make(copy, 0, n) };
}

export interface TypedContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (string | number)[];
  uint_contents?: number[];
  uint64_contents?: (string | number)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}

/** InferTensorContents (typed repeated fields) → tensor. */
export function decodeContents(name: string, datatype: Datatype, dims: number[], c: TypedContents): HostTensor {
  const n = elementCount(dims);
  let values: ArrayLike<unknown>;
  switch (datatype) {
    case "BOOL":
      values = c.bool_contents ?? [];
      break;
    case "INT8":
    case "INT16":
    case "INT32":
      values = c.int_contents ?? [];
      break;
    case "INT64":
      values = c.int64_contents ?? [];
      break;
    case "UINT8":
    case "UINT16":
    case "UINT32":
      values = c.uint_contents ?? [];
      break;
    case "UINT64":
      values = c.uint64_contents ?? [];
      break;
    case "FP32":
      values = c.fp32_contents ?? [];
      break;
    case "FP64":
      values = c.fp64_contents ?? [];
      break;
    case "BYTES":
      values = c.bytes_contents ?? [];
      break;
    default:
      throw new InferenceError(status.INVALID_ARGUMENT, `input '${name}': ${datatype} can only be sent in raw_input_contents`);
  }
  if (values.length !== n) {
    throw new InferenceError(
      status.INVALID_ARGUMENT,
      `unexpected number of elements ${values.length} in contents of input '${name}', expecting ${n} for shape [${dims.join(",")}]`,
    );
  }
  if (datatype === "BYTES") {
    return { datatype, dims, data: Array.from(values as ArrayLike<Uint8Array>, (b) => Buffer.from(b).toString("utf8")) };
  }
  const out = T[datatype].alloc(n);
  if (datatype === "INT64" || datatype === "UINT64") {
    for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = BigInt(values[i] as string);
  } else if (datatype === "BOOL") {
    for (let i = 0; i < n; i++) (out as Uint8Array)[i] = values[i] ? 1 : 0;
  } else {
    for (let i = 0; i < n; i++) (out as Float64Array)[i] = Number(values[i]);
  }
  return { datatype, dims, data: out };
}

/** Tensor → raw_output_contents bytes (no copy for numeric tensors). */
export function encodeRaw(t: HostTensor): Buffer {
  if (t.datatype === "BYTES") {
    const parts: Buffer[] = [];
    for (const s of t.data as string[]) {
      const b = Buffer.from(s, "utf8");
      const len = Buffer.alloc(4);
      len.writeUInt32LE(b.length);
      parts.push(len, b);
    }
    return Buffer.concat(parts);
  }
  const d = t.data as TypedArray;
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength);
}

/** Concatenates tensors along the batch (first) dimension. */
export function concatBatch(parts: HostTensor[]): HostTensor {
  const first = parts[0];
  const batch = parts.reduce((a, p) => a + p.dims[0], 0);
  const dims = [batch, ...first.dims.slice(1)];
  if (first.datatype === "BYTES") return { datatype: "BYTES", dims, data: parts.flatMap((p) => p.data as string[]) };
  const out = T[first.datatype].alloc(elementCount(dims));
  let off = 0;
  for (const p of parts) {
    (out as Float32Array).set(p.data as Float32Array, off);
    off += p.data.length;
  }
  return { datatype: first.datatype, dims, data: out };
}

/** Splits a tensor along the batch dimension into pieces of the given sizes. */
export function splitBatch(t: HostTensor, sizes: number[]): HostTensor[] {
  const inner = elementCount(t.dims.slice(1));
  let off = 0;
  return sizes.map((b) => {
    const dims = [b, ...t.dims.slice(1)];
    const data = (t.data as Float32Array).slice(off * inner, (off + b) * inner);
    off += b;
    return { datatype: t.datatype, dims, data };
  });
}
