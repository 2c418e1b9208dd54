import { status } from "@grpc/grpc-js";

/** An error with the gRPC status it is answered with (Triton's codes and wording). */
export class InferenceError extends Error {
  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
    this.name = "InferenceError";
  }
}

export const notFound = (model: string, version?: string): InferenceError =>
  new InferenceError(
    status.NOT_FOUND,
    version ? `Request for unknown model: '${model}' version ${version} is not found` : `Request for unknown model: '${model}' is not found`,
  );

export const invalid = (message: string): InferenceError => new InferenceError(status.INVALID_ARGUMENT, message);

/** Any thrown value → a gRPC status and message. */
export function toGrpcError(e: unknown): { code: status; details: string } {
  if (e instanceof InferenceError) return { code: e.code, details: e.message };
  return { code: status.INTERNAL, details: e instanceof Error ? e.message : String(e) };
}
