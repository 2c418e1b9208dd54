// InferParameter maps <-> plain values, and the sequence parameters that
// Triton's sequence batcher reads (sequence_id / sequence_start /
// sequence_end) plus the server-side "timeout" (microseconds).
import type { InferParameter, InferParameter__Output } from "./generated/inference/InferParameter.js";

export type ParamValue = boolean | number | bigint | string;

export class ParameterError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ParameterError";
  }
}

/**
 * Request parameter keys starting with "triton_" are Triton's: it refuses
 * them with INVALID_ARGUMENT, except these (current Triton; older releases
 * refuse every one).
 */
export const TRITON_RESERVED_REQUEST_PARAMS: readonly string[] = ["triton_enable_empty_final_response"];

/**
 * Why Triton would refuse request parameter `key` (a "triton_" key it does
 * not know, or a known one of the wrong type); undefined when it accepts it.
 * The wording is Triton's (grpc infer_handler).
 */
export function reservedParameterProblem(key: string, p: InferParameter | InferParameter__Output): string | undefined {
  if (!key.startsWith("triton_")) return undefined;
  if (!TRITON_RESERVED_REQUEST_PARAMS.includes(key)) {
    return `parameter keys starting with 'triton_' are reserved for Triton usage. Only the following keys starting with 'triton_' are allowed: ${TRITON_RESERVED_REQUEST_PARAMS.join(" ")}`;
  }
  const choice = (p as InferParameter__Output).parameter_choice ?? (p.bool_param !== undefined ? "bool_param" : undefined);
  if (choice !== "bool_param") return `invalid value type for '${key}' parameter, expected bool_param.`;
  return undefined;
}

export interface ToParameterOptions {
  /**
   * Send non-integer numbers as double_param. Off for requests: Triton
   * releases before 2024 (server PR #6755) refuse double_param in request
   * parameters ("expected int64_param, bool_param, or string_param"), so the
   * client refuses such a value and names the way out (a string). On for
   * responses, which only our own decoder reads.
   */
  allowDouble?: boolean;
  /** Send a bigint in [2^63, 2^64) as uint64_param (responses: a uint64 sequence id echoed back). */
  allowUint64?: boolean;
}

/**
 * One plain value -> InferParameter: booleans to bool_param, strings to
 * string_param, integers (number or bigint, int64 range) to int64_param.
 * A non-integer number is refused (ParameterError) unless `allowDouble`.
 */
export function toInferParameter(value: ParamValue, key = "parameter", options: ToParameterOptions = {}): InferParameter {
  switch (typeof value) {
    case "boolean":
      return { bool_param: value };
    case "string":
      return { string_param: value };
    case "bigint":
      if (options.allowUint64 && value >= 2n ** 63n && value < 2n ** 64n) return { uint64_param: value.toString() };
      if (value < -(2n ** 63n) || value >= 2n ** 63n) throw new ParameterError(`${key}: ${value} does not fit int64`);
      return { int64_param: value.toString() };
    case "number":
      if (!Number.isFinite(value)) throw new ParameterError(`${key}: ${value} is not a finite number`);
      if (Number.isInteger(value)) {
        if (!Number.isSafeInteger(value)) throw new ParameterError(`${key}: ${value} is beyond 2^53; pass a bigint`);
        return { int64_param: value };
      }
      if (options.allowDouble) return { double_param: value };
      throw new ParameterError(
        `${key}: ${value} is not an integer; Triton takes int64, bool and string parameters (double_param is refused by releases before 2024), so send it as a string, e.g. "${value}"`,
      );
    default:
      throw new ParameterError(`${key}: unsupported parameter type ${typeof value}`);
  }
}

/**
 * Plain values -> request parameters as Triton accepts them: no
 * double_param (see toInferParameter) and no reserved "triton_" keys but
 * the ones Triton allows (TRITON_RESERVED_REQUEST_PARAMS).
 */
export function toInferParameters(values: Record<string, ParamValue | undefined>, options: ToParameterOptions = {}): Record<string, InferParameter> {
  const out: Record<string, InferParameter> = {};
  for (const [k, v] of Object.entries(values)) {
    if (v === undefined) continue;
    const p = toInferParameter(v, k, options);
    const problem = reservedParameterProblem(k, p);
    if (problem) throw new ParameterError(`request parameter "${k}": ${problem}`);
    out[k] = p;
  }
  return out;
}

/**
 * Received InferParameter -> plain value. int64/uint64 become a number when
 * exactly representable, otherwise a bigint.
 */
export function fromInferParameter(p: InferParameter__Output | InferParameter): ParamValue | undefined {
  const choice = (p as InferParameter__Output).parameter_choice;
  const pick = choice ?? (Object.keys(p).find((k) => k.endsWith("_param") && (p as Record<string, unknown>)[k] !== undefined) as typeof choice);
  switch (pick) {
    case "bool_param":
      return Boolean(p.bool_param);
    case "string_param":
      return String(p.string_param);
    case "double_param":
      return Number(p.double_param);
    case "int64_param":
    case "uint64_param": {
      const raw = p[pick] as unknown;
      const big = BigInt(typeof raw === "object" && raw !== null ? String(raw) : (raw as string | number));
      const n = Number(big);
      return Number.isSafeInteger(n) ? n : big;
    }
    default:
      return undefined;
  }
}

export function fromInferParameters(
  params: Record<string, InferParameter__Output | InferParameter> | undefined | null,
): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [k, p] of Object.entries(params ?? {})) {
    const v = fromInferParameter(p);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Triton correlation id: unsigned 64-bit integer or a string. */
export type SequenceId = number | bigint | string;

export interface SequenceFlags {
  id: SequenceId;
  start?: boolean;
  end?: boolean;
}

/** Sequence flags as a server reads them from a request (both flags decided). */
export type ReceivedSequenceFlags = Required<SequenceFlags>;

/** Sequence flags -> request parameters, checked (ids must be non-zero: 0 means "no sequence" to Triton). */
export function sequenceParameters(seq: SequenceFlags): Record<string, InferParameter> {
  const { id } = seq;
  let idParam: InferParameter;
  if (typeof id === "string") {
    if (id === "") throw new ParameterError("sequence_id: empty string is not a sequence id");
    idParam = { string_param: id };
  } else {
    const big = BigInt(id);
    if (typeof id === "number" && !Number.isSafeInteger(id)) throw new ParameterError(`sequence_id: ${id} is not a safe integer; pass a bigint`);
    if (big <= 0n || big >= 2n ** 63n) throw new ParameterError(`sequence_id: ${id} must be in [1, 2^63)`);
    idParam = { int64_param: big.toString() };
  }
  return {
    sequence_id: idParam,
    sequence_start: { bool_param: Boolean(seq.start) },
    sequence_end: { bool_param: Boolean(seq.end) },
  };
}

/**
 * Reads sequence flags from received request parameters (server side);
 * undefined when there is no id or it is 0 / "" (Triton: no sequence). An
 * id that is neither an integer nor a string is refused (ParameterError).
 */
export function readSequenceParameters(
  params: Record<string, InferParameter__Output> | undefined | null,
): ReceivedSequenceFlags | undefined {
  const p = params ?? {};
  const idp = p.sequence_id;
  if (!idp) return undefined;
  const id = fromInferParameter(idp);
  if (id === undefined || id === 0 || id === "") return undefined;
  if (typeof id === "boolean" || (typeof id === "number" && !Number.isInteger(id))) {
    throw new ParameterError(`sequence_id must be an integer or a string, got ${String(id)}`);
  }
  const start = p.sequence_start ? fromInferParameter(p.sequence_start) === true : false;
  const end = p.sequence_end ? fromInferParameter(p.sequence_end) === true : false;
  return { id: id as string | bigint | number, start, end };
}

/** Canonical string key for a sequence id (int 7 and bigint 7n and "7" as int differ from string "7"). */
export function sequenceKey(id: SequenceId): string {
  return typeof id === "string" ? `s:${id}` : `i:${BigInt(id).toString()}`;
}
