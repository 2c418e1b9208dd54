// Tensors <-> KServe v2 raw contents: little-endian, row-major, no padding.
// BYTES elements are each a 4-byte little-endian length followed by the
// bytes (Triton's layout). FP16 travels as raw IEEE half bits; here it is
// given as Float32Array or Uint16Array of raw bits, and decoded as
// Float32Array, or as the raw bits and BYTES as strings for a runtime that
// takes them so (ONNX Runtime: `RUNTIME_DECODE`).
import { endianness } from "node:os";
import type { InferTensorContents__Output } from "./generated/inference/InferTensorContents.js";

export const DATATYPES = [
  "BOOL",
  "UINT8",
  "UINT16",
  "UINT32",
  "UINT64",
  "INT8",
  "INT16",
  "INT32",
  "INT64",
  "FP16",
  "FP32",
  "FP64",
  "BYTES",
] as const;
export type Datatype = (typeof DATATYPES)[number];

/** JS representation of each datatype's elements. */
export interface TensorDataMap {
  BOOL: Uint8Array | boolean[];
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Float32Array | Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: Array<Uint8Array | string>;
}
export type TensorData = TensorDataMap[Datatype];

export interface Tensor<D extends Datatype = Datatype> {
  name: string;
  datatype: D;
  shape: number[];
  data: TensorDataMap[D];
}

/** What decoding returns: one concrete type per datatype. */
export interface DecodedDataMap {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Float32Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: Buffer[];
}

/**
 * How to decode. The defaults suit a client reading answers; a server that
 * hands tensors to ONNX Runtime asks for `RUNTIME_DECODE`.
 */
export interface DecodeOptions {
  /** FP16 as a Uint16Array of the raw half bits (ONNX Runtime's float16) instead of Float32Array. */
  fp16Bits?: boolean;
  /** BYTES elements as UTF-8 strings (ONNX Runtime's string tensors) instead of Buffers. */
  bytesAsStrings?: boolean;
  /**
   * Numeric data always in a fresh buffer of its own (never a view on the
   * message), so it can be moved to a worker thread and outlive the message.
   */
  copy?: boolean;
  /** What the tensor is, in messages: "input" (a request's), "output"; default "tensor". */
  role?: string;
}

/** Decoding for ONNX Runtime: FP16 as raw bits, BYTES as strings, own buffers. */
export const RUNTIME_DECODE: Readonly<DecodeOptions> = Object.freeze({ fp16Bits: true, bytesAsStrings: true, copy: true });

export class TensorError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TensorError";
  }
}

const BYTE_SIZE: Record<Exclude<Datatype, "BYTES">, number> = {
  BOOL: 1,
  UINT8: 1,
  UINT16: 2,
  UINT32: 4,
  UINT64: 8,
  INT8: 1,
  INT16: 2,
  INT32: 4,
  INT64: 8,
  FP16: 2,
  FP32: 4,
  FP64: 8,
};

/** Bytes per element; undefined for BYTES (variable length). */
export function dtypeByteSize(datatype: Datatype): number | undefined {
  return datatype === "BYTES" ? undefined : BYTE_SIZE[datatype];
}

export function isDatatype(value: string): value is Datatype {
  return (DATATYPES as readonly string[]).includes(value);
}

export function assertDatatype(value: string, where = "tensor"): Datatype {
  if (!isDatatype(value)) {
    throw new TensorError(`${where}: unknown datatype "${value}", expected one of ${DATATYPES.join(", ")}`);
  }
  return value;
}

/** Model-config enum name (TYPE_FP32, TYPE_STRING) -> KServe datatype (FP32, BYTES). */
export function fromConfigDataType(configType: string): Datatype {
  if (configType === "TYPE_STRING") return "BYTES";
  const name = configType.startsWith("TYPE_") ? configType.slice(5) : configType;
  return assertDatatype(name, `config data_type ${configType}`);
}

/** KServe datatype -> model-config enum name. */
export function toConfigDataType(datatype: Datatype): string {
  return datatype === "BYTES" ? "TYPE_STRING" : `TYPE_${datatype}`;
}

/** KServe datatype -> onnxruntime tensor type name. */
export function toOrtType(datatype: Datatype): string {
  switch (datatype) {
    case "BOOL":
      return "bool";
    case "BYTES":
      return "string";
    case "FP16":
      return "float16";
    case "FP32":
      return "float32";
    case "FP64":
      return "float64";
    default:
      return datatype.toLowerCase();
  }
}

/** onnxruntime tensor type name -> KServe datatype (the inverse of toOrtType). */
export function fromOrtType(ortType: string): Datatype {
  const d = DATATYPES.find((t) => toOrtType(t) === ortType);
  if (!d) throw new TensorError(`onnxruntime tensor type "${ortType}" has no KServe datatype`);
  return d;
}

/** Shape from the wire (int64 as string or number) to numbers, checked. */
export function toShape(shape: ReadonlyArray<string | number | bigint>, where = "tensor"): number[] {
  return shape.map((d, i) => {
    const n = Number(d);
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new TensorError(`${where}: shape[${i}] = ${String(d)} is not a non-negative integer`);
    }
    return n;
  });
}

export function elementCount(shape: readonly number[], where = "tensor"): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i];
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new TensorError(`${where}: shape[${i}] = ${d} is not a non-negative integer`);
    }
    n *= d;
  }
  return n;
}

const LITTLE_ENDIAN = endianness() === "LE";

// ---- FP16 ---------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float -> IEEE 754 half bits, round to nearest even; overflow -> inf. */
export function float32ToFloat16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0); // inf / NaN
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign; // underflows to signed zero
    mant |= 0x800000; // subnormal half: shift in the implicit bit
    const shift = 14 - e;
    const half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    return sign | (half + (rem > mid || (rem === mid && (half & 1)) ? 1 : 0));
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (half & 1))) half += 1; // may carry into exponent: still correct
  return sign | half;
}

export function float16BitsToFloat32(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >>> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// ---- encode -------------------------------------------------------------

function viewBytes(a: ArrayBufferView): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

function checkCount(where: string, datatype: Datatype, got: number, shape: readonly number[]): void {
  const want = elementCount(shape, where);
  if (got !== want) {
    throw new TensorError(
      `${where}: ${datatype} data has ${got} elements but shape [${shape.join(", ")}] needs ${want}`,
    );
  }
}

function expectArray<T>(where: string, datatype: Datatype, data: unknown, ctor: new (...a: never[]) => T, hint: string): T {
  if (!(data instanceof ctor)) {
    throw new TensorError(`${where}: ${datatype} data must be a ${hint}, got ${describe(data)}`);
  }
  return data;
}

function describe(x: unknown): string {
  if (x === null || x === undefined) return String(x);
  if (Array.isArray(x)) return "Array";
  return (x as object).constructor?.name ?? typeof x;
}

function numericToLE(a: ArrayBufferView & { length: number }, size: number): Buffer {
  if (LITTLE_ENDIAN || size === 1) return viewBytes(a);
  const out = Buffer.alloc(a.byteLength);
  const src = new DataView(a.buffer, a.byteOffset, a.byteLength);
  for (let i = 0; i < a.byteLength; i += size) {
    for (let b = 0; b < size; b++) out[i + b] = src.getUint8(i + size - 1 - b);
  }
  return out;
}

/**
 * Tensor data -> raw contents bytes (little-endian, row-major). The result
 * may share memory with `data` (no copy on little-endian hosts).
 */
export function tensorToRaw(tensor: Tensor): Buffer {
  const { datatype, shape, data } = tensor;
  const where = `tensor "${tensor.name}"`;
  assertDatatype(datatype, where);
  switch (datatype) {
    case "BOOL": {
      if (Array.isArray(data)) {
        checkCount(where, datatype, data.length, shape);
        const out = Buffer.alloc(data.length);
        data.forEach((v, i) => (out[i] = v ? 1 : 0));
        return out;
      }
      const a = expectArray(where, datatype, data, Uint8Array, "Uint8Array or boolean[]");
      checkCount(where, datatype, a.length, shape);
      for (let i = 0; i < a.length; i++) {
        if (a[i] > 1) throw new TensorError(`${where}: BOOL element ${i} is ${a[i]}, expected 0 or 1`);
      }
      return viewBytes(a);
    }
    case "FP16": {
      if (data instanceof Uint16Array) {
        checkCount(where, datatype, data.length, shape);
        return numericToLE(data, 2);
      }
      const a = expectArray(where, datatype, data, Float32Array, "Float32Array or Uint16Array of half bits");
      checkCount(where, datatype, a.length, shape);
      const out = Buffer.alloc(a.length * 2);
      for (let i = 0; i < a.length; i++) out.writeUInt16LE(float32ToFloat16Bits(a[i]), i * 2);
      return out;
    }
    case "BYTES": {
      if (!Array.isArray(data)) {
        throw new TensorError(`${where}: BYTES data must be an array of strings or Uint8Arrays, got ${describe(data)}`);
      }
      checkCount(where, datatype, data.length, shape);
      const parts: Buffer[] = [];
      for (let i = 0; i < data.length; i++) {
        const el = data[i];
        const bytes = typeof el === "string" ? Buffer.from(el, "utf8") : el instanceof Uint8Array ? viewBytes(el) : undefined;
        if (!bytes) throw new TensorError(`${where}: BYTES element ${i} is ${describe(el)}, expected string or Uint8Array`);
        const len = Buffer.alloc(4);
        len.writeUInt32LE(bytes.length, 0);
        parts.push(len, bytes);
      }
      return Buffer.concat(parts);
    }
    default: {
      const ctor = TYPED_CTOR[datatype];
      const a = expectArray(where, datatype, data, ctor as never, ctor.name) as unknown as ArrayBufferView & { length: number };
      checkCount(where, datatype, a.length, shape);
      return numericToLE(a, BYTE_SIZE[datatype]);
    }
  }
}

type NumericDatatype = Exclude<Datatype, "BOOL" | "FP16" | "BYTES">;
type TypedCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView & { length: number };
  new (length: number): ArrayBufferView & { length: number };
  readonly name: string;
};
const TYPED_CTOR: Record<NumericDatatype, TypedCtor> = {
  UINT8: Uint8Array,
  UINT16: Uint16Array,
  UINT32: Uint32Array,
  UINT64: BigUint64Array,
  INT8: Int8Array,
  INT16: Int16Array,
  INT32: Int32Array,
  INT64: BigInt64Array,
  FP32: Float32Array,
  FP64: Float64Array,
};

// ---- decode -------------------------------------------------------------

/** Zero-filled data for `count` elements, in the representation `options` decode to (initial state, padding). */
export function emptyTensorData(datatype: Datatype, count: number, options: DecodeOptions = {}): TensorData {
  switch (datatype) {
    case "BYTES":
      return options.bytesAsStrings ? new Array<string>(count).fill("") : Array.from({ length: count }, () => Buffer.alloc(0));
    case "BOOL":
      return new Uint8Array(count);
    case "FP16":
      return options.fp16Bits ? new Uint16Array(count) : new Float32Array(count);
    default:
      return new TYPED_CTOR[datatype](count) as TensorData;
  }
}

/**
 * Raw contents bytes -> typed data, checked against the shape (Triton's
 * wording). Numeric results are views on `raw` when its offset is aligned
 * (no copy) unless `options.copy`, otherwise an aligned copy.
 */
export function rawToTensorData<D extends Datatype>(
  datatype: D,
  shape: readonly number[],
  raw: Uint8Array,
  name = "",
  options: DecodeOptions = {},
): DecodedDataMap[D] {
  const role = options.role ?? "tensor";
  const where = `${role} '${name}'`;
  assertDatatype(datatype, where);
  const count = elementCount(shape, where);
  if (datatype === "BYTES") {
    const out: Array<Buffer | string> = [];
    const buf = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
    let off = 0;
    while (off < buf.length) {
      if (off + 4 > buf.length) throw new TensorError(`${where}: BYTES element ${out.length} length prefix is truncated`);
      const len = buf.readUInt32LE(off);
      off += 4;
      if (off + len > buf.length) {
        throw new TensorError(`${where}: BYTES element ${out.length} claims ${len} bytes but only ${buf.length - off} remain (truncated)`);
      }
      const el = buf.subarray(off, off + len);
      out.push(options.bytesAsStrings ? el.toString("utf8") : options.copy ? Buffer.from(el) : el);
      off += len;
    }
    if (out.length !== count) {
      throw new TensorError(
        `unexpected number of string elements ${out.length} for ${where}, expecting ${count} for shape [${shape.join(",")}]`,
      );
    }
    return out as DecodedDataMap[D];
  }
  const size = BYTE_SIZE[datatype as Exclude<Datatype, "BYTES">];
  if (raw.byteLength !== count * size) {
    throw new TensorError(
      `unexpected total byte size ${raw.byteLength} for ${where}, expecting ${count * size} for shape [${shape.join(",")}] of ${datatype} (${count} × ${size} bytes)`,
    );
  }
  if (datatype === "FP16" && !options.fp16Bits) {
    const out = new Float32Array(count);
    const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    for (let i = 0; i < count; i++) out[i] = float16BitsToFloat32(dv.getUint16(i * 2, true));
    return out as DecodedDataMap[D];
  }
  const ctor = datatype === "BOOL" ? Uint8Array : datatype === "FP16" ? Uint16Array : TYPED_CTOR[datatype as NumericDatatype];
  let result: ArrayBufferView & { length: number };
  if (LITTLE_ENDIAN || size === 1) {
    if (!options.copy && raw.byteOffset % size === 0) {
      result = new ctor(raw.buffer, raw.byteOffset, count);
    } else {
      const copy = new Uint8Array(raw.byteLength);
      copy.set(raw);
      result = new ctor(copy.buffer, 0, count);
    }
  } else {
    const copy = new Uint8Array(raw.byteLength);
    for (let i = 0; i < raw.byteLength; i += size) {
      for (let b = 0; b < size; b++) copy[i + b] = raw[i + size - 1 - b];
    }
    result = new ctor(copy.buffer, 0, count);
  }
  return result as unknown as DecodedDataMap[D];
}

/** Typed `contents` (used when a peer does not send raw) -> typed data. */
export function contentsToTensorData<D extends Datatype>(
  datatype: D,
  shape: readonly number[],
  contents: InferTensorContents__Output,
  name = "",
  options: DecodeOptions = {},
): DecodedDataMap[D] {
  const where = `${options.role ?? "tensor"} '${name}'`;
  const count = elementCount(shape, where);
  const check = (n: number, field: string) => {
    if (n !== count) {
      throw new TensorError(
        `unexpected number of elements ${n} in contents.${field} of ${where}, expecting ${count} for shape [${shape.join(",")}]`,
      );
    }
  };
  let out: unknown;
  switch (datatype) {
    case "BOOL":
      check(contents.bool_contents.length, "bool_contents");
      out = Uint8Array.from(contents.bool_contents, (b) => (b ? 1 : 0));
      break;
    case "INT8":
    case "INT16":
    case "INT32": {
      check(contents.int_contents.length, "int_contents");
      const C = TYPED_CTOR[datatype as NumericDatatype] as unknown as { from(a: number[]): unknown };
      out = C.from(contents.int_contents);
      break;
    }
    case "UINT8":
    case "UINT16":
    case "UINT32": {
      check(contents.uint_contents.length, "uint_contents");
      const C = TYPED_CTOR[datatype as NumericDatatype] as unknown as { from(a: number[]): unknown };
      out = C.from(contents.uint_contents);
      break;
    }
    case "INT64":
      check(contents.int64_contents.length, "int64_contents");
      out = BigInt64Array.from(contents.int64_contents, (v) => BigInt(v));
      break;
    case "UINT64":
      check(contents.uint64_contents.length, "uint64_contents");
      out = BigUint64Array.from(contents.uint64_contents, (v) => BigInt(v));
      break;
    case "FP32":
      check(contents.fp32_contents.length, "fp32_contents");
      out = Float32Array.from(contents.fp32_contents);
      break;
    case "FP64":
      check(contents.fp64_contents.length, "fp64_contents");
      out = Float64Array.from(contents.fp64_contents);
      break;
    case "BYTES":
      check(contents.bytes_contents.length, "bytes_contents");
      out = contents.bytes_contents.map((b) => (options.bytesAsStrings ? Buffer.from(b).toString("utf8") : Buffer.from(b)));
      break;
    case "FP16":
      throw new TensorError(`${where}: FP16 has no typed contents field; it must travel in raw contents`);
    default:
      throw new TensorError(`${where}: unknown datatype ${String(datatype)}`);
  }
  return out as DecodedDataMap[D];
}

export interface DecodedTensor<D extends Datatype = Datatype> {
  name: string;
  datatype: D;
  shape: number[];
  data: DecodedDataMap[D];
}

/**
 * A received tensor header + its raw bytes (or typed contents) -> decoded
 * tensor. With `options` other than the defaults (e.g. RUNTIME_DECODE),
 * FP16 and BYTES data are as the options say, not as `DecodedDataMap`.
 */
export function decodeTensor(
  header: { name: string; datatype: string; shape: ReadonlyArray<string | number>; contents?: InferTensorContents__Output | null },
  raw: Uint8Array | undefined,
  options: DecodeOptions = {},
): DecodedTensor {
  const where = `${options.role ?? "tensor"} '${header.name}'`;
  const datatype = assertDatatype(header.datatype, where);
  const shape = toShape(header.shape, where);
  const data = raw
    ? rawToTensorData(datatype, shape, raw, header.name, options)
    : header.contents
      ? contentsToTensorData(datatype, shape, header.contents, header.name, options)
      : (() => {
          throw new TensorError(`${where}: neither raw contents nor typed contents were sent`);
        })();
  return { name: header.name, datatype, shape, data };
}
