// A new backend is one implementation of `Backend` and one registration
// line: Triton's `identity` backend (each OUTPUTn is a copy of INPUTn; Triton
// ships it for testing), added here, loads from a plain config behind the
// same scheduler (dynamic batching, statistics) as the ONNX models, while a
// platform nobody registered is refused at load, naming what is served.
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceClient, outputOf } from "@timeslide/kserve";
import { writeModelConfig, type ModelConfig } from "@timeslide/model-repo";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { registerBackend, startServer, type Backend, type RunningServer } from "../src/index.js";

const identityBackend: Backend = {
  async load(ctx) {
    const outputs = ctx.model.config.output ?? [];
    return [
      {
        concurrency: 2,
        async run(feeds) {
          const t0 = performance.now();
          const out = new Map([...feeds].filter(([name]) => name.startsWith("INPUT")).map(([name, t]) => [name.replace("INPUT", "OUTPUT"), t]));
          for (const o of outputs) if (!out.has(o.name)) throw new Error(`identity: no input for ${o.name}`);
          return { outputs: out, inferNs: Math.round((performance.now() - t0) * 1e6) };
        },
        async close() {},
      },
    ];
  },
};

function repository(): string {
  const repo = mkdtempSync(join(tmpdir(), "backends-"));
  const model = (name: string, backend: string): ModelConfig => ({
    name,
    backend,
    max_batch_size: 8,
    input: [{ name: "INPUT0", data_type: "TYPE_FP32", dims: [3] }],
    output: [{ name: "OUTPUT0", data_type: "TYPE_FP32", dims: [3] }],
    dynamic_batching: {},
  });
  for (const [name, backend] of [
    ["echo", "identity"],
    ["scripted", "python"],
  ]) {
    writeModelConfig(repo, model(name, backend));
    mkdirSync(join(repo, name, "1"), { recursive: true });
  }
  return repo;
}

describe("backends", () => {
  let server: RunningServer;
  let client: InferenceClient;
  beforeAll(async () => {
    registerBackend(["identity"], identityBackend); // the one line
    server = await startServer({ repository: repository(), host: "127.0.0.1", port: 0, threads: 1, logger: pino({ level: "silent" }) });
    client = new InferenceClient(`127.0.0.1:${server.port}`);
    // the repository is loaded when startServer resolves; with one model failed the server is not ready (Triton's strict readiness)
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it("serves a model of a newly registered platform through the scheduler", async () => {
    const data = Float32Array.of(1, 2, 3, 4, 5, 6);
    const res = await Promise.all([0, 1].map(() => client.infer({ model: "echo", inputs: [{ name: "INPUT0", datatype: "FP32", shape: [2, 3], data }] })));
    for (const r of res) {
      expect(outputOf(r, "OUTPUT0").shape).toEqual([2, 3]);
      expect(Array.from(outputOf(r, "OUTPUT0").data as ArrayLike<number>)).toEqual(Array.from(data));
    }
    const stats = await client.modelStatistics("echo");
    expect(Number(stats[0].inference_count)).toBe(4);
  });

  it("refuses a platform no backend serves, naming the platforms served", async () => {
    const index = await client.repositoryIndex();
    const scripted = index.find((m) => m.name === "scripted");
    expect(scripted?.state).toBe("UNAVAILABLE");
    expect(scripted?.reason).toMatch(/platform 'python' is not served here/);
    expect(index.find((m) => m.name === "echo")?.state).toBe("READY");
    expect(await client.modelReady("echo")).toBe(true);
    expect(await client.serverReady()).toBe(false);
  });
});
