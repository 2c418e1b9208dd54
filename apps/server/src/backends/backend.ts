// The interface between the scheduler and what runs a model. A backend
// loads one version of a model as instances; the scheduler (queues, dynamic
// batching, sequence slots, implicit state) hands each instance batches,
// and knows nothing else of it. Backends are chosen by the config's platform
// (registry.ts).
import type { HostTensor } from "../host-tensors.js";
import type { ServedModel } from "../model.js";
import type { SequenceFlags } from "../sequence-batcher.js";

/** A request as the engine runs it: decoded, checked inputs and its sequence flags. */
export interface ExecRequest {
  inputs: Map<string, HostTensor>;
  sequence?: SequenceFlags;
}

export interface InstanceResult {
  outputs: Map<string, HostTensor>;
  /** compute time of the run, ns */
  inferNs: number;
}

/** One model instance (instance_group count). */
export interface ModelInstance {
  /**
   * Runs it takes at once. An instance that computes one run at a time takes
   * 2 (the next waits in its own queue, so it starts without a round trip
   * through the event loop); one that only waits on others (an ensemble)
   * takes any number.
   */
  readonly concurrency: number;
  /**
   * Runs one batch: the request's inputs, plus the state and control inputs
   * of a sequence model; answers the config's outputs and state outputs.
   * Input buffers may be moved (the caller must not reuse them). `request`
   * is the batch's first request (its sequence flags, for an ensemble's steps).
   */
  run(feeds: Map<string, HostTensor>, request: ExecRequest): Promise<InstanceResult>;
  close(): Promise<void>;
}

/** What a backend may use while loading. */
export interface LoadContext {
  model: ServedModel;
  version: number;
  /** intra-op threads per instance */
  threads: number;
  /** Why a model of the repository is not loaded (undefined when it is). */
  notLoaded(name: string): string | undefined;
  /** Runs a request on another model of the repository (ensemble steps), with its statistics. */
  infer(name: string, version: string | number | undefined, req: ExecRequest): Promise<{ outputs: Map<string, HostTensor> }>;
}

export interface Backend {
  /** Loads one version of `ctx.model`: its instances. Throws, naming the model, when the files do not fit the config. */
  load(ctx: LoadContext): Promise<ModelInstance[]>;
}
