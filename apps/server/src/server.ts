import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { hostname } from "node:os";
import {
  buildInferResponse,
  loadInferenceProtos,
  parseInferRequest,
  ParameterError,
  registerServer,
  RUNTIME_DECODE,
  TensorError,
  type ParsedInferRequest,
  type Registration,
} from "@timeslide/kserve";
import type { Redis } from "ioredis";
import { createRedis, redactUrls } from "@timeslide/campaign/redis";
import type { GRPCInferenceServiceHandlers, HealthHandlers, ModelInferRequest__Output, ModelInferResponse, ModelStreamInferResponse } from "@timeslide/kserve";
import { pino, type Logger } from "pino";
import { z } from "zod";
import { Engine } from "./engine.js";
import { InferenceError, invalid, toGrpcError } from "./errors.js";
import { ServerMetrics } from "./metrics.js";
import type { ServedModel } from "./model.js";

export const SERVER_NAME = "timeslide";
export const SERVER_VERSION = "0.1.0";
export const SERVER_EXTENSIONS = ["sequence", "model_repository", "model_configuration", "statistics", "parameters", "binary_tensor_data"];

const optionsSchema = z.object({
  repository: z.string().min(1, "repository: a model repository directory is required"),
  host: z.string().default("0.0.0.0"),
  port: z.number().int().min(0).max(65535).default(8001),
  threads: z.number().int().min(1).max(256).default(1),
  /** Serve Prometheus metrics on this HTTP port (0: any free port); absent: no metrics endpoint. */
  metricsPort: z.number().int().min(0).max(65535).optional(),
  logger: z.custom<Logger>().optional(),
  /** Serve gRPC over TLS with this PEM certificate chain and key; absent: plaintext. */
  tls: z.object({ certChain: z.instanceof(Buffer), privateKey: z.instanceof(Buffer) }).optional(),
  /** Register this server in Redis (the pool's discovery), refreshed every ttl/3 until close(). */
  register: z
    .object({
      redis: z.string().regex(/^rediss?:\/\//, "register.redis: expected a redis:// URL"),
      /** Key prefix (default TIMESLIDE_PREFIX, else "timeslide"): the entry goes to `<prefix>:servers`. */
      prefix: z.string().optional(),
      /** host:port clients should dial (default: this host name and the bound port). */
      advertise: z.string().regex(/^[^\s:]+:\d+$/, "register.advertise: expected host:port").optional(),
      ttlSeconds: z.number().positive().default(15),
    })
    .optional(),
});

export type ServerOptions = z.input<typeof optionsSchema>;

export interface RunningServer {
  /** The bound port (useful with port 0). */
  port: number;
  /** The endpoint registered in Redis, when registering. */
  registered?: string;
  /** The bound Prometheus metrics port, when serving metrics. */
  metricsPort?: number;
  engine: Engine;
  close(): Promise<void>;
}

/**
 * A request decoded by @timeslide/kserve's codec, for ONNX Runtime (FP16 as
 * raw bits, BYTES as strings, buffers of their own); what the codec refuses
 * (tensors, reserved or mistyped parameters) is INVALID_ARGUMENT.
 */
function decodeRequest(req: ModelInferRequest__Output): ParsedInferRequest {
  try {
    return parseInferRequest(req, RUNTIME_DECODE);
  } catch (e) {
    if (e instanceof TensorError || e instanceof ParameterError) throw invalid(e.message);
    throw e;
  }
}

/** The ModelConfig answer: the parsed config.pbtxt, with Triton's version_policy default filled in. */
function configMessage(m: ServedModel): Record<string, unknown> {
  const c: Record<string, unknown> = structuredClone(m.config);
  if (!c.version_policy) c.version_policy = { latest: { num_versions: 1 } };
  return c;
}

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new Error(`startServer: ${issue.path.join(".")}: ${issue.message}`);
  }
  const o = parsed.data;
  const log = o.logger ?? pino({ name: "timeslide-server" });
  const metrics = o.metricsPort !== undefined ? new ServerMetrics() : undefined;
  const engine = new Engine({ repository: o.repository, threads: o.threads, logger: log, observer: metrics });
  await engine.repository.loadAll();
  let metricsPort: number | undefined;
  if (metrics) {
    metricsPort = await metrics.listen(o.metricsPort!, o.host, () => {
      metrics.sequences.reset();
      metrics.sequencesWaiting.reset();
      for (const m of engine.models.values()) {
        if (!m.batcher) continue;
        metrics.sequences.set({ model: m.name }, m.sequencesActive);
        metrics.sequencesWaiting.set({ model: m.name }, m.sequencesWaiting);
      }
    });
  }

  const protos = loadInferenceProtos();

  const respond = async (req: ModelInferRequest__Output): Promise<ModelInferResponse> => {
    const parsed = decodeRequest(req);
    const inputs = new Map(parsed.inputs.map(({ name, ...t }) => [name, t]));
    const r = await engine.infer(parsed.model, parsed.version, { inputs, sequence: parsed.sequence });
    for (const name of parsed.outputs) {
      if (!r.outputs.has(name)) throw invalid(`unexpected inference output '${name}' for model '${parsed.model}'`);
    }
    const names = parsed.outputs.length ? parsed.outputs : r.model.outputs.map((x) => x.name);
    return buildInferResponse({
      model: parsed.model,
      version: String(r.version),
      id: parsed.id,
      outputs: names.flatMap((name) => {
        const t = r.outputs.get(name);
        return t ? [{ name, ...t }] : [];
      }),
      parameters: parsed.sequence ? { sequence_id: parsed.sequence.id } : undefined,
    });
  };

  const unary = <Req, Res>(fn: (req: Req) => Res | Promise<Res>): grpc.handleUnaryCall<Req, Res> => {
    return (call, callback) => {
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => callback(null, res),
          (e) => {
            const { code, details } = toGrpcError(e);
            if (code === status.INTERNAL) log.error({ err: details }, "request failed");
            callback({ code, details, name: "Error", message: details });
          },
        );
    };
  };

  const handlers: GRPCInferenceServiceHandlers = {
    ServerLive: unary(() => ({ live: true })),
    ServerReady: unary(() => ({ ready: engine.repository.ready })),
    ModelReady: unary((req) => {
      const m = engine.models.get(req.name);
      if (!m) return { ready: false };
      if (req.version) return { ready: m.versions.has(Number(req.version)) };
      return { ready: m.versions.size > 0 };
    }),
    ServerMetadata: unary(() => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: SERVER_EXTENSIONS })),
    ModelMetadata: unary((req) => {
      const m = engine.repository.model(req.name);
      if (req.version) m.pick(req.version);
      const meta = (t: { name: string; datatype: string; dims: number[] }) => ({ name: t.name, datatype: t.datatype, shape: t.dims });
      return {
        name: m.name,
        versions: [...m.versions.keys()].sort((a, b) => a - b).map(String),
        platform: m.platform,
        inputs: m.inputs.map(meta),
        outputs: m.outputs.map(meta),
      };
    }),
    ModelConfig: unary((req) => {
      const m = engine.repository.model(req.name);
      if (req.version) m.pick(req.version);
      return { config: configMessage(m) as never };
    }),
    ModelStatistics: unary((req) => {
      const models = req.name ? [engine.repository.model(req.name)] : [...engine.models.values()];
      const model_stats = [];
      for (const m of models) {
        const versions = req.version ? [m.pick(req.version)] : [...m.versions.values()];
        for (const v of versions) {
          const s = v.stats;
          model_stats.push({
            name: m.name,
            version: String(v.version),
            last_inference: s.last_inference,
            inference_count: s.inference_count,
            execution_count: s.execution_count,
            inference_stats: {
              success: s.success.toJSON(),
              fail: s.fail.toJSON(),
              queue: s.queue.toJSON(),
              compute_input: s.compute_input.toJSON(),
              compute_infer: s.compute_infer.toJSON(),
              compute_output: s.compute_output.toJSON(),
            },
            batch_stats: [...s.batch.entries()]
              .sort((a, b) => a[0] - b[0])
              .map(([batch_size, b]) => ({
                batch_size,
                compute_input: b.compute_input.toJSON(),
                compute_infer: b.compute_infer.toJSON(),
                compute_output: b.compute_output.toJSON(),
              })),
          });
        }
      }
      return { model_stats };
    }),
    RepositoryIndex: unary((req) => ({ models: engine.repository.index(Boolean(req.ready)) })),
    RepositoryModelLoad: unary(async (req) => {
      if (!req.model_name) throw invalid("RepositoryModelLoad: model_name is required");
      await engine.repository.load(req.model_name);
      return {};
    }),
    RepositoryModelUnload: unary(async (req) => {
      if (!req.model_name) throw invalid("RepositoryModelUnload: model_name is required");
      await engine.repository.unload(req.model_name);
      return {};
    }),
    ModelInfer: unary(respond),
    ModelStreamInfer: (call) => {
      // Models here are not decoupled: as Triton does for such models, the
      // stream answers in request order, whatever order runs finish in (a
      // fast model's answer waits behind a slower earlier request's).
      const queue: Array<{ msg?: ModelStreamInferResponse }> = [];
      let ended = false;
      const flush = () => {
        while (queue.length && queue[0].msg) {
          const msg = queue.shift()!.msg!;
          if (!call.cancelled && call.writable) call.write(msg);
        }
        if (ended && queue.length === 0) call.end();
      };
      call.on("data", (req: ModelInferRequest__Output) => {
        const slot: { msg?: ModelStreamInferResponse } = {};
        queue.push(slot);
        respond(req)
          .then(
            (infer_response): ModelStreamInferResponse => ({ error_message: "", infer_response }),
            (e): ModelStreamInferResponse => {
              const { code, details } = toGrpcError(e);
              if (code === status.INTERNAL) log.error({ err: details }, "stream request failed");
              // In-band: the stream stays open; the response names the request.
              return { error_message: details, infer_response: { id: req.id, model_name: req.model_name, model_version: req.model_version } };
            },
          )
          .then((msg) => {
            slot.msg = msg;
            flush();
          });
      });
      call.on("end", () => {
        ended = true;
        flush();
      });
      call.on("error", () => {});
    },
  };

  const SERVICES = new Set(["", "inference.GRPCInferenceService"]);
  const healthStatus = (service: string) => (SERVICES.has(service) ? (engine.repository.ready ? "SERVING" : "NOT_SERVING") : undefined);
  // Check only: Triton answers Watch UNIMPLEMENTED, and so does a method
  // missing here (grpc-js's default handler).
  const health: Pick<HealthHandlers, "Check"> = {
    Check: (call, callback) => {
      const s = healthStatus(call.request.service);
      if (!s) callback({ code: status.NOT_FOUND, details: `unknown service '${call.request.service}'`, name: "Error", message: "" });
      else callback(null, { status: s });
    },
  };

  const server = new grpc.Server({
    "grpc.max_receive_message_length": -1,
    "grpc.max_send_message_length": -1,
    "grpc.keepalive_permit_without_calls": 1,
    "grpc.http2.min_ping_interval_without_data_ms": 5000,
    // Channelz bookkeeping costs per call and nothing here reads it.
    "grpc.enable_channelz": 0,
  });
  server.addService(protos.GRPCInferenceService.service, handlers);
  server.addService(protos.Health.service, health as grpc.UntypedServiceImplementation);
  widenReceiveWindow(server);
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        `${o.host}:${o.port}`,
        o.tls
          ? grpc.ServerCredentials.createSsl(null, [{ cert_chain: o.tls.certChain, private_key: o.tls.privateKey }], false)
          : grpc.ServerCredentials.createInsecure(),
        (err, p) => (err ? reject(err) : resolve(p)),
      ),
    );
  } catch (e) {
    await engine.close();
    await metrics?.close();
    throw new Error(`cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`);
  }
  widenSessionWindows(server);
  log.info({ port, metricsPort, repository: o.repository, threads: o.threads, tls: Boolean(o.tls), models: [...engine.models.keys()] }, "inference server listening");
  let registration: Registration | undefined;
  let redis: Redis | undefined;
  let registered: string | undefined;
  if (o.register) {
    const host = o.host === "0.0.0.0" || o.host === "::" ? hostname() : o.host;
    registered = o.register.advertise ?? `${host}:${port}`;
    const prefix = o.register.prefix ?? (process.env.TIMESLIDE_PREFIX || "timeslide");
    try {
      redis = createRedis(o.register.redis, { lazyConnect: true, maxRetriesPerRequest: 2 }); // rediss:// CA from TIMESLIDE_REDIS_CA
      redis.on("error", (e: Error) => log.warn({ err: e.message }, "redis"));
      await redis.connect();
      registration = await registerServer(redis, prefix, registered, o.register.ttlSeconds);
      log.info({ endpoint: registered, prefix, ttl: o.register.ttlSeconds }, "registered in Redis");
    } catch (e) {
      redis?.disconnect();
      server.forceShutdown();
      await engine.close();
      await metrics?.close();
      // The URL may carry the Redis password: never in a message.
      throw new Error(redactUrls(`cannot register in Redis at ${o.register.redis}: ${(e as Error).message}`));
    }
  }
  let closed = false;
  return {
    port,
    engine,
    registered,
    metricsPort,
    async close() {
      if (closed) return;
      closed = true;
      // Leave the registry first so no new client picks this server.
      await registration?.stop().catch(() => {});
      await redis?.quit().catch(() => {});
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(t);
          resolve();
        });
      });
      await engine.close();
      await metrics?.close();
    },
  };
}

export { InferenceError };

// grpc-js servers advertise Node's default 64 KiB HTTP/2 receive window and
// offer no option to raise it (grpc-node PR #3058), so every 64 KiB of a
// request waits for a WINDOW_UPDATE. Requests here are hundreds of KiB of
// strain: widen the window through grpc-js internals where they are as
// expected, and leave the default where they are not.
const RECEIVE_WINDOW = 16 * 1024 * 1024;

function widenReceiveWindow(server: grpc.Server): void {
  if (process.env.TIMESLIDE_DEFAULT_H2_WINDOW) return;
  const common = (server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } }).commonServerOptions;
  if (common) common.settings = { ...common.settings, initialWindowSize: RECEIVE_WINDOW };
}

function widenSessionWindows(server: grpc.Server): void {
  if (process.env.TIMESLIDE_DEFAULT_H2_WINDOW) return;
  const servers = (server as unknown as { http2Servers?: Map<import("node:events").EventEmitter, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h2 of servers.keys())
    h2.on("session", (session: import("node:http2").Http2Session) => {
      try {
        session.setLocalWindowSize(RECEIVE_WINDOW);
      } catch {
        // an older Node: the per-stream window above still applies
      }
    });
}
