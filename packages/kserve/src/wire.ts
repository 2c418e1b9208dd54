// Server-side counterparts of buildInferRequest / parseInferResponse:
// decode a received ModelInferRequest, encode a ModelInferResponse.
import type { ModelInferRequest__Output } from "./generated/inference/ModelInferRequest.js";
import type { ModelInferResponse } from "./generated/inference/ModelInferResponse.js";
import type { InferParameter } from "./generated/inference/InferParameter.js";
import { decodeTensor, tensorToRaw, TensorError, type DecodeOptions, type DecodedTensor, type Tensor } from "./tensors.js";
import { fromInferParameters, ParameterError, readSequenceParameters, reservedParameterProblem, toInferParameter, type ParamValue, type ReceivedSequenceFlags } from "./params.js";

export interface ParsedInferRequest {
  model: string;
  version: string;
  id: string;
  parameters: Record<string, ParamValue>;
  inputs: DecodedTensor[];
  /** Requested output names; empty = all. */
  outputs: string[];
  sequence?: ReceivedSequenceFlags;
  /** Server-side "timeout" parameter in µs, when given. */
  timeoutUs?: number;
}

/**
 * Received request -> decoded inputs (raw or typed contents), checked against
 * their shapes (TensorError) and named once each. A reserved "triton_"
 * parameter key is refused as Triton refuses it, and so is a sequence_id
 * that is neither an integer nor a string (ParameterError). Both mean
 * INVALID_ARGUMENT. `decode` as for decodeTensor (a server running ONNX
 * Runtime passes RUNTIME_DECODE).
 */
export function parseInferRequest(req: ModelInferRequest__Output, decode: DecodeOptions = {}): ParsedInferRequest {
  for (const [k, p] of Object.entries(req.parameters ?? {})) {
    const problem = reservedParameterProblem(k, p);
    if (problem) throw new ParameterError(problem);
  }
  const raws = req.raw_input_contents ?? [];
  if (raws.length > 0 && raws.length !== req.inputs.length) {
    throw new TensorError(
      `request to model "${req.model_name}": ${req.inputs.length} inputs but ${raws.length} raw_input_contents entries (one per input, in order)`,
    );
  }
  const seen = new Set<string>();
  for (const t of req.inputs) {
    if (seen.has(t.name)) throw new TensorError(`input '${t.name}' is given more than once`);
    seen.add(t.name);
  }
  const parameters = fromInferParameters(req.parameters);
  const timeout = parameters.timeout;
  return {
    model: req.model_name,
    version: req.model_version,
    id: req.id,
    parameters,
    inputs: req.inputs.map((t, i) => decodeTensor(t, raws.length ? raws[i] : undefined, { role: "input", ...decode })),
    outputs: req.outputs.map((o) => o.name),
    sequence: readSequenceParameters(req.parameters),
    timeoutUs: typeof timeout === "number" || typeof timeout === "bigint" ? Number(timeout) : undefined,
  };
}

/** Outputs -> response message with raw_output_contents (Triton's default on gRPC). */
export function buildInferResponse(res: {
  model: string;
  version: string;
  id?: string;
  outputs: Tensor[];
  parameters?: Record<string, ParamValue>;
}): ModelInferResponse {
  const parameters: Record<string, InferParameter> = {};
  for (const [k, v] of Object.entries(res.parameters ?? {})) parameters[k] = toInferParameter(v, k, { allowDouble: true, allowUint64: true });
  return {
    model_name: res.model,
    model_version: res.version,
    id: res.id ?? "",
    parameters,
    outputs: res.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    raw_output_contents: res.outputs.map((t) => tensorToRaw(t)),
  };
}
