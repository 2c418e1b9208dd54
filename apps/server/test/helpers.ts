// A client built only from the protocol: @grpc/proto-loader on the .proto
// files of packages/kserve/proto, none of the kserve client code.
import { cpSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { buildDetector, buildSnapshotter, GraphBuilder, mulberry32, snapshotSize } from "@timeslide/model-repo";

const PROTO_DIR = fileURLToPath(new URL("../../../packages/kserve/proto/", import.meta.url));

export function protocolClients(address: string) {
  const def = protoLoader.loadSync(["grpc_service.proto", "health.proto"], {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const opts = { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1 };
  const inference = new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), opts);
  const health = new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure(), opts);
  const call = (client: any, method: string, req: object): Promise<any> =>
    new Promise((resolve, reject) => client[method](req, (err: grpc.ServiceError | null, res: any) => (err ? reject(err) : resolve(res))));
  return {
    inference,
    health,
    rpc: (method: string, req: object = {}) => call(inference, method, req),
    check: (service: string) => call(health, "Check", { service }),
    close() {
      inference.close();
      health.close();
    },
  };
}

export const f32raw = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
export const rawf32 = (b: Buffer) => {
  const copy = new Uint8Array(b.byteLength);
  copy.set(b);
  return new Float32Array(copy.buffer);
};

export const GEOM = { nIfo: 2, kernel: 32, stride: 4, batch: 4, nTemplates: 3, templateLength: 16 };
export const STATE = snapshotSize(GEOM); // 44
export const UPDATE = GEOM.stride * GEOM.batch; // 16

/** Uniform noise in [-1, 1), deterministic for the seed. */
export function noise(n: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

/** The windows (GEOM) the snapshotter forms from a stream (ifo-major [nIfo][T]) whose updates end at `end`; zero before the start. */
export function fullWindows(stream: Float32Array[], end: number): Float32Array {
  const { nIfo, kernel, stride, batch } = GEOM;
  const out = new Float32Array(batch * nIfo * kernel);
  for (let j = 0; j < batch; j++)
    for (let i = 0; i < nIfo; i++)
      for (let t = 0; t < kernel; t++) {
        const pos = end - STATE + j * stride + t;
        out[(j * nIfo + i) * kernel + t] = pos < 0 ? 0 : stream[i][pos];
      }
  return out;
}

/** Update number `step` of a stream: [nIfo, UPDATE] samples. */
export function updateAt(stream: Float32Array[], step: number): Float32Array {
  const u = new Float32Array(GEOM.nIfo * UPDATE);
  for (let i = 0; i < GEOM.nIfo; i++) u.set(stream[i].subarray(step * UPDATE, (step + 1) * UPDATE), i * UPDATE);
  return u;
}

/**
 * A Triton-layout repository with configs written by hand (not by our
 * writer): a detector with max_batch_size and dynamic batching, the
 * snapshotter with implicit state and a START control, a streaming
 * ensemble, and a model whose config leaves inputs/outputs to auto-complete.
 * The snapshotter has `snapshotterInstances` instances (default 8): as on
 * Triton, each is one sequence slot (Direct, max_batch_size 0), and the
 * tests keep several sequences open at once on one server.
 */
export function handWrittenRepository(opts: { idleUs?: number; snapshotterInstances?: number } = {}): string {
  const repo = mkdtempSync(join(tmpdir(), "server-repo-"));
  const put = (path: string, data: string | Uint8Array) => {
    mkdirSync(join(repo, path, ".."), { recursive: true });
    writeFileSync(join(repo, path), data);
  };
  put("detector/1/model.onnx", buildDetector(GEOM));
  put(
    "detector/config.pbtxt",
    `name: "detector"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  { name: "whitened" data_type: TYPE_FP32 dims: [ ${GEOM.nIfo}, ${GEOM.kernel} ] }
]
output [
  { name: "detection_statistic" data_type: TYPE_FP32 dims: [ 1 ] }
]
dynamic_batching { max_queue_delay_microseconds: 100 }
instance_group [ { kind: KIND_CPU count: 1 } ]
`,
  );
  put("snapshotter/1/model.onnx", buildSnapshotter(GEOM));
  put(
    "snapshotter/config.pbtxt",
    `# streaming snapshotter: keeps kernel + (batch-1)*stride samples per ifo
name: "snapshotter"
backend: "onnxruntime"
max_batch_size: 0
input { name: "update" data_type: TYPE_FP32 dims: [1, ${GEOM.nIfo}, ${UPDATE}] }
output { name: "windows" data_type: TYPE_FP32 dims: [${GEOM.batch}, ${GEOM.nIfo}, ${GEOM.kernel}] }
sequence_batching {
  max_sequence_idle_microseconds: ${opts.idleUs ?? 60000000}
  direct { }
  control_input [
    { name: "START" control [ { kind: CONTROL_SEQUENCE_START fp32_false_true: [ 0, 1 ] } ] }
  ]
  state [
    {
      input_name: "snapshot"
      output_name: "snapshot_out"
      data_type: TYPE_FP32
      dims: [ 1, ${GEOM.nIfo}, ${STATE} ]
      initial_state: { data_type: TYPE_FP32 dims: [ 1, ${GEOM.nIfo}, ${STATE} ] zero_data: true name: "zeros" }
    }
  ]
}
instance_group [ { kind: KIND_CPU count: ${opts.snapshotterInstances ?? 8} } ]
`,
  );
  put(
    "detector-stream/config.pbtxt",
    `name: "detector-stream"
platform: "ensemble"
max_batch_size: 0
input [ { name: "update" data_type: TYPE_FP32 dims: [ 1, ${GEOM.nIfo}, ${UPDATE} ] } ]
output [ { name: "detection_statistic" data_type: TYPE_FP32 dims: [ ${GEOM.batch}, 1 ] } ]
ensemble_scheduling {
  step [
    {
      model_name: "snapshotter"
      model_version: -1
      input_map { key: "update" value: "update" }
      output_map { key: "windows" value: "snapshot_windows" }
    },
    {
      model_name: "detector"
      model_version: -1
      input_map { key: "whitened" value: "snapshot_windows" }
      output_map { key: "detection_statistic" value: "detection_statistic" }
    }
  ]
}
`,
  );
  mkdirSync(join(repo, "detector-stream", "1"), { recursive: true });
  const g = new GraphBuilder("scale");
  const x = g.input("x", "float32", ["batch", 3]);
  g.output(g.node("Mul", [x, g.constant(new Float32Array([2]), [1])]), "y", "float32", ["batch", 3]);
  put("scale/1/model.onnx", g.toBytes());
  put("scale/config.pbtxt", 'platform: "onnxruntime_onnx"\nmax_batch_size: 4\n');
  return repo;
}

/** Copies a model's version folder to a new version number. */
export function copyVersion(repo: string, model: string, from: number, to: number): void {
  cpSync(join(repo, model, String(from)), join(repo, model, String(to)), { recursive: true });
}

/** A bidirectional stream whose responses are collected by request id. */
export function openStream(client: any) {
  const stream = client.ModelStreamInfer();
  const waiting = new Map<string, (r: any) => void>();
  const early = new Map<string, any>();
  stream.on("data", (r: any) => {
    const id = r.infer_response?.id ?? "";
    const w = waiting.get(id);
    if (w) {
      waiting.delete(id);
      w(r);
    } else early.set(id, r);
  });
  return {
    send(req: object) {
      stream.write(req);
    },
    response(id: string): Promise<any> {
      if (early.has(id)) {
        const r = early.get(id);
        early.delete(id);
        return Promise.resolve(r);
      }
      return new Promise((resolve) => waiting.set(id, resolve));
    },
    end(): Promise<void> {
      return new Promise((resolve) => {
        stream.on("end", () => resolve());
        stream.on("status", () => resolve());
        stream.end();
      });
    },
  };
}
