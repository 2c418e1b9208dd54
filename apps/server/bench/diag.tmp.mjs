import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { InferenceClient, PROTO_DIR } from "@timeslide/kserve";
import { writeDemoRepository } from "@timeslide/model-repo";
import { startServer } from "@timeslide/server";
import * as ort from "onnxruntime-node";
import { pino } from "pino";
console.log("TS_WIN", process.env.TS_WIN, "TS_FRAME", process.env.TS_FRAME);
const B = Number(process.env.B ?? 32), T = Number(process.env.T ?? 2), N = Number(process.env.N ?? 100);
const dir = mkdtempSync(join(tmpdir(), "diag-"));
writeDemoRepository(dir, { nIfo: 2, kernel: 1024, stride: 64, batch: 16, nTemplates: 8, templateLength: 256 });
const path = join(dir, "detector/1/model.onnx");
const x = new Float32Array(B * 2 * 1024).map(() => Math.random());
async function time(label, fn) { for (let i = 0; i < 5; i++) await fn(); const t = performance.now(); for (let i = 0; i < N; i++) await fn(); const ms = (performance.now() - t) / N; console.log(label.padEnd(40), ms.toFixed(3), "ms"); return ms; }
for (const spin of ["1", "0"]) {
  const s = await ort.InferenceSession.create(path, { intraOpNumThreads: T, interOpNumThreads: 1, executionMode: "sequential", graphOptimizationLevel: "all", extra: { session: { intra_op: { allow_spinning: spin } } } });
  await time(`raw main-thread spin=${spin}`, () => s.run({ whitened: new ort.Tensor("float32", x, [B, 2, 1024]) }));
  await s.release();
}
const server = await startServer({ repository: dir, host: "127.0.0.1", port: 0, threads: T, logger: pino({ level: "warn" }) });
const eng = server.engine;
const inst = eng.models.get("detector").versions.get(1).instances[0];
await time("worker round trip B=1", () => inst.run(new Map([["whitened", { datatype: "FP32", dims: [1, 2, 1024], data: x.slice(0, 2048) }]])));
await time("engine.infer B=1", () => eng.infer("detector", "", { inputs: new Map([["whitened", { datatype: "FP32", dims: [1, 2, 1024], data: x.slice(0, 2048) }]]) }));
await time("worker round trip (OrtInstance.run)", () => inst.run(new Map([["whitened", { datatype: "FP32", dims: [B, 2, 1024], data: x.slice() }]])));
const st = eng.models.get("detector").versions.get(1).stats;
await time("engine.infer (no gRPC)", () => eng.infer("detector", "", { inputs: new Map([["whitened", { datatype: "FP32", dims: [B, 2, 1024], data: x.slice() }]]) }));
console.log("  worker-measured infer avg", (st.compute_infer.ns / st.compute_infer.count / 1e6).toFixed(3), "ms");
const def = protoLoader.loadSync(["grpc_service.proto"], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def);
for (const win of [undefined]) {
  const raw = new pkg.inference.GRPCInferenceService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1, ...(win ? { "grpc-node.flow_control_window": win } : {}) });
  const req = { model_name: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [B, 2, 1024] }], raw_input_contents: [Buffer.from(x.buffer)] };
  const req1 = { model_name: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [1, 2, 1024] }], raw_input_contents: [Buffer.from(x.buffer, 0, 8192)] };
  await time(`proto-loader client B=1`, () => new Promise((res, rej) => raw.ModelInfer(req1, (e, r) => (e ? rej(e) : res(r)))));
  await time(`proto-loader client win=${win ?? "default"}`, () => new Promise((res, rej) => raw.ModelInfer(req, (e, r) => (e ? rej(e) : res(r)))));
  raw.close();
}
const c = new InferenceClient(`127.0.0.1:${server.port}`);
const kreq = { model: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [B, 2, 1024], data: x }] };
await time("kserve InferenceClient", () => c.infer(kreq));
const small = { model: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [1, 2, 1024], data: x.subarray(0, 2048) }] };
await time("kserve InferenceClient B=1", () => c.infer(small));
c.close(); await server.close();
