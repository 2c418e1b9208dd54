import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { startServer } from "../src/index.js";
import { f32raw, GEOM, handWrittenRepository, protocolClients, UPDATE } from "./helpers.js";

const metric = (text: string, name: string, labels: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(" ").pop()) : NaN;
};

describe("Prometheus metrics", () => {
  it("count requests, batch sizes, queue and compute time, active sequences", async () => {
    const server = await startServer({ repository: handWrittenRepository(), host: "127.0.0.1", port: 0, metricsPort: 0, logger: pino({ level: "silent" }) });
    const c = protocolClients(`127.0.0.1:${server.port}`);
    try {
      expect(server.metricsPort).toBeGreaterThan(0);
      const x = new Float32Array(3 * GEOM.nIfo * GEOM.kernel);
      for (let i = 0; i < 2; i++) {
        await c.rpc("ModelInfer", {
          model_name: "detector",
          inputs: [{ name: "whitened", datatype: "FP32", shape: [3, GEOM.nIfo, GEOM.kernel] }],
          raw_input_contents: [f32raw(x)],
        });
      }
      await c.rpc("ModelInfer", { model_name: "detector" }).catch(() => {});
      await c.rpc("ModelInfer", {
        model_name: "detector-stream",
        parameters: { sequence_id: { int64_param: "3" }, sequence_start: { bool_param: true } },
        inputs: [{ name: "update", datatype: "FP32", shape: [1, GEOM.nIfo, UPDATE] }],
        raw_input_contents: [f32raw(new Float32Array(GEOM.nIfo * UPDATE))],
      });
      const res = await fetch(`http://127.0.0.1:${server.metricsPort}/metrics`);
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(metric(text, "timeslide_server_requests_total", 'model="detector",version="1",outcome="success"')).toBe(3); // 2 direct + 1 ensemble step
      expect(metric(text, "timeslide_server_requests_total", 'outcome="failure"')).toBe(1);
      expect(metric(text, "timeslide_server_inferences_total", 'model="detector"')).toBe(3 + 3 + GEOM.batch);
      expect(metric(text, "timeslide_server_batch_size_bucket", 'le="2",model="detector"')).toBe(0);
      expect(metric(text, "timeslide_server_batch_size_count", 'model="detector"')).toBe(3);
      expect(metric(text, "timeslide_server_compute_seconds_count", 'model="snapshotter"')).toBe(1);
      expect(metric(text, "timeslide_server_queue_seconds_count", 'model="detector"')).toBe(3);
      expect(metric(text, "timeslide_server_sequences_active", 'model="snapshotter"')).toBe(1);
      expect((await fetch(`http://127.0.0.1:${server.metricsPort}/other`)).status).toBe(404);
    } finally {
      c.close();
      await server.close();
    }
  });
});
