// Message types generated from the .proto files (see protos.ts for the
// loader options they assume). `X` is what you may send (permissive: int64
// as number | string | Long), `X__Output` is what you receive (int64 as
// string, defaults filled in).
export type { ServerLiveResponse__Output } from "./generated/inference/ServerLiveResponse.js";
export type { ServerReadyResponse__Output } from "./generated/inference/ServerReadyResponse.js";
export type { ModelReadyRequest, ModelReadyRequest__Output, } from "./generated/inference/ModelReadyRequest.js";
export type { ModelReadyResponse, ModelReadyResponse__Output } from "./generated/inference/ModelReadyResponse.js";
export type { ServerMetadataResponse, ServerMetadataResponse__Output } from "./generated/inference/ServerMetadataResponse.js";
export type { ModelMetadataRequest, ModelMetadataRequest__Output } from "./generated/inference/ModelMetadataRequest.js";
export type {
  ModelMetadataResponse,
  ModelMetadataResponse__Output,
  _inference_ModelMetadataResponse_TensorMetadata as TensorMetadata,
  _inference_ModelMetadataResponse_TensorMetadata__Output as TensorMetadata__Output,
} from "./generated/inference/ModelMetadataResponse.js";
export type { InferParameter, InferParameter__Output } from "./generated/inference/InferParameter.js";
export type { InferTensorContents, InferTensorContents__Output } from "./generated/inference/InferTensorContents.js";
export type {
  ModelInferRequest,
  ModelInferRequest__Output,
  _inference_ModelInferRequest_InferInputTensor as InferInputTensor,
  _inference_ModelInferRequest_InferInputTensor__Output as InferInputTensor__Output,
  _inference_ModelInferRequest_InferRequestedOutputTensor as InferRequestedOutputTensor,
  _inference_ModelInferRequest_InferRequestedOutputTensor__Output as InferRequestedOutputTensor__Output,
} from "./generated/inference/ModelInferRequest.js";
export type {
  ModelInferResponse,
  ModelInferResponse__Output,
  _inference_ModelInferResponse_InferOutputTensor as InferOutputTensor,
  _inference_ModelInferResponse_InferOutputTensor__Output as InferOutputTensor__Output,
} from "./generated/inference/ModelInferResponse.js";
export type { ModelStreamInferResponse, ModelStreamInferResponse__Output } from "./generated/inference/ModelStreamInferResponse.js";
export type { ModelConfigRequest, ModelConfigRequest__Output } from "./generated/inference/ModelConfigRequest.js";
export type { ModelConfigResponse, ModelConfigResponse__Output } from "./generated/inference/ModelConfigResponse.js";
export type { ModelConfig, ModelConfig__Output } from "./generated/inference/ModelConfig.js";
export type { ModelInput, ModelInput__Output } from "./generated/inference/ModelInput.js";
export type { ModelOutput, ModelOutput__Output } from "./generated/inference/ModelOutput.js";
export type { ModelVersionPolicy, ModelVersionPolicy__Output } from "./generated/inference/ModelVersionPolicy.js";
export type { ModelInstanceGroup, ModelInstanceGroup__Output } from "./generated/inference/ModelInstanceGroup.js";
export type { ModelDynamicBatching, ModelDynamicBatching__Output } from "./generated/inference/ModelDynamicBatching.js";
export type { ModelSequenceBatching, ModelSequenceBatching__Output } from "./generated/inference/ModelSequenceBatching.js";
export type { ModelEnsembling, ModelEnsembling__Output } from "./generated/inference/ModelEnsembling.js";
export type { ModelOptimizationPolicy, ModelOptimizationPolicy__Output } from "./generated/inference/ModelOptimizationPolicy.js";
export type { ModelParameter, ModelParameter__Output } from "./generated/inference/ModelParameter.js";
export type { DataType, DataType__Output } from "./generated/inference/DataType.js";
export type { ModelStatisticsRequest, ModelStatisticsRequest__Output } from "./generated/inference/ModelStatisticsRequest.js";
export type { ModelStatisticsResponse, ModelStatisticsResponse__Output } from "./generated/inference/ModelStatisticsResponse.js";
export type { ModelStatistics, ModelStatistics__Output } from "./generated/inference/ModelStatistics.js";
export type { InferStatistics, InferStatistics__Output } from "./generated/inference/InferStatistics.js";
export type { InferBatchStatistics, InferBatchStatistics__Output } from "./generated/inference/InferBatchStatistics.js";
export type { StatisticDuration, StatisticDuration__Output } from "./generated/inference/StatisticDuration.js";
export type { RepositoryIndexRequest, RepositoryIndexRequest__Output } from "./generated/inference/RepositoryIndexRequest.js";
export type {
  RepositoryIndexResponse,
  RepositoryIndexResponse__Output,
  _inference_RepositoryIndexResponse_ModelIndex as ModelIndex,
  _inference_RepositoryIndexResponse_ModelIndex__Output as ModelIndex__Output,
} from "./generated/inference/RepositoryIndexResponse.js";
export type { RepositoryModelLoadRequest, RepositoryModelLoadRequest__Output } from "./generated/inference/RepositoryModelLoadRequest.js";
export type { RepositoryModelUnloadRequest, RepositoryModelUnloadRequest__Output } from "./generated/inference/RepositoryModelUnloadRequest.js";
export type { ModelRepositoryParameter, ModelRepositoryParameter__Output } from "./generated/inference/ModelRepositoryParameter.js";
export type {
  GRPCInferenceServiceClient,
  GRPCInferenceServiceHandlers,
  GRPCInferenceServiceDefinition,
} from "./generated/inference/GRPCInferenceService.js";
export type { HealthClient, HealthHandlers } from "./generated/grpc/health/v1/Health.js";
export type { HealthCheckRequest__Output } from "./generated/grpc/health/v1/HealthCheckRequest.js";
export type { HealthCheckResponse, HealthCheckResponse__Output } from "./generated/grpc/health/v1/HealthCheckResponse.js";
