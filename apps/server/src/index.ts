export { startServer, SERVER_NAME, SERVER_VERSION, SERVER_EXTENSIONS, type ServerOptions, type RunningServer } from "./server.js";
export { Engine, type EngineOptions } from "./engine.js";
export { Repository, type ModelIndexEntry } from "./repository.js";
export { ServedModel, ServedVersion } from "./model.js";
export { VersionStats } from "./stats.js";
export { registerBackend, type Backend, type ExecRequest, type LoadContext, type ModelInstance } from "./backends/index.js";
export { InferenceError, toGrpcError } from "./errors.js";
export type { HostTensor } from "./host-tensors.js";
export type { SequenceFlags } from "./sequence-batcher.js";
