export { startWorker, type WorkerOptions, type RunningWorker } from "./worker.js";
export { runJob, PermanentJobError, type JobContext, type RunOptions } from "./pipeline.js";
export { StreamingModel, WindowModel, arrayChannel, channelsReady, type Channel, type DetectionModel, type Geometry } from "./inference.js";
export { FactorizedModel, EmbeddingStore, isFactorized, DEFAULT_EMBEDDING_MEMORY } from "./factorized.js";
export { ContextCache } from "./context.js";
export { resolveModel, describeModel, modelProblems, checkModelOnServers, campaignGeometry, sequencesPerJob, DEFAULT_SEQUENCES, MAX_SEQUENCES_PER_JOB, type ModelDescription, type ModelCheck } from "./model.js";
export { WorkerMetrics } from "./metrics.js";
