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
//   tensors    (tensors.ts) Tensor, DecodedTensor, Datatype, DATATYPES, dtypeByteSize,
//              tensorToRaw / rawToTensorData / contentsToTensorData / decodeTensor, TensorError,
//              DecodeOptions / RUNTIME_DECODE (FP16 as bits, BYTES as strings, own buffers),
//              emptyTensorData, fromConfigDataType / toConfigDataType / toOrtType / fromOrtType,
//              toShape, elementCount,
//              float32ToFloat16Bits / float16BitsToFloat32
//   params     (params.ts) toInferParameter(s) / fromInferParameter(s) (no double_param in
//              requests), sequenceParameters, readSequenceParameters (server side), sequenceKey,
//              reservedParameterProblem / TRITON_RESERVED_REQUEST_PARAMS (Triton's "triton_" rule)
//   client     (client.ts) InferenceClient, InferStream, KServeError, isServerFailure, outputOf,
//              buildInferRequest / parseInferResponse, decodeUint64MapKey, MAX_MESSAGE_BYTES
//   wire       (wire.ts) parseInferRequest / buildInferResponse  (server side: what apps/server runs)
//   streams    (sequence.ts) SequenceStream, updateLength, stateLength, sliceUpdate, windowEnd,
//              randomSequenceId
//   pool       (pool.ts) ServerPool, registerServer, discoverServers, parseEndpoints, registryKey,
//              DEFAULT_REGISTRY_PREFIX ("timeslide"), DEFAULT_REGISTRY_TTL_SECONDS
// README.md documents the contracts (loader options, errors, sequences, registry layout).
export * from "./protos.js";
export type * from "./messages.js";
export * from "./tensors.js";
export * from "./params.js";
export * from "./client.js";
export * from "./wire.js";
export * from "./sequence.js";
export * from "./pool.js";
