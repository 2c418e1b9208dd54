// KServe v2 / Triton gRPC client on @grpc/grpc-js.
//
// Two clocks are kept apart on purpose:
//  - deadlineMs: the client's own limit (a gRPC deadline for unary calls,
//    a timer per request on a stream); when it passes the caller gets
//    DEADLINE_EXCEEDED whatever the server is doing;
//  - timeoutUs:  the request parameter "timeout" that Triton's scheduler
//    reads (microseconds a request may wait in the server's queue).
import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { loadInferenceProtos } from "./protos.js";
import type { GRPCInferenceServiceClient } from "./generated/inference/GRPCInferenceService.js";
import type { ModelInferRequest } from "./generated/inference/ModelInferRequest.js";
import type { ModelInferResponse__Output } from "./generated/inference/ModelInferResponse.js";
import type { ModelStreamInferResponse__Output } from "./generated/inference/ModelStreamInferResponse.js";
import type { ServerMetadataResponse__Output } from "./generated/inference/ServerMetadataResponse.js";
import type { ModelMetadataResponse__Output } from "./generated/inference/ModelMetadataResponse.js";
import type { ModelConfig__Output } from "./generated/inference/ModelConfig.js";
import type { ModelStatistics__Output } from "./generated/inference/ModelStatistics.js";
import type { _inference_RepositoryIndexResponse_ModelIndex__Output as ModelIndex__Output } from "./generated/inference/RepositoryIndexResponse.js";
import type { ModelRepositoryParameter } from "./generated/inference/ModelRepositoryParameter.js";
import type { HealthClient } from "./generated/grpc/health/v1/Health.js";
import type { InferParameter } from "./generated/inference/InferParameter.js";
import { decodeTensor, tensorToRaw, type DecodedTensor, type Tensor, TensorError } from "./tensors.js";
import {
  fromInferParameters,
  ParameterError,
  sequenceParameters,
  toInferParameter,
  toInferParameters,
  type ParamValue,
  type SequenceFlags,
} from "./params.js";

/** gRPC caps messages at 2 GiB - 1; we raise both directions to that. */
export const MAX_MESSAGE_BYTES = 2 ** 31 - 1;

export class KServeError extends Error {
  /** grpc.status code (UNKNOWN for in-band stream errors). */
  readonly code: grpc.status;
  readonly details: string;
  readonly endpoint: string;
  /** True when the error came back in ModelStreamInferResponse.error_message (the stream stays usable). */
  readonly inBand: boolean;
  readonly requestId?: string;
  constructor(opts: { code: grpc.status; details: string; endpoint: string; inBand?: boolean; requestId?: string; method?: string }) {
    const codeName = grpc.status[opts.code] ?? String(opts.code);
    super(`${opts.method ? opts.method + " " : ""}${opts.endpoint}: ${codeName}: ${opts.details}`);
    this.name = "KServeError";
    this.code = opts.code;
    this.details = opts.details;
    this.endpoint = opts.endpoint;
    this.inBand = opts.inBand ?? false;
    this.requestId = opts.requestId;
  }
}

/** Errors after which the same request may succeed on another server. */
export function isServerFailure(err: unknown): boolean {
  if (!(err instanceof KServeError) || err.inBand) return false;
  return err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED || err.code === grpc.status.INTERNAL;
}

export interface TlsOptions {
  /** PEM root certificates; default: the system roots. */
  rootCerts?: Buffer;
  /** PEM client key and certificate for mutual TLS. */
  privateKey?: Buffer;
  certChain?: Buffer;
  /** Name to verify instead of the host part of the endpoint (tests, IP endpoints). */
  serverNameOverride?: string;
}

/** Environment variable naming a PEM file of CA certificates: clients then dial inference servers over TLS, trusting it. */
export const GRPC_CA_ENV = "TIMESLIDE_GRPC_CA";
/** Environment variable: "1" dials inference servers over TLS with the system roots (when no TIMESLIDE_GRPC_CA). */
export const GRPC_TLS_ENV = "TIMESLIDE_GRPC_TLS";

/**
 * The TLS settings for inference-server clients from the environment
 * (TIMESLIDE_GRPC_CA, TIMESLIDE_GRPC_TLS); undefined: plaintext. Read by
 * every client a worker opens (its pool and the model lookup), so one
 * variable switches them all.
 */
export function grpcTlsFromEnv(env: NodeJS.ProcessEnv = process.env): TlsOptions | true | undefined {
  const ca = env[GRPC_CA_ENV];
  if (ca) {
    try {
      return { rootCerts: readFileSync(ca) };
    } catch (e) {
      throw new Error(`${GRPC_CA_ENV}=${ca}: cannot read the CA certificate file: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  return env[GRPC_TLS_ENV] === "1" || env[GRPC_TLS_ENV] === "true" ? true : undefined;
}

export interface ClientOptions {
  /** "host:port" */
  endpoint: string;
  /** true: TLS with system roots; object: explicit certificates; absent: plaintext. */
  tls?: boolean | TlsOptions;
  /** Headers sent with every call (e.g. authorization). */
  metadata?: Record<string, string>;
  /**
   * Keepalive ping interval; default 300 s. Triton (grpc core) counts pings
   * closer than its http2 min-recv-ping-interval-without-data (300 s by
   * default) as strikes and drops the connection after two, so faster pings
   * need matching server flags. A killed server is noticed at once anyway
   * (the TCP connection closes); pings matter for silent network loss.
   */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  keepalivePermitWithoutCalls?: boolean;
  /** Message size limit in both directions; default 2 GiB - 1. */
  maxMessageBytes?: number;
  /** Default client deadline for unary calls, ms; default none. */
  defaultDeadlineMs?: number;
  /** Extra grpc-js channel options (override the above). */
  channelOptions?: grpc.ChannelOptions;
}

export interface CallOptions {
  /** Client-side deadline for this call, ms from now. */
  deadlineMs?: number;
  signal?: AbortSignal;
  metadata?: Record<string, string>;
}

export interface RequestedOutput {
  name: string;
  parameters?: Record<string, ParamValue>;
}

export interface InferRequest {
  model: string;
  /** Empty / absent: the server's choice by version policy. */
  version?: string;
  /** Request id; on a stream one is assigned when absent. */
  id?: string;
  inputs: Tensor[];
  /** Absent: every output. */
  outputs?: Array<string | RequestedOutput>;
  sequence?: SequenceFlags;
  /** Server-side "timeout" parameter, microseconds (separate from the client deadline). */
  timeoutUs?: number;
  /**
   * Request priority (Triton: 1 is the highest, 0 the model's default level;
   * levels are uint64): int64_param, or uint64_param from 2^63 on.
   */
  priority?: number | bigint;
  /**
   * Custom parameters as Triton accepts them: booleans, strings, integers
   * (int64). A non-integer number or a reserved "triton_" key is refused
   * with a ParameterError (send a non-integer as a string).
   */
  parameters?: Record<string, ParamValue>;
}

/** The "priority" request parameter: an integer in [0, 2^64). */
function priorityParameter(priority: number | bigint): InferParameter {
  if (typeof priority === "number" && !Number.isSafeInteger(priority)) {
    throw new ParameterError(`priority: ${priority} is not an integer${Number.isInteger(priority) ? " below 2^53; pass a bigint" : ""}`);
  }
  const big = BigInt(priority);
  if (big < 0n || big >= 2n ** 64n) throw new ParameterError(`priority: ${priority} must be in [0, 2^64)`);
  return big < 2n ** 63n ? { int64_param: big.toString() } : { uint64_param: big.toString() };
}

export interface InferResult {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, ParamValue>;
  outputs: DecodedTensor[];
}

/** The output named `name`; throws a clear error when the response lacks it. */
export function outputOf(result: InferResult, name: string): DecodedTensor {
  const t = result.outputs.find((o) => o.name === name);
  if (!t) {
    throw new TensorError(
      `response ${result.id ? `"${result.id}" ` : ""}of model "${result.model_name}" has no output "${name}" (outputs: ${result.outputs.map((o) => o.name).join(", ") || "none"})`,
    );
  }
  return t;
}

/**
 * protobufjs (under @grpc/proto-loader) decodes a 64-bit map key, such as
 * ModelDynamicBatching.priority_queue_policy's uint64 priority level, to its
 * internal 8-character "long hash" (the value's little-endian bytes) rather
 * than to a number: this turns such a key back into its decimal string. The
 * bytes on the wire are right; keys already in decimal pass through.
 */
export function decodeUint64MapKey(key: string): string {
  if (key.length !== 8 || /^\d+$/.test(key)) return key;
  let v = 0n;
  for (let i = 7; i >= 0; i--) {
    const b = key.charCodeAt(i);
    if (b > 0xff) return key;
    v = (v << 8n) | BigInt(b);
  }
  return v.toString();
}

/** InferRequest -> wire message; tensors go into raw_input_contents. */
export function buildInferRequest(req: InferRequest): ModelInferRequest {
  // As Triton accepts them: no double_param, no reserved "triton_" keys (ParameterError).
  const parameters: Record<string, InferParameter> = toInferParameters(req.parameters ?? {});
  if (req.sequence) Object.assign(parameters, sequenceParameters(req.sequence));
  if (req.timeoutUs !== undefined) parameters.timeout = toInferParameter(Math.round(req.timeoutUs), "timeout");
  if (req.priority !== undefined) parameters.priority = priorityParameter(req.priority);
  return {
    model_name: req.model,
    model_version: req.version ?? "",
    id: req.id ?? "",
    parameters,
    inputs: req.inputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape })),
    outputs: (req.outputs ?? []).map((o) =>
      typeof o === "string"
        ? { name: o }
        : { name: o.name, parameters: Object.fromEntries(Object.entries(o.parameters ?? {}).map(([k, v]) => [k, toInferParameter(v, k)])) },
    ),
    raw_input_contents: req.inputs.map((t) => tensorToRaw(t)),
  };
}

/** Wire response -> decoded result (raw_output_contents in output order, or typed contents). */
export function parseInferResponse(res: ModelInferResponse__Output): InferResult {
  const raws = res.raw_output_contents ?? [];
  if (raws.length > 0 && raws.length !== res.outputs.length) {
    throw new TensorError(
      `response of model "${res.model_name}": ${res.outputs.length} outputs but ${raws.length} raw_output_contents entries`,
    );
  }
  return {
    model_name: res.model_name,
    model_version: res.model_version,
    id: res.id,
    parameters: fromInferParameters(res.parameters),
    outputs: res.outputs.map((o, i) => decodeTensor(o, raws.length ? raws[i] : undefined)),
  };
}

function toMetadata(...records: Array<Record<string, string> | undefined>): grpc.Metadata {
  const md = new grpc.Metadata();
  for (const r of records) for (const [k, v] of Object.entries(r ?? {})) md.set(k, v);
  return md;
}

export interface WaitForReadyOptions {
  /** Also wait until this model is ready. */
  model?: string;
  version?: string;
  /** Give up after this long; default 30 s. */
  timeoutMs?: number;
  initialDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
}

export class InferenceClient {
  readonly endpoint: string;
  private readonly stub: GRPCInferenceServiceClient;
  private readonly health: HealthClient;
  private readonly metadata: Record<string, string>;
  private readonly defaultDeadlineMs?: number;
  private readonly plaintext: boolean;
  private streamCount = 0;

  constructor(options: ClientOptions | string) {
    const opts: ClientOptions = typeof options === "string" ? { endpoint: options } : options;
    this.endpoint = opts.endpoint;
    this.plaintext = !opts.tls;
    this.metadata = opts.metadata ?? {};
    this.defaultDeadlineMs = opts.defaultDeadlineMs;
    const { GRPCInferenceService, Health } = loadInferenceProtos();
    let creds: grpc.ChannelCredentials;
    const channel: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": opts.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      "grpc.max_send_message_length": opts.maxMessageBytes ?? MAX_MESSAGE_BYTES,
      "grpc.keepalive_time_ms": opts.keepaliveTimeMs ?? 300_000,
      "grpc.keepalive_timeout_ms": opts.keepaliveTimeoutMs ?? 20_000,
      "grpc.keepalive_permit_without_calls": opts.keepalivePermitWithoutCalls ? 1 : 0,
      // grpc-js backs reconnects off up to 120 s: a server restarted after a
      // crash would look dead (calls fail fast while the channel waits) for
      // up to two minutes. 5 s bounds that at little cost.
      "grpc.max_reconnect_backoff_ms": 5_000,
    };
    if (opts.tls) {
      const t: TlsOptions = opts.tls === true ? {} : opts.tls;
      creds = grpc.credentials.createSsl(t.rootCerts ?? null, t.privateKey ?? null, t.certChain ?? null);
      if (t.serverNameOverride) {
        channel["grpc.ssl_target_name_override"] = t.serverNameOverride;
        channel["grpc.default_authority"] = t.serverNameOverride;
      }
    } else {
      creds = grpc.credentials.createInsecure();
    }
    Object.assign(channel, opts.channelOptions ?? {});
    this.stub = new GRPCInferenceService(opts.endpoint, creds, channel);
    // The health service shares the channel settings (grpc-js pools subchannels).
    this.health = new Health(opts.endpoint, creds, channel);
  }

  close(): void {
    this.stub.close();
    this.health.close();
  }

  private unary<Res>(method: string, req: object, opts: CallOptions = {}, target: grpc.Client = this.stub): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      if (opts.signal?.aborted) {
        reject(new KServeError({ code: grpc.status.CANCELLED, details: "aborted before the call started", endpoint: this.endpoint, method }));
        return;
      }
      const deadlineMs = opts.deadlineMs ?? this.defaultDeadlineMs;
      const callOpts: grpc.CallOptions = deadlineMs !== undefined ? { deadline: Date.now() + deadlineMs } : {};
      const md = toMetadata(this.metadata, opts.metadata);
      let onAbort: (() => void) | undefined;
      const fn = (target as unknown as Record<string, Function>)[method];
      const call: grpc.ClientUnaryCall = fn.call(target, req, md, callOpts, (err: grpc.ServiceError | null, res: Res) => {
        if (onAbort) opts.signal?.removeEventListener("abort", onAbort);
        if (err) {
          let details = err.details || err.message;
          // A TLS server hangs up on a plaintext client without an error grpc-js can name
          // ("Failed to connect", no errno): say what the likely cause is.
          if (this.plaintext && err.code === grpc.status.UNAVAILABLE && /Failed to connect \(/.test(details))
            details += ` [dialled in plaintext: if the server serves TLS, set ${GRPC_CA_ENV} (or ${GRPC_TLS_ENV}=1)]`;
          reject(new KServeError({ code: err.code, details, endpoint: this.endpoint, method }));
        } else resolve(res);
      });
      if (opts.signal) {
        onAbort = () => call.cancel();
        opts.signal.addEventListener("abort", onAbort, { once: true });
      }
    });
  }

  async serverLive(opts?: CallOptions): Promise<boolean> {
    return (await this.unary<{ live: boolean }>("ServerLive", {}, opts)).live;
  }

  async serverReady(opts?: CallOptions): Promise<boolean> {
    return (await this.unary<{ ready: boolean }>("ServerReady", {}, opts)).ready;
  }

  async modelReady(name: string, version = "", opts?: CallOptions): Promise<boolean> {
    return (await this.unary<{ ready: boolean }>("ModelReady", { name, version }, opts)).ready;
  }

  serverMetadata(opts?: CallOptions): Promise<ServerMetadataResponse__Output> {
    return this.unary("ServerMetadata", {}, opts);
  }

  modelMetadata(name: string, version = "", opts?: CallOptions): Promise<ModelMetadataResponse__Output> {
    return this.unary("ModelMetadata", { name, version }, opts);
  }

  /**
   * The model's config. dynamic_batching.priority_queue_policy comes keyed
   * by decimal priority levels (see decodeUint64MapKey).
   */
  async modelConfig(name: string, version = "", opts?: CallOptions): Promise<ModelConfig__Output> {
    const res = await this.unary<{ config: ModelConfig__Output | null }>("ModelConfig", { name, version }, opts);
    if (!res.config) {
      throw new KServeError({ code: grpc.status.INTERNAL, details: `ModelConfig for "${name}" came back without a config`, endpoint: this.endpoint });
    }
    const policies = res.config.dynamic_batching?.priority_queue_policy;
    if (policies) {
      res.config.dynamic_batching!.priority_queue_policy = Object.fromEntries(Object.entries(policies).map(([k, v]) => [decodeUint64MapKey(k), v]));
    }
    return res.config;
  }

  /** Empty name: every model; empty version: every version. */
  async modelStatistics(name = "", version = "", opts?: CallOptions): Promise<ModelStatistics__Output[]> {
    return (await this.unary<{ model_stats: ModelStatistics__Output[] }>("ModelStatistics", { name, version }, opts)).model_stats;
  }

  async repositoryIndex(options: { ready?: boolean; repository?: string } & CallOptions = {}): Promise<ModelIndex__Output[]> {
    const res = await this.unary<{ models: ModelIndex__Output[] }>(
      "RepositoryIndex",
      { repository_name: options.repository ?? "", ready: options.ready ?? false },
      options,
    );
    return res.models;
  }

  /** Load or reload a model. `config`: a JSON model config to load with instead of config.pbtxt (Triton's override). */
  async loadModel(name: string, options: { config?: string; parameters?: Record<string, ModelRepositoryParameter>; repository?: string } & CallOptions = {}): Promise<void> {
    const parameters: Record<string, ModelRepositoryParameter> = { ...(options.parameters ?? {}) };
    if (options.config !== undefined) parameters.config = { string_param: options.config };
    await this.unary("RepositoryModelLoad", { repository_name: options.repository ?? "", model_name: name, parameters }, options);
  }

  async unloadModel(name: string, options: { unloadDependents?: boolean; repository?: string } & CallOptions = {}): Promise<void> {
    const parameters: Record<string, ModelRepositoryParameter> = {};
    if (options.unloadDependents !== undefined) parameters.unload_dependents = { bool_param: options.unloadDependents };
    await this.unary("RepositoryModelUnload", { repository_name: options.repository ?? "", model_name: name, parameters }, options);
  }

  /** grpc.health.v1 Check: "SERVING", "NOT_SERVING", ... */
  async healthCheck(service = "", opts?: CallOptions): Promise<string> {
    const res = await this.unary<{ status: string }>("Check", { service }, opts, this.health);
    return res.status;
  }

  async infer(req: InferRequest, opts?: CallOptions): Promise<InferResult> {
    const res = await this.unary<ModelInferResponse__Output>("ModelInfer", buildInferRequest(req), opts);
    return parseInferResponse(res);
  }

  /** Opens a ModelStreamInfer stream; many requests and sequences share it. */
  openStream(opts: { metadata?: Record<string, string>; signal?: AbortSignal } = {}): InferStream {
    const call = this.stub.ModelStreamInfer(toMetadata(this.metadata, opts.metadata));
    return new InferStream(call, this.endpoint, `${process.pid.toString(36)}.${(this.streamCount++).toString(36)}`, opts.signal);
  }

  /**
   * Polls live, then ready (then the model's readiness) with exponential
   * backoff until all are true or the timeout passes.
   */
  async waitForReady(options: WaitForReadyOptions = {}): Promise<void> {
    const timeoutMs = options.timeoutMs ?? 30_000;
    const until = Date.now() + timeoutMs;
    let delay = options.initialDelayMs ?? 50;
    const maxDelay = options.maxDelayMs ?? 2_000;
    let last = "not tried";
    for (;;) {
      if (options.signal?.aborted) {
        throw new KServeError({ code: grpc.status.CANCELLED, details: "waitForReady aborted", endpoint: this.endpoint });
      }
      const remaining = until - Date.now();
      const probe = { deadlineMs: Math.max(50, Math.min(remaining, 2_000)), signal: options.signal };
      try {
        if (!(await this.serverLive(probe))) last = "server not live";
        else if (!(await this.serverReady(probe))) last = "server not ready";
        else if (options.model && !(await this.modelReady(options.model, options.version ?? "", probe))) last = `model "${options.model}" not ready`;
        else return;
      } catch (err) {
        last = err instanceof Error ? err.message : String(err);
      }
      if (Date.now() + delay > until) {
        throw new KServeError({
          code: grpc.status.DEADLINE_EXCEEDED,
          details: `not ready after ${timeoutMs} ms (last: ${last})`,
          endpoint: this.endpoint,
        });
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(maxDelay, delay * 2);
    }
  }
}

interface Pending {
  resolve: (r: InferResult) => void;
  reject: (e: Error) => void;
  timer?: NodeJS.Timeout;
  signal?: AbortSignal;
  onAbort?: () => void;
}

/**
 * One bidirectional ModelStreamInfer call. Each request gets an id;
 * responses are matched back by id, so any number of requests and
 * sequences may be in flight at once. In-band errors (error_message)
 * reject only their request; a transport error rejects every pending one.
 */
export class InferStream {
  private readonly pending = new Map<string, Pending>();
  private counter = 0;
  private failure: KServeError | undefined;
  private ended = false;
  private cancelledByUs = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly call: grpc.ClientDuplexStream<ModelInferRequest, ModelStreamInferResponse__Output>,
    readonly endpoint: string,
    private readonly idPrefix: string,
    signal?: AbortSignal,
  ) {
    call.on("data", (msg: ModelStreamInferResponse__Output) => this.onData(msg));
    this.done = new Promise<void>((resolve) => {
      call.on("error", (err: grpc.ServiceError) => {
        const e = new KServeError({
          code: this.cancelledByUs ? grpc.status.CANCELLED : err.code,
          details: err.details || err.message,
          endpoint,
          method: "ModelStreamInfer",
        });
        this.fail(e);
      });
      // 'status' carries the final outcome whether or not 'error' fired.
      call.on("status", (status: grpc.StatusObject) => {
        this.fail(
          status.code === grpc.status.OK
            ? new KServeError({ code: grpc.status.UNAVAILABLE, details: "stream closed by the server before the response arrived", endpoint, method: "ModelStreamInfer" })
            : new KServeError({ code: this.cancelledByUs ? grpc.status.CANCELLED : status.code, details: status.details, endpoint, method: "ModelStreamInfer" }),
        );
        resolve();
      });
    });
    if (signal) {
      if (signal.aborted) this.cancel();
      else signal.addEventListener("abort", () => this.cancel(), { once: true });
    }
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.pending.size;
  }

  /** Set once the stream failed or ended; no more requests are accepted. */
  get error(): KServeError | undefined {
    return this.failure;
  }

  get usable(): boolean {
    return !this.failure && !this.ended;
  }

  infer(req: InferRequest, opts: { deadlineMs?: number; signal?: AbortSignal } = {}): Promise<InferResult> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.ended) {
      return Promise.reject(new KServeError({ code: grpc.status.FAILED_PRECONDITION, details: "stream already half-closed", endpoint: this.endpoint }));
    }
    if (opts.signal?.aborted) {
      return Promise.reject(new KServeError({ code: grpc.status.CANCELLED, details: "aborted before sending", endpoint: this.endpoint }));
    }
    const id = req.id || `${this.idPrefix}.${(this.counter++).toString(36)}`;
    if (this.pending.has(id)) {
      return Promise.reject(new KServeError({ code: grpc.status.INVALID_ARGUMENT, details: `request id "${id}" is already in flight on this stream`, endpoint: this.endpoint }));
    }
    let msg: ModelInferRequest;
    try {
      msg = buildInferRequest({ ...req, id });
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<InferResult>((resolve, reject) => {
      const p: Pending = { resolve, reject, signal: opts.signal };
      if (opts.deadlineMs !== undefined) {
        p.timer = setTimeout(() => {
          this.settle(id)?.reject(
            new KServeError({ code: grpc.status.DEADLINE_EXCEEDED, details: `no response to request "${id}" within ${opts.deadlineMs} ms`, endpoint: this.endpoint, requestId: id }),
          );
        }, opts.deadlineMs);
      }
      if (opts.signal) {
        // A single request on a shared stream cannot be withdrawn from the
        // server; the caller stops waiting and a late response is dropped.
        p.onAbort = () =>
          this.settle(id)?.reject(new KServeError({ code: grpc.status.CANCELLED, details: `request "${id}" aborted`, endpoint: this.endpoint, requestId: id }));
        opts.signal.addEventListener("abort", p.onAbort, { once: true });
      }
      this.pending.set(id, p);
      this.call.write(msg);
    });
  }

  private settle(id: string): Pending | undefined {
    const p = this.pending.get(id);
    if (!p) return undefined;
    this.pending.delete(id);
    if (p.timer) clearTimeout(p.timer);
    if (p.onAbort) p.signal?.removeEventListener("abort", p.onAbort);
    return p;
  }

  private onData(msg: ModelStreamInferResponse__Output): void {
    const id = msg.infer_response?.id ?? "";
    if (msg.error_message) {
      // Servers should echo the id; if one does not, the oldest pending
      // request is the best guess (requests are answered in order).
      const key = id && this.pending.has(id) ? id : id ? undefined : this.pending.keys().next().value;
      if (key === undefined) return;
      this.settle(key)?.reject(new KServeError({ code: grpc.status.UNKNOWN, details: msg.error_message, endpoint: this.endpoint, inBand: true, requestId: key }));
      return;
    }
    if (!msg.infer_response) return;
    const p = this.settle(id);
    if (!p) return; // answered after its deadline or abort
    try {
      p.resolve(parseInferResponse(msg.infer_response));
    } catch (err) {
      p.reject(err as Error);
    }
  }

  private fail(err: KServeError): void {
    if (!this.failure) this.failure = err;
    for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
  }

  /** Half-closes: no more requests; resolves once the server has answered everything and closed. */
  async end(): Promise<void> {
    if (!this.ended && !this.failure) {
      this.ended = true;
      this.call.end();
    }
    await this.done;
  }

  /** Cancels the call; pending requests reject with CANCELLED. */
  cancel(): void {
    if (this.failure) return;
    this.cancelledByUs = true;
    this.call.cancel();
  }
}
