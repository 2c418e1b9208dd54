// A user's factorized pair, from graphs we did not design: per-detector
// encoders with odd tensor names and D = 3, an MLP-like head; written with
// addFactorized, listed, checked, and served as the slides model computes
// head(encoder_H1(x_w), encoder_L1(x_{w+s})). Bad pairs are refused naming
// the file, the tensor and the shapes; a hand-edited declaration is caught
// by the check.
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { addFactorized, checkRepository, float, formatListing, GraphBuilder, listRepository, mulberry32, readModel } from "../src/index.js";

const K = 32;
const session = (bytes: Uint8Array | string) => ort.InferenceSession.create(bytes as Uint8Array, { intraOpNumThreads: 1 });
const rand = (n: number, seed: number) => {
  const r = mulberry32(seed);
  return Float32Array.from({ length: n }, () => r() - 0.5);
};

/** a one-layer "CNN": Conv (D channels) → ReLU → global max pool → [batch, D], tensor names of an exporter */
function encoder(D: number, seed: number, kernel = K, names = { in: "strain.in:0", out: "feat/z" }): Uint8Array {
  const g = new GraphBuilder("user-encoder");
  const x = g.input(names.in, "float32", ["N", 1, kernel]);
  const y = g.node("Relu", [g.node("Conv", [x, g.constant(rand(D * 5, seed), [D, 1, 5], "float32")], { kernel_shape: [5] })]);
  g.output(g.node("ReduceMax", [y], { axes: [2], keepdims: 0 }), names.out, "float32", ["N", D]);
  return g.toBytes();
}

/** an MLP head: flatten [N, n, D] → Gemm → Tanh → Gemm → [N, 1] */
function head(nIfo: number, D: number, hidden = 4): Uint8Array {
  const g = new GraphBuilder("user-head");
  const e = g.input("emb.in", "float32", ["N", nIfo, D]);
  const f = g.node("Flatten", [e], { axis: 1 });
  const h = g.node("Tanh", [g.node("Gemm", [f, g.constant(rand(nIfo * D * hidden, 9), [nIfo * D, hidden], "float32"), g.constant(rand(hidden, 10), [hidden], "float32")], { alpha: float(1), beta: float(1) })]);
  g.output(g.node("Gemm", [h, g.constant(rand(hidden, 11), [hidden, 1], "float32")], { alpha: float(1), beta: float(1) }), "score", "float32", ["N", 1]);
  return g.toBytes();
}

function files(dir: string, D = 3) {
  const f = { h1: join(dir, "enc_h1.onnx"), l1: join(dir, "enc_l1.onnx"), head: join(dir, "head.onnx") };
  writeFileSync(f.h1, encoder(D, 1));
  writeFileSync(f.l1, encoder(D, 2));
  writeFileSync(f.head, head(2, D));
  return f;
}

describe("a user's factorized pair", () => {
  it("per-detector encoders with odd tensor names, D = 3, an MLP head: written, listed, checked clean, and the slides model computes head(encoders) for every shift", async () => {
    const dir = mkdtempSync(join(tmpdir(), "user-pair-"));
    const f = files(dir);
    const repo = join(dir, "models");
    const r = addFactorized(repo, "mynet", { encoder: { H1: f.h1, L1: f.l1 }, head: f.head, ifos: ["H1", "L1"], kernel: K, stride: 8, batch: 4 });
    expect(r.embeddingDim).toBe(3);
    expect(r.encoders.H1.ensemble).toBe("mynet-encoder-h1-stream");
    expect(r.encoders.L1.ensemble).toBe("mynet-encoder-l1-stream");
    expect(checkRepository(repo).models.flatMap((m) => m.problems)).toEqual([]);
    const listing = listRepository(repo);
    expect(listing.models.find((m) => m.name === "mynet-slides")!.pair).toEqual({
      embedding_dim: 3,
      detectors: 2,
      encoders: { H1: "mynet-encoder-h1-stream", L1: "mynet-encoder-l1-stream" },
      head: "mynet-head",
    });
    expect(formatListing(listing)).toMatch(/factorized pair: 2 detectors, D = 3; encoders H1: mynet-encoder-h1-stream, L1: mynet-encoder-l1-stream; head mynet-head/);

    // the slides model's two steps, from the repository's files: gather, then the user's head
    const E = 10;
    const x = [rand(E * K, 21), rand(E * K, 22)];
    const encs = [await session(f.h1), await session(f.l1)];
    const emb = new Float32Array(2 * E * 3);
    for (let i = 0; i < 2; i++) emb.set((await encs[i].run({ "strain.in:0": new ort.Tensor("float32", x[i], [E, 1, K]) }))["feat/z"].data as Float32Array, i * E * 3);
    const gather = await session(readFileSync(join(repo, "mynet-slide-gather", "1", "model.onnx")));
    const served = await session(readFileSync(join(repo, "mynet-head", "1", "model.onnx")));
    const offsets = [0, 0, 0, 3, 2, 0]; // shifts (0, 0), (0, 3), (2, 0)
    const W = 5;
    const pairs = await gather.run({
      embedding: new ort.Tensor("float32", emb, [2, E, 3]),
      offset: new ort.Tensor("int64", BigInt64Array.from(offsets, BigInt), [3, 2]),
      count: new ort.Tensor("int64", BigInt64Array.from([BigInt(W)]), [1]),
    });
    const got = (await served.run({ "emb.in": pairs.pairs })).score.data as Float32Array;
    const h = await session(f.head);
    for (let s = 0; s < 3; s++)
      for (let w = 0; w < W; w++) {
        const one = new Float32Array(6);
        for (let i = 0; i < 2; i++) one.set(emb.subarray((i * E + offsets[2 * s + i] + w) * 3, (i * E + offsets[2 * s + i] + w + 1) * 3), i * 3);
        const want = (await h.run({ "emb.in": new ort.Tensor("float32", one, [1, 2, 3]) })).score.data as Float32Array;
        expect(got[s * W + w]).toBeCloseTo(want[0], 6);
      }
  });

  it("refuses encoders that disagree on D, a head over another detector count or D, a missing per-detector encoder, naming file, tensor and shape", () => {
    const dir = mkdtempSync(join(tmpdir(), "user-pair-"));
    const f = files(dir);
    const repo = join(dir, "models");
    const base = { head: f.head, ifos: ["H1", "L1"], kernel: K, stride: 8, batch: 4 };
    const d4 = join(dir, "enc_d4.onnx");
    writeFileSync(d4, encoder(4, 3));
    expect(() => addFactorized(repo, "a", { ...base, encoder: { H1: f.h1, L1: d4 } })).toThrow(
      new RegExp(`the encoders disagree on D: encoder ${f.h1} \\(H1\\) output 'feat/z' \\[batch, 3\\] but encoder ${d4} \\(L1\\) output 'feat/z' \\[batch, 4\\]`),
    );
    const h3 = join(dir, "head3.onnx");
    writeFileSync(h3, head(3, 3));
    expect(() => addFactorized(repo, "b", { ...base, head: h3, encoder: f.h1 })).toThrow(
      new RegExp(`head ${h3}: input 'emb.in' has shape \\[\\?, 3, 3\\]; the encoders give \\[batch, 2, 3\\] \\(2 detectors: H1, L1; encoder ${f.h1} output 'feat/z' \\[batch, 3\\]\\)`),
    );
    expect(() => addFactorized(repo, "c", { ...base, encoder: { H1: f.h1 } })).toThrow(/no encoder for L1/);
    const wrongKernel = join(dir, "enc_k.onnx");
    writeFileSync(wrongKernel, encoder(3, 4, 64));
    expect(() => addFactorized(repo, "d", { ...base, encoder: wrongKernel })).toThrow(new RegExp(`encoder ${wrongKernel}: input 'strain.in:0' has shape \\[\\?, 1, 64\\]; an encoder sees one detector's windows \\[batch, 1, 32\\]`));
  });

  it("the check catches a hand-edited declaration: D, detector count, a detector without encoder, a missing whole model", () => {
    const dir = mkdtempSync(join(tmpdir(), "user-pair-"));
    const f = files(dir);
    const repo = join(dir, "models");
    addFactorized(repo, "mynet", { encoder: { H1: f.h1, L1: f.l1 }, head: f.head, ifos: ["H1", "L1"], kernel: K, stride: 8, batch: 4 });
    const cfgPath = join(repo, "mynet-slides", "config.pbtxt");
    const good = readFileSync(cfgPath, "utf8");
    const problems = () => checkRepository(repo).models.find((m) => m.name === "mynet-slides")!.problems.join("\n");
    expect(readModel(repo, "mynet-slides").config.parameters?.factorized_embedding_dim?.string_value).toBe("3");

    writeFileSync(cfgPath, good.replace(/(key: "factorized_embedding_dim"\s*value \{\s*string_value: )"3"/, '$1"4"'));
    expect(problems()).toMatch(/encoder stream 'mynet-encoder-h1-stream' \(H1\): output 'feat\/z' \[4, 3\] gives D = 3; the pair declares factorized_embedding_dim 4/);
    expect(problems()).toMatch(/head 'mynet-head' input 'emb.in' \[-1, 2, 3\] takes D = 3; the encoders give factorized_embedding_dim 4/);

    writeFileSync(cfgPath, good.replace(/(key: "factorized_detectors"\s*value \{\s*string_value: )"2"/, '$1"3"'));
    expect(problems()).toMatch(/per-detector encoders for H1, L1 \(2\) but the head fuses 3 detectors/);
    expect(problems()).toMatch(/head 'mynet-head' input 'emb.in' \[-1, 2, 3\] fuses 2 detectors; the pair declares factorized_detectors 3/);

    expect(good).toMatch(/factorized_encoder_L1/);
    writeFileSync(cfgPath, good.replace(/parameters \{\s*key: "factorized_encoder_L1"\s*value \{\s*string_value: "[^"]*"\s*\}\s*\}/, ""));
    expect(problems()).toMatch(/per-detector encoders for H1 \(1\) but the head fuses 2 detectors: a detector without factorized_encoder_<IFO> has no encoder/);

    writeFileSync(cfgPath, `${good}\nparameters {\n  key: "factorized_whole_model"\n  value {\n    string_value: "mynet-stream"\n  }\n}\n`);
    expect(problems()).toMatch(/whole model 'mynet-stream': .*mynet-stream/);
  });
});
