import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";

/** IR version and default-domain opset of every model written here. */
export const ONNX_IR_VERSION = 8;
export const ONNX_OPSET = 17;

/** Path of the onnx.proto subset (ONNX's field numbers) shipped with this package. */
export const ONNX_PROTO_PATH = fileURLToPath(new URL("../proto/onnx.proto", import.meta.url));

let root: protobuf.Root | undefined;
function onnxRoot(): protobuf.Root {
  root ??= protobuf.parse(readFileSync(ONNX_PROTO_PATH, "utf8"), { keepCase: true }).root;
  return root;
}
function modelType(): protobuf.Type {
  return onnxRoot().lookupType("onnx.ModelProto");
}

/** ONNX TensorProto.DataType codes. */
export const OnnxDataType = {
  FLOAT: 1,
  UINT8: 2,
  INT8: 3,
  UINT16: 4,
  INT16: 5,
  INT32: 6,
  INT64: 7,
  STRING: 8,
  BOOL: 9,
  FLOAT16: 10,
  DOUBLE: 11,
  UINT32: 12,
  UINT64: 13,
} as const;

/** ONNX element type ↔ Triton config data type (TYPE_*). */
const ONNX_TO_TRITON: Record<number, string> = {
  1: "TYPE_FP32",
  2: "TYPE_UINT8",
  3: "TYPE_INT8",
  4: "TYPE_UINT16",
  5: "TYPE_INT16",
  6: "TYPE_INT32",
  7: "TYPE_INT64",
  8: "TYPE_STRING",
  9: "TYPE_BOOL",
  10: "TYPE_FP16",
  11: "TYPE_FP64",
  12: "TYPE_UINT32",
  13: "TYPE_UINT64",
};

export type ElemType = "float32" | "float64" | "int32" | "int64" | "bool" | "uint8" | "int8";
const ELEM_CODE: Record<ElemType, number> = {
  float32: 1,
  float64: 11,
  int32: 6,
  int64: 7,
  bool: 9,
  uint8: 2,
  int8: 3,
};

/** A dimension: a size, or a symbolic name (dynamic, e.g. "batch"). */
export type Dim = number | string;

/** Attribute values; floats must be wrapped with `float()` so 1.0 is not taken for an INT. */
export type AttrValue = number | number[] | string | FloatAttr | FloatsAttr;
export interface FloatAttr {
  readonly kind: "float";
  readonly value: number;
}
export interface FloatsAttr {
  readonly kind: "floats";
  readonly value: number[];
}
export const float = (value: number): FloatAttr => ({ kind: "float", value });
export const floats = (value: number[]): FloatsAttr => ({ kind: "floats", value });

type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

function tensorProto(name: string, dims: number[], data: TensorData, elem: ElemType): Record<string, unknown> {
  const size = dims.reduce((a, b) => a * b, 1);
  if (size !== data.length) {
    throw new Error(`initializer ${name}: ${data.length} values for shape [${dims.join(", ")}] (expected ${size})`);
  }
  // raw_data is little-endian; typed arrays are little-endian on every platform Node runs on here.
  const raw = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return { name, dims, data_type: ELEM_CODE[elem], raw_data: Uint8Array.from(raw) };
}

function valueInfo(name: string, elem: ElemType, shape: Dim[]): Record<string, unknown> {
  return {
    name,
    type: {
      tensor_type: {
        elem_type: ELEM_CODE[elem],
        shape: { dim: shape.map((d) => (typeof d === "number" ? { dim_value: d } : { dim_param: d })) },
      },
    },
  };
}

function attribute(name: string, v: AttrValue): Record<string, unknown> {
  if (typeof v === "string") return { name, type: 3, s: Buffer.from(v, "utf8") };
  if (typeof v === "number") {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer; wrap floats with float()`);
    return { name, type: 2, i: v };
  }
  if (Array.isArray(v)) {
    if (!v.every(Number.isInteger)) throw new Error(`attribute ${name}: not all integers; wrap with floats()`);
    return { name, type: 7, ints: v };
  }
  if (v.kind === "float") return { name, type: 1, f: v.value };
  return { name, type: 6, floats: v.value };
}

/**
 * Builds one ONNX graph: inputs, constant initializers, nodes and outputs,
 * then serialises a ModelProto. Names of intermediate values are generated.
 */
export class GraphBuilder {
  private readonly nodes: Record<string, unknown>[] = [];
  private readonly initializers: Record<string, unknown>[] = [];
  private readonly inputs: Record<string, unknown>[] = [];
  private readonly outputs: Record<string, unknown>[] = [];
  private counter = 0;

  constructor(readonly name: string) {}

  input(name: string, elem: ElemType, shape: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, shape));
    return name;
  }

  output(value: string, name: string, elem: ElemType, shape: Dim[]): void {
    // Rename the last producer's output so the graph output carries the public name.
    const producer = this.nodes.find((n) => (n.output as string[]).includes(value));
    if (producer && value !== name) {
      producer.output = (producer.output as string[]).map((o) => (o === value ? name : o));
      for (const n of this.nodes) n.input = (n.input as string[]).map((i) => (i === value ? name : i));
    } else if (!producer && value !== name) {
      this.node("Identity", [value], {}, name);
    }
    this.outputs.push(valueInfo(name, elem, shape));
  }

  constant(data: TensorData, dims: number[], elem?: ElemType, name?: string): string {
    const n = name ?? `const_${this.counter++}`;
    const e = elem ?? inferElem(data);
    this.initializers.push(tensorProto(n, dims, data, e));
    return n;
  }

  int64s(values: number[], name?: string): string {
    return this.constant(BigInt64Array.from(values.map(BigInt)), [values.length], "int64", name);
  }

  node(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, outputName?: string): string {
    const out = outputName ?? `${opType.toLowerCase()}_${this.counter++}`;
    this.nodes.push({
      op_type: opType,
      name: `${opType}_${this.nodes.length}`,
      input: inputs,
      output: [out],
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Serialised ModelProto bytes (IR 8, opset 17). */
  toBytes(docString = ""): Uint8Array {
    const T = modelType();
    const model = {
      ir_version: ONNX_IR_VERSION,
      opset_import: [{ domain: "", version: ONNX_OPSET }],
      producer_name: "timeslide",
      producer_version: "0.1.0",
      doc_string: docString,
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const err = T.verify(model);
    if (err) throw new Error(`ONNX model ${this.name}: ${err}`);
    return T.encode(T.fromObject(model)).finish();
  }
}

function inferElem(data: TensorData): ElemType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int8Array) return "int8";
  return "uint8";
}

/** One graph input or output as Triton's config describes it. */
export interface TensorSignature {
  name: string;
  /** Triton config data type, e.g. TYPE_FP32. */
  data_type: string;
  /** Full shape; -1 for a dynamic (symbolic or missing) dimension. */
  dims: number[];
}

export interface OnnxSignature {
  irVersion: number;
  opset: number;
  inputs: TensorSignature[];
  outputs: TensorSignature[];
}

/** Reads input/output names, types and shapes from an ONNX file's bytes. */
export function readOnnxSignature(bytes: Uint8Array, file = "<onnx>"): OnnxSignature {
  const T = modelType();
  let m: Record<string, any>;
  try {
    m = T.toObject(T.decode(bytes), { longs: Number, defaults: false, arrays: true }) as Record<string, any>;
  } catch (e) {
    throw new Error(`${file}: not an ONNX ModelProto (${(e as Error).message})`);
  }
  if (!m.graph) throw new Error(`${file}: ModelProto has no graph`);
  const initializerNames = new Set<string>((m.graph.initializer ?? []).map((t: { name: string }) => t.name));
  const sig = (v: Record<string, any>): TensorSignature => {
    const tt = v.type?.tensor_type;
    if (!tt) throw new Error(`${file}: graph value ${v.name} is not a tensor`);
    const dt = ONNX_TO_TRITON[tt.elem_type as number];
    if (!dt) throw new Error(`${file}: graph value ${v.name} has unsupported element type ${tt.elem_type}`);
    const dims = (tt.shape?.dim ?? []).map((d: Record<string, unknown>) =>
      typeof d.dim_value === "number" && d.dim_value > 0 ? d.dim_value : -1,
    );
    return { name: v.name, data_type: dt, dims };
  };
  const defaultOpset = (m.opset_import ?? []).find((o: { domain?: string }) => !o.domain);
  return {
    irVersion: m.ir_version ?? 0,
    opset: defaultOpset?.version ?? 0,
    inputs: (m.graph.input ?? []).filter((v: { name: string }) => !initializerNames.has(v.name)).map(sig),
    outputs: (m.graph.output ?? []).map(sig),
  };
}
