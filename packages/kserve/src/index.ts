// @timeslide/kserve — Triton / KServe-v2 gRPC protocol for timeslide.
//
// Exported names (for the server engineer and other packages):
//   protocol   loadInferenceProtos() -> { GRPCInferenceService, Health, inference, packageDefinition }
//              PROTO_DIR, GRPC_SERVICE_PROTO, MODEL_CONFIG_PROTO, HEALTH_PROTO, PROTO_LOADER_OPTIONS
//              (proto-loader options: keepCase, longs: String, enums: String, defaults, oneofs;
//               bytes arrive as Buffer; int64 arrive as decimal strings)
//   messages   generated TS types: ModelInferRequest(__Output), ModelInferResponse(__Output),
//              ModelStreamInferResponse, InferParameter, InferInputTensor, InferOutputTensor,
//              ModelConfig(__Output) and its parts, ModelMetadataResponse, TensorMetadata,
//              ModelStatistics*, RepositoryIndex*, GRPCInferenceServiceHandlers (server impl type),
//              HealthHandlers, ...  (see messages.ts; `X` = sendable, `X__Output` = received)
//   tensors    (tensors.ts) Datatype, DATATYPES, dtypeByteSize, encodeTensor / decodeTensor,
//              tensorToRaw / rawToTensor, toKserveDatatype / fromConfigDataType, shape helpers
//   params     (params.ts) toInferParameters / fromInferParameters, sequence parameter helpers
//   client     (client.ts) InferenceClient
//   streams    (sequence.ts) SequenceStream
//   pool       (pool.ts) ServerPool, registerServer, discoverServers, parseEndpoints
export * from "./protos.js";
export type * from "./messages.js";
export * from "./tensors.js";
export * from "./params.js";
export * from "./client.js";
export * from "./sequence.js";
export * from "./pool.js";
