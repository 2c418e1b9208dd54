// The backends this server runs, by platform (Triton's `platform`, or the
// `backend` name). A new backend: one file implementing `Backend`, one line here.
import { ensembleBackend } from "./ensemble.js";
import { onnxBackend } from "./onnx.js";
import { registerBackend } from "./registry.js";

registerBackend(["onnxruntime_onnx", "onnxruntime"], onnxBackend);
registerBackend(["ensemble"], ensembleBackend);

export { backendFor, hasBackend, registerBackend } from "./registry.js";
export type { Backend, ExecRequest, InstanceResult, LoadContext, ModelInstance } from "./backend.js";
