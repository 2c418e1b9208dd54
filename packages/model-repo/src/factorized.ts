// Factorized (late-fusion) models, DESIGN.md "Factorized models": an
// encoder applied to each detector alone and a head that fuses the
// detectors' embeddings. Served as
//   <name>-encoder         the encoder, [batch, 1, kernel] → [batch, D]
//                          (or <name>-encoder-<ifo>, one per detector)
//   <name>-encoder-stream  snapshotter (1 detector) + encoder: a detector's
//                          update [1, 1, stride·batch] → embedding [batch, D]
//   <name>-head            the head, [batch, n_ifo, D] → [batch, 1]
//   <name>-slide-gather    pairs embeddings for many shifts (below)
//   <name>-slides          ensemble slide-gather + head: the pair's entry
//                          point; its config's parameters declare the pair
//
// The slides signature. A worker computes a job's embeddings once per
// detector, then asks for the statistic of many shifts at once:
//   embedding [n_ifo, E, D]  FP32   a block of E consecutive embeddings per detector
//   offset    [S, n_ifo]     INT64  for shift s, detector i's first embedding in the block
//   count     [1]            INT64  W: outputs per shift
//   → detection_statistic [S·W, 1], row s·W + w = head(embedding[i, offset[s, i] + w] for each i)
// Why this shape: a time slide only re-pairs embeddings, so one request
// carries a block of embeddings once and names any number of shifts by
// their offsets (S·n_ifo integers); only S·W statistics come back. The
// pairing is an ONNX Gather, so it runs on the server next to the head
// (Triton ensembles keep the [S·W, n_ifo, D] pairs on the server), and the
// user's head is served untouched. S·W per request is bounded by the head's
// max_batch_size (the ensemble passes the pairs as one batch).
import { readFileSync } from "node:fs";
import type { ModelConfig, ModelTensorConfig } from "./config.js";
import { GraphBuilder, readOnnxSignature, type OnnxSignature } from "./onnx.js";
import { addEnsemble, addOnnxModel } from "./repository.js";
import { addModel, addStreaming, type StreamResult } from "./manage.js";
import { PAIR_PARAMETERS, ensembleProblems, pairProblems, repositoryLookup } from "./check.js";

/** Keys of the slides ensemble's `parameters` that declare a factorized pair (README: "Factorized models"). */
export const FACTORIZED_PARAMETERS = PAIR_PARAMETERS;

/** The slides model's tensor names (the signature above). */
export const SLIDES_TENSORS = { embedding: "embedding", offset: "offset", count: "count", pairs: "pairs", statistic: "detection_statistic" } as const;

/** Default head max_batch_size: the most (shift, output) pairs one slides request may ask for. */
export const DEFAULT_HEAD_MAX_BATCH_SIZE = 65536;

/** A factorized pair as its slides config declares it. */
export interface FactorizedPair {
  /** the slides ensemble */
  slides: string;
  /** each detector's encoder streaming ensemble, in the campaign's detector order */
  encoders: string[];
  embeddingDim: number;
  detectors: number;
  head?: string;
  whole?: string;
}

/**
 * The pair declared by a slides config, for the campaign's detectors; undefined
 * when the config declares none; an Error naming the parameter when the
 * declaration is incomplete or does not fit the campaign.
 */
export function readFactorized(config: ModelConfig, ifos: readonly string[]): FactorizedPair | undefined {
  const p = config.parameters ?? {};
  const get = (k: string) => p[k]?.string_value;
  const K = FACTORIZED_PARAMETERS;
  const declared = Object.keys(p).some((k) => k.startsWith("factorized_"));
  if (!declared) return undefined;
  const where = `model '${config.name}' parameters`;
  const D = Number(get(K.embeddingDim));
  if (!(Number.isInteger(D) && D >= 1)) throw new Error(`${where}: ${K.embeddingDim} "${get(K.embeddingDim) ?? ""}": expected a whole number >= 1`);
  const n = Number(get(K.detectors));
  if (!(Number.isInteger(n) && n >= 1)) throw new Error(`${where}: ${K.detectors} "${get(K.detectors) ?? ""}": expected a whole number >= 1`);
  if (n !== ifos.length) throw new Error(`${where}: the head fuses ${n} detectors; the campaign has ${ifos.length} (${ifos.join(", ")})`);
  const shared = get(K.encoder);
  const encoders = ifos.map((ifo) => get(K.encoderPrefix + ifo) ?? shared);
  const missing = ifos.filter((_, i) => !encoders[i]);
  if (missing.length) throw new Error(`${where}: no encoder for ${missing.join(", ")}: set ${K.encoder} (shared) or ${missing.map((i) => K.encoderPrefix + i).join(", ")}`);
  return { slides: config.name, encoders: encoders as string[], embeddingDim: D, detectors: n, head: get(K.head), whole: get(K.whole) };
}

/**
 * The slide-gather graph (signature above): inputs embedding [n_ifo, E, D],
 * offset [S, n_ifo], count [1]; output pairs [S·count, n_ifo, D]. An offset
 * past the block fails the request (GatherND's bounds check) rather than
 * read another detector's embeddings.
 */
export function buildSlideGather(nIfo: number, D: number): Uint8Array {
  const T = SLIDES_TENSORS;
  const g = new GraphBuilder("slide-gather");
  const emb = g.input(T.embedding, "float32", [nIfo, "E", D]);
  const off = g.input(T.offset, "int64", ["S", nIfo]);
  const count = g.input(T.count, "int64", [1]);
  const zero = g.constant(BigInt64Array.from([0n]), [], "int64");
  const one = g.constant(BigInt64Array.from([1n]), [], "int64");
  const W = g.node("Squeeze", [count, g.int64s([0])]); // scalar
  const w = g.node("Range", [zero, W, one]); // [W]
  // (i, offset[s, i] + w) for each [s, w, i]: GatherND checks both against the block's bounds
  const t = g.node("Add", [g.node("Unsqueeze", [off, g.int64s([1])]), g.node("Unsqueeze", [w, g.int64s([0, 2])])]); // [S, W, n_ifo]
  const t4 = g.node("Unsqueeze", [t, g.int64s([3])]); // [S, W, n_ifo, 1]
  const ifo = g.node("Expand", [g.constant(BigInt64Array.from({ length: nIfo }, (_, i) => BigInt(i)), [1, 1, nIfo, 1], "int64"), g.node("Shape", [t4])]);
  const idx = g.node("Concat", [ifo, t4], { axis: 3 }); // [S, W, n_ifo, 2]
  const pairs = g.node("GatherND", [emb, idx]); // [S, W, n_ifo, D]
  const out = g.node("Reshape", [pairs, g.int64s([-1, nIfo, D])]);
  g.output(out, T.pairs, "float32", ["pairs", nIfo, D]);
  return g.toBytes(`slide-gather: ${nIfo} detectors, ${D} floats per embedding`);
}

type OnnxSource = string | Uint8Array;

export interface AddFactorizedOptions {
  /** one encoder for every detector, or one per detector (keys: the campaign's detector names) */
  encoder: OnnxSource | Record<string, OnnxSource>;
  head: OnnxSource;
  /** detector names, in the campaign's order (the head's detector axis) */
  ifos: string[];
  /** window length in samples */
  kernel: number;
  /** samples between windows */
  stride: number;
  /** windows per encoder streaming update */
  batch: number;
  /** the equivalent whole model's streaming ensemble (already in the repository), declared in the pair */
  whole?: string;
  /** head max_batch_size: most (shift, output) pairs per slides request (default DEFAULT_HEAD_MAX_BATCH_SIZE) */
  headMaxBatchSize?: number;
  /** encoder max_batch_size (default max(batch, 128)) */
  encoderMaxBatchSize?: number;
  /** snapshotter instances (streams) per server for each encoder stream */
  streams?: number;
  sequenceIdleMicroseconds?: number;
  instances?: { count: number; kind: "KIND_CPU" | "KIND_GPU" };
}

export interface AddFactorizedResult {
  slides: string;
  encoders: Record<string, StreamResult>;
  head: string;
  gather: string;
  embeddingDim: number;
}

const bytesOf = (s: OnnxSource) => (typeof s === "string" ? readFileSync(s) : s);
const where = (s: OnnxSource, what: string) => (typeof s === "string" ? s : what);
const shape = (d: readonly number[]) => `[${d.map((x) => (x < 0 ? "?" : x)).join(", ")}]`;

/** D of an encoder graph: one input [batch, 1, kernel], one output [batch, D]. */
function encoderDim(sig: OnnxSignature, file: string, kernel: number): number {
  if (sig.inputs.length !== 1 || sig.outputs.length !== 1)
    throw new Error(`encoder ${file}: expected one input [batch, 1, ${kernel}] and one output [batch, D]; it has ${sig.inputs.length} inputs and ${sig.outputs.length} outputs`);
  const [i] = sig.inputs;
  const [o] = sig.outputs;
  if (i.dims.length !== 3 || (i.dims[1] !== 1 && i.dims[1] !== -1) || (i.dims[2] !== kernel && i.dims[2] !== -1))
    throw new Error(`encoder ${file}: input '${i.name}' has shape ${shape(i.dims)}; an encoder sees one detector's windows [batch, 1, ${kernel}]`);
  if (o.dims.length !== 2 || !(o.dims[1] >= 1))
    throw new Error(`encoder ${file}: output '${o.name}' has shape ${shape(o.dims)}; expected [batch, D] with a fixed D`);
  return o.dims[1];
}

/**
 * Adds a factorized pair under `name` (the layout at the top of this file)
 * and returns its names. Encoders and head are checked against each other:
 * the same D, a head over ifos.length detectors returning one statistic.
 */
export function addFactorized(repository: string, name: string, o: AddFactorizedOptions): AddFactorizedResult {
  const ifos = o.ifos;
  if (!ifos.length) throw new Error(`factorized '${name}': no detectors`);
  const perIfo = !(typeof o.encoder === "string" || o.encoder instanceof Uint8Array);
  const sources: Array<[string, OnnxSource]> = perIfo
    ? ifos.map((ifo) => {
        const s = (o.encoder as Record<string, OnnxSource>)[ifo];
        if (!s) throw new Error(`factorized '${name}': no encoder for ${ifo} (per-detector encoders: ${Object.keys(o.encoder).join(", ")})`);
        return [`${name}-encoder-${ifo.toLowerCase()}`, s];
      })
    : [[`${name}-encoder`, o.encoder as OnnxSource]];
  let D = 0;
  let first = "";
  const encoderMbs = o.encoderMaxBatchSize ?? Math.max(o.batch, 128);
  for (const [i, [model, src]] of sources.entries()) {
    const sig = readOnnxSignature(bytesOf(src), where(src, model));
    const d = encoderDim(sig, where(src, model), o.kernel);
    const desc = `encoder ${where(src, model)}${perIfo ? ` (${ifos[i]})` : ""} output '${sig.outputs[0].name}' [batch, ${d}]`;
    if (D && d !== D) throw new Error(`factorized '${name}': the encoders disagree on D: ${first} but ${desc}`);
    if (!D) first = desc;
    D = d;
  }
  const head = `${name}-head`;
  const hs = readOnnxSignature(bytesOf(o.head), where(o.head, head));
  if (hs.inputs.length !== 1 || hs.outputs.length !== 1) throw new Error(`head ${where(o.head, head)}: expected one input [batch, ${ifos.length}, ${D}] and one output [batch, 1]`);
  const hi = hs.inputs[0].dims;
  if (hi.length !== 3 || (hi[1] !== ifos.length && hi[1] !== -1) || (hi[2] !== D && hi[2] !== -1))
    throw new Error(
      `head ${where(o.head, head)}: input '${hs.inputs[0].name}' has shape ${shape(hi)}; the encoders give [batch, ${ifos.length}, ${D}] ` +
        `(${ifos.length} detectors: ${ifos.join(", ")}; ${first})`,
    );
  const ho = hs.outputs[0].dims;
  if (!((ho.length === 2 && (ho[1] === 1 || ho[1] === -1)) || ho.length === 1))
    throw new Error(`head ${where(o.head, head)}: output '${hs.outputs[0].name}' has shape ${shape(ho)}; expected one statistic per window [batch, 1]`);

  if (o.whole) {
    // before anything is written: a refused pair leaves the repository as it was
    const w = repositoryLookup(repository)(o.whole);
    const inp = w.config?.input?.[0];
    const U = o.stride * o.batch;
    if (!w.config) throw new Error(`factorized '${name}': whole model '${o.whole}': ${w.error ?? "no such model in the repository"} (add it and its stream first: model-repo add, model-repo stream)`);
    if (!inp || inp.dims.length !== 3 || Number(inp.dims[1]) !== ifos.length || Number(inp.dims[2]) !== U)
      throw new Error(
        `factorized '${name}': whole model '${o.whole}' input ${inp ? `'${inp.name}' [${inp.dims.join(", ")}]` : "missing"}; ` +
          `expected the streaming update [1, ${ifos.length}, ${U}] (${ifos.length} detectors, stride·batch ${o.stride}·${o.batch})`,
      );
  }

  // Write: encoders and their streams, the head, the gather, the slides ensemble.
  const encoders: Record<string, StreamResult> = {};
  for (const [i, [model, src]] of sources.entries()) {
    addModel(repository, model, src, { maxBatchSize: encoderMbs, instances: o.instances });
    const stream = addStreaming(repository, `${model}-stream`, {
      model,
      kernel: o.kernel,
      stride: o.stride,
      batch: o.batch,
      nIfo: 1,
      streams: o.streams,
      sequenceIdleMicroseconds: o.sequenceIdleMicroseconds,
      kind: o.instances?.kind,
    });
    if (perIfo) encoders[ifos[i]] = stream;
    else for (const ifo of ifos) encoders[ifo] = stream;
  }
  const headCfg = addModel(repository, head, o.head, { maxBatchSize: o.headMaxBatchSize ?? DEFAULT_HEAD_MAX_BATCH_SIZE, instances: o.instances }).config;
  const gather = `${name}-slide-gather`;
  const T = SLIDES_TENSORS;
  const gatherCfg: ModelConfig = {
    name: gather,
    backend: "onnxruntime",
    platform: "onnxruntime_onnx",
    max_batch_size: 0,
    input: [
      { name: T.embedding, data_type: "TYPE_FP32", dims: [ifos.length, -1, D] },
      { name: T.offset, data_type: "TYPE_INT64", dims: [-1, ifos.length] },
      { name: T.count, data_type: "TYPE_INT64", dims: [1] },
    ],
    output: [{ name: T.pairs, data_type: "TYPE_FP32", dims: [-1, ifos.length, D] }],
  };
  if (o.instances) gatherCfg.instance_group = [{ count: 1, kind: o.instances.kind }];
  addOnnxModel(repository, gatherCfg, buildSlideGather(ifos.length, D), 1);
  const headIn = (headCfg.input ?? [])[0] as ModelTensorConfig;
  const headOut = (headCfg.output ?? [])[0] as ModelTensorConfig;
  const K = FACTORIZED_PARAMETERS;
  const parameters: Record<string, { string_value: string }> = {
    [K.embeddingDim]: { string_value: String(D) },
    [K.detectors]: { string_value: String(ifos.length) },
    [K.head]: { string_value: head },
  };
  if (perIfo) for (const ifo of ifos) parameters[K.encoderPrefix + ifo] = { string_value: encoders[ifo].ensemble };
  else parameters[K.encoder] = { string_value: encoders[ifos[0]].ensemble };
  if (o.whole) parameters[K.whole] = { string_value: o.whole };
  const slides: ModelConfig = {
    name: `${name}-slides`,
    platform: "ensemble",
    max_batch_size: 0,
    input: gatherCfg.input,
    output: [{ name: T.statistic, data_type: headOut.data_type, dims: [-1, 1] }],
    ensemble_scheduling: {
      step: [
        { model_name: gather, model_version: -1, input_map: { [T.embedding]: T.embedding, [T.offset]: T.offset, [T.count]: T.count }, output_map: { [T.pairs]: T.pairs } },
        { model_name: head, model_version: -1, input_map: { [headIn.name]: T.pairs }, output_map: { [headOut.name]: T.statistic } },
      ],
    },
    parameters,
  };
  const lookup = repositoryLookup(repository);
  const withGather = (n: string) => (n === gather ? { config: gatherCfg } : lookup(n));
  const problems = [...ensembleProblems(slides, withGather), ...pairProblems(slides, withGather)];
  if (problems.length) throw new Error(`factorized '${name}': ${problems.join("; ")}`);
  addEnsemble(repository, slides);
  return { slides: slides.name, encoders, head, gather, embeddingDim: D };
}
