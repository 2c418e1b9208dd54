// Ensembles of arbitrary tensors, as factorized models build them (issue
// 16): an INT64 input, steps with max_batch_size 0 and -1 dims, and a step
// whose output's leading dimension (S*W rows) is far above one request's
// batch and feeds both a step without a batch dimension and a batched step
// with dynamic batching. Tiny real ONNX graphs; answers checked against the
// same arithmetic in JavaScript.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceClient, outputOf } from "@timeslide/kserve";
import { addEnsemble, addOnnxModel, GraphBuilder, type ModelConfig } from "@timeslide/model-repo";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../src/index.js";
import { noise } from "./helpers.js";

const N_IFO = 2;
const D = 8; // samples per row
const ROWS = 64; // rows of the table the gather reads
const SW = 3000; // shifts × windows: rows gathered per request
const HEAD_BATCH = 4096; // the batched head's max_batch_size (≥ SW)

function factorizedRepo(): string {
  const repo = mkdtempSync(join(tmpdir(), "ensemble-"));
  // gather: rows [S*W, n_ifo, D] = table[index]; no batch dimension, INT64 index.
  const g = new GraphBuilder("gather");
  const table = g.input("table", "float32", ["rows", N_IFO, D]);
  const index = g.input("index", "int64", ["sw"]);
  g.output(g.node("Gather", [table, index], { axis: 0 }), "rows", "float32", ["sw", N_IFO, D]);
  addOnnxModel(
    repo,
    {
      name: "gather",
      platform: "onnxruntime_onnx",
      max_batch_size: 0,
      input: [
        { name: "table", data_type: "TYPE_FP32", dims: [-1, N_IFO, D] },
        { name: "index", data_type: "TYPE_INT64", dims: [-1] },
      ],
      output: [{ name: "rows", data_type: "TYPE_FP32", dims: [-1, N_IFO, D] }],
    },
    g.toBytes(),
    1,
  );
  // head: score [S*W] = sum of each row; no batch dimension.
  const h = new GraphBuilder("head");
  const rows = h.input("rows", "float32", ["sw", N_IFO, D]);
  h.output(h.node("ReduceSum", [rows, h.int64s([1, 2])], { keepdims: 0 }), "score", "float32", ["sw"]);
  addOnnxModel(
    repo,
    {
      name: "head",
      platform: "onnxruntime_onnx",
      max_batch_size: 0,
      input: [{ name: "rows", data_type: "TYPE_FP32", dims: [-1, N_IFO, D] }],
      output: [{ name: "score", data_type: "TYPE_FP32", dims: [-1] }],
    },
    h.toBytes(),
    1,
  );
  // scale: the rows doubled, batched (its batch is the S*W rows), with dynamic batching.
  const s = new GraphBuilder("scale");
  const x = s.input("rows", "float32", ["batch", N_IFO, D]);
  s.output(s.node("Mul", [x, s.constant(Float32Array.of(2), [1])]), "doubled", "float32", ["batch", N_IFO, D]);
  addOnnxModel(
    repo,
    {
      name: "scale",
      platform: "onnxruntime_onnx",
      max_batch_size: HEAD_BATCH,
      input: [{ name: "rows", data_type: "TYPE_FP32", dims: [N_IFO, D] }],
      output: [{ name: "doubled", data_type: "TYPE_FP32", dims: [N_IFO, D] }],
      dynamic_batching: {},
    },
    s.toBytes(),
    1,
  );
  const ensemble: ModelConfig = {
    name: "factorized",
    platform: "ensemble",
    max_batch_size: 0,
    input: [
      { name: "table", data_type: "TYPE_FP32", dims: [-1, N_IFO, D] },
      { name: "index", data_type: "TYPE_INT64", dims: [-1] },
    ],
    output: [
      { name: "score", data_type: "TYPE_FP32", dims: [-1] },
      { name: "doubled", data_type: "TYPE_FP32", dims: [-1, N_IFO, D] },
    ],
    ensemble_scheduling: {
      step: [
        { model_name: "gather", model_version: -1, input_map: { table: "table", index: "index" }, output_map: { rows: "gathered" } },
        { model_name: "head", model_version: -1, input_map: { rows: "gathered" }, output_map: { score: "score" } },
        { model_name: "scale", model_version: -1, input_map: { rows: "gathered" }, output_map: { doubled: "doubled" } },
      ],
    },
  };
  addEnsemble(repo, ensemble);
  return repo;
}

describe("ensemble of arbitrary tensors (factorized models)", () => {
  let server: RunningServer;
  let client: InferenceClient;

  beforeAll(async () => {
    server = await startServer({ repository: factorizedRepo(), host: "127.0.0.1", port: 0, threads: 1, logger: pino({ level: "silent" }) });
    client = new InferenceClient(`127.0.0.1:${server.port}`);
    await client.waitForReady({ model: "factorized", timeoutMs: 10_000 });
  });
  afterAll(async () => {
    client?.close();
    await server?.close();
  });

  it("gathers S*W rows by an INT64 index and feeds them to an unbatched and a batched step", async () => {
    const table = noise(ROWS * N_IFO * D, 16);
    const requests = [0, 1, 2].map((k) => BigInt64Array.from({ length: SW }, (_, i) => BigInt((i * 7 + k * 13) % ROWS)));
    // Three requests at once: the batched step may merge them (dynamic batching over 3 × S*W rows would pass its max: it must not).
    const answers = await Promise.all(
      requests.map((index) =>
        client.infer({
          model: "factorized",
          inputs: [
            { name: "table", datatype: "FP32", shape: [ROWS, N_IFO, D], data: table },
            { name: "index", datatype: "INT64", shape: [SW], data: index },
          ],
        }),
      ),
    );
    const row = N_IFO * D;
    answers.forEach((r, k) => {
      const score = outputOf(r, "score");
      const doubled = outputOf(r, "doubled");
      expect(score.shape).toEqual([SW]);
      expect(doubled.shape).toEqual([SW, N_IFO, D]);
      const s = score.data as Float32Array;
      const d = doubled.data as Float32Array;
      for (let i = 0; i < SW; i++) {
        const src = Number(requests[k][i]) * row;
        let sum = 0;
        for (let j = 0; j < row; j++) {
          sum += table[src + j];
          expect(d[i * row + j]).toBe(2 * table[src + j]);
        }
        expect(s[i]).toBeCloseTo(sum, 4);
      }
    });
    const stats = await client.modelStatistics("scale");
    const batches = stats[0].batch_stats.map((b) => Number(b.batch_size));
    expect(Math.max(...batches)).toBeLessThanOrEqual(HEAD_BATCH);
    expect(batches).toContain(SW);
  });

  it("refuses an index of the wrong data type, naming the step's model", async () => {
    await expect(
      client.infer({
        model: "factorized",
        inputs: [
          { name: "table", datatype: "FP32", shape: [ROWS, N_IFO, D], data: noise(ROWS * N_IFO * D, 1) },
          { name: "index", datatype: "INT32", shape: [2], data: Int32Array.of(0, 1) },
        ],
      }),
    ).rejects.toMatchObject({ details: expect.stringMatching(/input 'index' data-type is 'INT32', but model 'factorized' expects 'INT64'/) });
  });
});
