// Tensors inside the server, as @timeslide/kserve decodes them for ONNX
// Runtime (RUNTIME_DECODE: FP16 as raw half bits, BYTES as strings, each in
// a buffer of its own), and the batch operations the scheduler needs.
import { elementCount, emptyTensorData, RUNTIME_DECODE, type Tensor } from "@timeslide/kserve";

/** A tensor without its name (tensors travel in maps keyed by name). */
export type HostTensor = Omit<Tensor, "name">;
type Elements = Float32Array | string[];

/** A zero-filled tensor (initial implicit state). */
export function zeros(datatype: HostTensor["datatype"], shape: number[]): HostTensor {
  return { datatype, shape, data: emptyTensorData(datatype, elementCount(shape), RUNTIME_DECODE) };
}

/** A one-element tensor of `value` (control inputs). */
export function scalar(datatype: HostTensor["datatype"], shape: number[], value: number | bigint | boolean | string): HostTensor {
  const t = zeros(datatype, shape);
  const d = t.data;
  if (datatype === "BYTES") (d as string[])[0] = String(value);
  else if (datatype === "INT64" || datatype === "UINT64") (d as BigInt64Array)[0] = BigInt(value as number);
  else (d as Float32Array)[0] = Number(value);
  return t;
}

/** A copy with its own buffer (a tensor read twice: inputs move to worker threads). */
export function cloneTensor(t: HostTensor): HostTensor {
  return { datatype: t.datatype, shape: [...t.shape], data: (t.data as Elements).slice() as HostTensor["data"] };
}

/** Concatenates tensors along the batch (first) dimension. */
export function concatBatch(parts: HostTensor[]): HostTensor {
  const first = parts[0];
  const shape = [parts.reduce((a, p) => a + p.shape[0], 0), ...first.shape.slice(1)];
  if (first.datatype === "BYTES") return { datatype: "BYTES", shape, data: parts.flatMap((p) => p.data as string[]) };
  const out = emptyTensorData(first.datatype, elementCount(shape), RUNTIME_DECODE) as Float32Array;
  let off = 0;
  for (const p of parts) {
    out.set(p.data as Float32Array, off);
    off += (p.data as Float32Array).length;
  }
  return { datatype: first.datatype, shape, data: out };
}

/** Splits a tensor along the batch dimension into pieces of the given sizes. */
export function splitBatch(t: HostTensor, sizes: number[]): HostTensor[] {
  const inner = elementCount(t.shape.slice(1));
  let off = 0;
  return sizes.map((b) => {
    const data = (t.data as Elements).slice(off * inner, (off + b) * inner) as HostTensor["data"];
    off += b;
    return { datatype: t.datatype, shape: [b, ...t.shape.slice(1)], data };
  });
}
