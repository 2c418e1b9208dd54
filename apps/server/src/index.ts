export { startServer, readSequence, decodeInputs, SERVER_NAME, SERVER_VERSION, SERVER_EXTENSIONS, type ServerOptions, type RunningServer } from "./server.js";
export { Engine, ServedModel, VersionStats, type ExecRequest, type SequenceFlags, type EngineOptions, type ModelIndexEntry } from "./engine.js";
export { InferenceError, toGrpcError } from "./errors.js";
export { decodeRaw, decodeContents, encodeRaw, configToDatatype, type Datatype, type HostTensor } from "./tensors.js";
