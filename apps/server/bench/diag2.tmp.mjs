import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { PROTO_DIR } from "@timeslide/kserve";
import { writeDemoRepository } from "@timeslide/model-repo";
import { startServer } from "@timeslide/server";
import { pino } from "pino";
const N = Number(process.env.N ?? 300);
console.log("TS_NOCZ", process.env.TS_NOCZ);
const dir = mkdtempSync(join(tmpdir(), "diag-"));
writeDemoRepository(dir, { nIfo: 2, kernel: 1024, stride: 64, batch: 16, nTemplates: 8, templateLength: 256 });
async function time(label, fn) { for (let i = 0; i < 20; i++) await fn(); const t = performance.now(); for (let i = 0; i < N; i++) await fn(); const ms = (performance.now() - t) / N; console.log(label.padEnd(40), ms.toFixed(3), "ms"); }
const server = await startServer({ repository: dir, host: "127.0.0.1", port: 0, threads: 2, logger: pino({ level: "warn" }) });
const def = protoLoader.loadSync(["grpc_service.proto"], { includeDirs: [PROTO_DIR], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const pkg = grpc.loadPackageDefinition(def);
const c = new pkg.inference.GRPCInferenceService(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure(), { "grpc.max_receive_message_length": -1, "grpc.max_send_message_length": -1, ...(process.env.TS_NOCZ ? { "grpc.enable_channelz": 0 } : {}) });
const call = (m, r) => new Promise((res, rej) => c[m](r, (e, x) => (e ? rej(e) : res(x))));
await time("ServerLive", () => call("ServerLive", {}));
for (const kb of [8, 64, 256, 1024]) {
  const n = kb * 256;
  const b = n / 2048;
  const req = { model_name: "detector", inputs: [{ name: "whitened", datatype: "FP32", shape: [b, 2, 1024] }], raw_input_contents: [Buffer.alloc(n * 4)] };
  await time(`ModelInfer ${kb} KB (B=${b})`, () => call("ModelInfer", req));
}
const st = server.engine.models.get("detector").versions.get(1).stats;
console.log("server-side success avg", (st.success.ns / st.success.count / 1e6).toFixed(3));
c.close(); await server.close();
