// Backends by the platform a config names, as grpc-js registers resolvers
// by scheme: a new backend is one file and one line in index.ts.
import type { ModelConfig } from "@timeslide/model-repo";
import { platformOf } from "../model.js";
import type { Backend } from "./backend.js";

const backends = new Map<string, Backend>();

/** Serves models of these platforms (`platform`, or `backend` names) with `backend`. */
export function registerBackend(platforms: string[], backend: Backend): void {
  for (const p of platforms) backends.set(p, backend);
}

/** The registered backend for a config, if any. */
export function hasBackend(config: ModelConfig): boolean {
  return backends.has(platformOf(config)) || (config.backend !== undefined && backends.has(config.backend));
}

/** The backend for a config; throws naming the platforms served. */
export function backendFor(config: ModelConfig): Backend {
  const platform = platformOf(config);
  const b = backends.get(platform) ?? (config.backend ? backends.get(config.backend) : undefined);
  if (!b) throw new Error(`platform '${platform}' is not served here (served: ${[...backends.keys()].sort().join(", ")})`);
  return b;
}
