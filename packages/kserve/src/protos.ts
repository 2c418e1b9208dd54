// Loads the .proto files in packages/kserve/proto at runtime with
// @grpc/proto-loader (pure JS: installs offline, no protoc binary) and
// types them with the interfaces that proto-loader-gen-types wrote into
// src/generated (regenerate with `npm run gen -w packages/kserve`).
//
// Loader options, the same for client and server (the generated types
// assume them):
//   keepCase: true  - field names exactly as in the .proto (raw_input_contents)
//   longs: String   - int64/uint64 arrive as decimal strings, so sequence ids
//                     and nanosecond counters above 2^53 survive; on send,
//                     number, string or bigint-as-string are all accepted
//   enums: String   - "TYPE_FP32", "KIND_CPU"
//   defaults: true  - absent scalars/repeated/maps come back as 0/""/[]/{}
//   oneofs: true    - a virtual field names the member that is set, e.g.
//                     InferParameter.parameter_choice === "int64_param"
//   bytes: Buffer   - raw_input_contents / raw_output_contents are Buffers
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ProtoGrpcType as InferenceGrpcType } from "./generated/grpc_service.js";
import type { ProtoGrpcType as HealthGrpcType } from "./generated/health.js";

/** Absolute path of packages/kserve/proto (the same from src/ and dist/). */
export const PROTO_DIR: string = fileURLToPath(new URL("../proto/", import.meta.url)).replace(/[\\/]$/, "");
export const GRPC_SERVICE_PROTO: string = join(PROTO_DIR, "grpc_service.proto");
export const MODEL_CONFIG_PROTO: string = join(PROTO_DIR, "model_config.proto");
export const HEALTH_PROTO: string = join(PROTO_DIR, "health.proto");

export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export type GRPCInferenceServiceConstructor = InferenceGrpcType["inference"]["GRPCInferenceService"];
export type HealthConstructor = HealthGrpcType["grpc"]["health"]["v1"]["Health"];

export interface InferenceProtos {
  /** Client constructor; `.service` is the ServiceDefinition for grpc.Server#addService. */
  GRPCInferenceService: GRPCInferenceServiceConstructor;
  Health: HealthConstructor;
  /** Every message and enum of package `inference` (incl. ModelConfig), with encode/decode. */
  inference: InferenceGrpcType["inference"];
  packageDefinition: protoLoader.PackageDefinition;
}

let cached: InferenceProtos | undefined;

/** Loads (once) and returns the typed service definitions. */
export function loadInferenceProtos(): InferenceProtos {
  if (cached) return cached;
  const packageDefinition = protoLoader.loadSync(
    ["grpc_service.proto", "health.proto"],
    PROTO_LOADER_OPTIONS,
  );
  const loaded = grpc.loadPackageDefinition(packageDefinition) as unknown as InferenceGrpcType & HealthGrpcType;
  cached = {
    GRPCInferenceService: loaded.inference.GRPCInferenceService,
    Health: loaded.grpc.health.v1.Health,
    inference: loaded.inference,
    packageDefinition,
  };
  return cached;
}
