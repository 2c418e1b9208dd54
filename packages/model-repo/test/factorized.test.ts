import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import {
  addFactorized,
  buildChirpEncoder,
  buildDetector,
  buildSlideGather,
  buildSumHead,
  checkRepository,
  GraphBuilder,
  mulberry32,
  readFactorized,
  readModel,
  writeDemoRepository,
} from "../src/index.js";

const session = (bytes: Uint8Array) => ort.InferenceSession.create(bytes, { intraOpNumThreads: 1 });
const noise = (n: number, seed: number) => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (r() - 0.5) * 4);
};

describe("factorized models", () => {
  it("slide-gather pairs detector i's embedding offset[s, i] + w for every shift s and output w", async () => {
    const nIfo = 3;
    const D = 2;
    const E = 10;
    const emb = Float32Array.from({ length: nIfo * E * D }, (_, k) => k); // value encodes (i, e, d)
    const offsets = [
      [0, 3, 6],
      [2, 0, 1],
    ];
    const W = 4;
    const s = await session(buildSlideGather(nIfo, D));
    const out = await s.run({
      embedding: new ort.Tensor("float32", emb, [nIfo, E, D]),
      offset: new ort.Tensor("int64", BigInt64Array.from(offsets.flat(), BigInt), [offsets.length, nIfo]),
      count: new ort.Tensor("int64", BigInt64Array.from([BigInt(W)]), [1]),
    });
    const pairs = out.pairs;
    expect(pairs.dims).toEqual([offsets.length * W, nIfo, D]);
    const data = pairs.data as Float32Array;
    for (let si = 0; si < offsets.length; si++)
      for (let w = 0; w < W; w++)
        for (let i = 0; i < nIfo; i++)
          for (let d = 0; d < D; d++) expect(data[((si * W + w) * nIfo + i) * D + d]).toBe((i * E + offsets[si][i] + w) * D + d);
    // an offset past the block is refused, not read from the next detector
    await expect(
      s.run({
        embedding: new ort.Tensor("float32", emb, [nIfo, E, D]),
        offset: new ort.Tensor("int64", BigInt64Array.from([8n, 0n, 0n]), [1, nIfo]), // detector 0 runs into detector 1
        count: new ort.Tensor("int64", BigInt64Array.from([3n]), [1]),
      }),
    ).rejects.toThrow();
  });

  it("the demo pair (chirp encoder + sum head) computes the whole demo detector to float32 rounding", async () => {
    const kernel = 64;
    const nIfo = 2;
    const B = 16;
    const x = noise(B * nIfo * kernel, 7);
    const whole = await session(buildDetector({ nIfo, kernel }));
    const enc = await session(buildChirpEncoder({ kernel }));
    const head = await session(buildSumHead(nIfo));
    const y = (await whole.run({ whitened: new ort.Tensor("float32", x, [B, nIfo, kernel]) })).detection_statistic.data as Float32Array;
    const emb = new Float32Array(B * nIfo);
    for (let i = 0; i < nIfo; i++) {
      const xi = new Float32Array(B * kernel);
      for (let b = 0; b < B; b++) xi.set(x.subarray((b * nIfo + i) * kernel, (b * nIfo + i + 1) * kernel), b * kernel);
      const e = (await enc.run({ whitened: new ort.Tensor("float32", xi, [B, 1, kernel]) })).embedding.data as Float32Array;
      for (let b = 0; b < B; b++) emb[b * nIfo + i] = e[b];
    }
    const z = (await head.run({ embedding: new ort.Tensor("float32", emb, [B, nIfo, 1]) })).detection_statistic.data as Float32Array;
    for (let b = 0; b < B; b++) expect(z[b]).toBeCloseTo(y[b], 5);
  });

  it("the demo repository declares the pair; the repository checks clean and readFactorized finds its parts", () => {
    const dir = mkdtempSync(join(tmpdir(), "factorized-"));
    const r = writeDemoRepository(dir, { nIfo: 2, kernel: 64, stride: 16, batch: 8, factorized: { ifos: ["H1", "L1"] } });
    expect(r.slides).toBe("detector-slides");
    const check = checkRepository(dir);
    expect(check.models.filter((m) => m.problems.length)).toEqual([]);
    const cfg = readModel(dir, "detector-slides").config;
    const pair = readFactorized(cfg, ["H1", "L1"]);
    expect(pair).toEqual({ slides: "detector-slides", encoders: ["detector-encoder-stream", "detector-encoder-stream"], embeddingDim: 1, detectors: 2, head: "detector-head", whole: "detector-stream" });
    expect(() => readFactorized(cfg, ["H1", "L1", "V1"])).toThrow(/fuses 2 detectors; the campaign has 3/);
    expect(readFactorized(readModel(dir, "detector").config, ["H1", "L1"])).toBeUndefined();
    expect(readFileSync(join(dir, "detector-slides", "config.pbtxt"), "utf8")).toMatch(/factorized_embedding_dim/);
  });

  it("refuses a head that does not fit the encoders, naming both shapes", () => {
    const dir = mkdtempSync(join(tmpdir(), "factorized-"));
    const g = new GraphBuilder("head");
    const e = g.input("emb", "float32", ["batch", 2, 4]);
    g.output(g.node("ReduceSum", [e, g.int64s([1, 2])], { keepdims: 0 }), "y", "float32", ["batch"]);
    expect(() => addFactorized(dir, "bad", { encoder: buildChirpEncoder({ kernel: 64 }), head: g.toBytes(), ifos: ["H1", "L1"], kernel: 64, stride: 16, batch: 8 })).toThrow(
      /input 'emb' has shape \[\?, 2, 4\]; the encoders give \[batch, 2, 1\]/,
    );
  });
});
