import { mkdirSync } from "node:fs";
import { GraphBuilder, float } from "./onnx.js";
import type { ModelConfig } from "./config.js";
import type { GpuOptions } from "./repository.js";
import { addModel, addStreaming } from "./manage.js";
import { addFactorized } from "./factorized.js";
import { maxLightTravelTime } from "@timeslide/segments";
import { buildBankDetector, buildBankEncoder, buildBankHead, type BankOptions } from "./bank.js";

/** Deterministic PRNG (mulberry32) so the demo weights are the same everywhere. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface DetectorOptions {
  nIfo: number;
  /** Window length in samples. */
  kernel: number;
  /** Templates in the bank (default 8). */
  nTemplates?: number;
  /** Template length in samples (default kernel / 2, at most kernel). */
  templateLength?: number;
  /** Seed of the template parameters (default 1). */
  seed?: number;
}

/**
 * A bank of unit-norm chirp templates (rising-frequency, tapered sinusoids;
 * frequencies in cycles per sample). Matched filtering whitened data with a
 * unit-norm template gives an SNR with unit variance in white noise.
 */
export function chirpTemplates(nTemplates: number, length: number, seed = 1): Float32Array[] {
  const rand = mulberry32(seed);
  const bank: Float32Array[] = [];
  for (let k = 0; k < nTemplates; k++) {
    const f0 = 0.01 + 0.05 * rand();
    const f1 = f0 + 0.05 + 0.2 * rand();
    const phase0 = 2 * Math.PI * rand();
    const t = new Float64Array(length);
    let phase = phase0;
    let norm = 0;
    for (let i = 0; i < length; i++) {
      const x = i / length;
      const f = f0 + (f1 - f0) * x * x;
      phase += 2 * Math.PI * f;
      // Amplitude grows towards merger, then a short taper to zero.
      const taper = x > 0.9 ? 0.5 * (1 + Math.cos((Math.PI * (x - 0.9)) / 0.1)) : 1;
      const amp = Math.pow(0.2 + x, 1.5) * taper * Math.sin((Math.PI * Math.min(x, 0.1)) / 0.2);
      t[i] = amp * Math.sin(phase);
      norm += t[i] * t[i];
    }
    const scale = 1 / Math.sqrt(norm || 1);
    bank.push(Float32Array.from(t, (v) => v * scale));
  }
  return bank;
}

/**
 * The demo detector: input `whitened [batch, n_ifo, kernel]` → output
 * `detection_statistic [batch, 1]`. Each detector's whitened strain is
 * matched-filtered (grouped Conv) with a chirp template bank; the squared SNR
 * is maximised over time and templates per detector, summed over detectors
 * (Gemm) and square-rooted: a network SNR. Injected chirps score high,
 * Gaussian noise near sqrt(n_ifo · 2 log(kernel · templates)).
 */
export function buildDetector(opts: DetectorOptions): Uint8Array {
  const nIfo = opts.nIfo;
  const kernel = opts.kernel;
  const nT = opts.nTemplates ?? 8;
  const L = Math.min(kernel, opts.templateLength ?? Math.max(1, Math.floor(kernel / 2)));
  const bank = chirpTemplates(nT, L, opts.seed ?? 1);
  const w = new Float32Array(nIfo * nT * L);
  for (let i = 0; i < nIfo; i++) for (let k = 0; k < nT; k++) w.set(bank[k], (i * nT + k) * L);

  const g = new GraphBuilder("detector");
  const x = g.input("whitened", "float32", ["batch", nIfo, kernel]);
  const weight = g.constant(w, [nIfo * nT, 1, L], "float32", "template_bank");
  const snr = g.node("Conv", [x, weight], { group: nIfo, kernel_shape: [L], strides: [1], pads: [0, 0] });
  const snr2 = g.node("Mul", [snr, snr]);
  const peak = g.node("ReduceMax", [snr2], { axes: [2], keepdims: 0 }); // [B, n_ifo·T]
  const perIfo = g.node("Reshape", [peak, g.int64s([0, nIfo, nT])]);
  const best = g.node("ReduceMax", [perIfo], { axes: [2], keepdims: 0 }); // [B, n_ifo]
  const ones = g.constant(new Float32Array(nIfo).fill(1), [nIfo, 1], "float32", "ifo_weights");
  const network = g.node("Gemm", [best, ones], { alpha: float(1), beta: float(1) }); // [B, 1]
  const stat = g.node("Sqrt", [network]);
  g.output(stat, "detection_statistic", "float32", ["batch", 1]);
  return g.toBytes(`chirp-bank detector: ${nT} templates of ${L} samples, ${nIfo} ifos, kernel ${kernel}`);
}

/**
 * The demo detector's per-detector half (DESIGN.md, Factorized models):
 * input `whitened [batch, 1, kernel]` → `embedding [batch, 1]`, the
 * detector's largest squared SNR over time and templates. With
 * `buildSumHead` it computes exactly what `buildDetector` does.
 */
export function buildChirpEncoder(opts: Omit<DetectorOptions, "nIfo">): Uint8Array {
  const kernel = opts.kernel;
  const nT = opts.nTemplates ?? 8;
  const L = Math.min(kernel, opts.templateLength ?? Math.max(1, Math.floor(kernel / 2)));
  const bank = chirpTemplates(nT, L, opts.seed ?? 1);
  const w = new Float32Array(nT * L);
  for (let k = 0; k < nT; k++) w.set(bank[k], k * L);
  const g = new GraphBuilder("encoder");
  const x = g.input("whitened", "float32", ["batch", 1, kernel]);
  const snr = g.node("Conv", [x, g.constant(w, [nT, 1, L], "float32", "template_bank")], { kernel_shape: [L], strides: [1], pads: [0, 0] });
  const peak = g.node("ReduceMax", [g.node("Mul", [snr, snr])], { axes: [2], keepdims: 0 }); // [B, T]
  const best = g.node("ReduceMax", [peak], { axes: [1], keepdims: 1 }); // [B, 1]
  g.output(best, "embedding", "float32", ["batch", 1]);
  return g.toBytes(`chirp-bank encoder: ${nT} templates of ${L} samples, kernel ${kernel}`);
}

/** The demo detector's head: `embedding [batch, n_ifo, 1]` → network SNR `[batch, 1]` (sum over detectors, square root). */
export function buildSumHead(nIfo: number): Uint8Array {
  const g = new GraphBuilder("head");
  const e = g.input("embedding", "float32", ["batch", nIfo, 1]);
  const flat = g.node("Reshape", [e, g.int64s([0, nIfo])]);
  const ones = g.constant(new Float32Array(nIfo).fill(1), [nIfo, 1], "float32", "ifo_weights");
  const network = g.node("Gemm", [flat, ones], { alpha: float(1), beta: float(1) }); // as buildDetector sums
  g.output(g.node("Sqrt", [network]), "detection_statistic", "float32", ["batch", 1]);
  return g.toBytes(`sum head: ${nIfo} detectors`);
}

export interface SnapshotterOptions {
  nIfo: number;
  kernel: number;
  stride: number;
  /** Windows produced per update. */
  batch: number;
}

/** Samples of state kept per detector: kernel + (batch − 1)·stride. */
export function snapshotSize(o: { kernel: number; stride: number; batch: number }): number {
  return o.kernel + (o.batch - 1) * o.stride;
}

/**
 * The snapshotter: inputs `update [1, n_ifo, stride·batch]`, implicit state
 * `snapshot [1, n_ifo, S]` and control `START [1]` (fp32; 1 at sequence
 * start zeroes the state, so it works with or without an initial_state);
 * outputs `snapshot_out` = concat(state, update)[:, :, stride·batch:] and
 * `windows [batch, n_ifo, kernel]`, window j starting at j·stride of the new state.
 */
export function buildSnapshotter(o: SnapshotterOptions): Uint8Array {
  const { nIfo, kernel, stride, batch } = o;
  const S = snapshotSize(o);
  const U = stride * batch;
  const g = new GraphBuilder("snapshotter");
  const update = g.input("update", "float32", [1, nIfo, U]);
  const snapshot = g.input("snapshot", "float32", [1, nIfo, S]);
  const start = g.input("START", "float32", [1]);
  const keep = g.node("Sub", [g.constant(new Float32Array([1]), [1], "float32"), start]);
  const past = g.node("Mul", [snapshot, keep]);
  const joined = g.node("Concat", [past, update], { axis: 2 });
  const next = g.node("Slice", [joined, g.int64s([U]), g.int64s([U + S]), g.int64s([2])]);
  let windows: string;
  if (kernel % stride === 0) {
    // Windows are runs of kernel/stride consecutive stride-long blocks: cut the
    // state into blocks, detector-major, and lay kernel/stride shifted views
    // of it side by side. Plain copies, no index tensor: the snapshotter runs
    // once per request and its output is the biggest tensor of the stream.
    const q = kernel / stride;
    const blocks = g.node("Reshape", [next, g.int64s([nIfo, batch + q - 1, stride])]);
    const byBlock = g.node("Transpose", [blocks], { perm: [1, 0, 2] }); // [batch + q − 1, n_ifo, stride]
    const views = Array.from({ length: q }, (_, j) => g.node("Slice", [byBlock, g.int64s([j]), g.int64s([j + batch]), g.int64s([0])]));
    windows = q === 1 ? views[0] : g.node("Concat", views, { axis: 2 }); // [batch, n_ifo, kernel]
  } else {
    const flat = g.node("Reshape", [next, g.int64s([nIfo * S])]);
    const idx = new BigInt64Array(batch * nIfo * kernel);
    for (let j = 0; j < batch; j++) for (let c = 0; c < nIfo; c++) for (let t = 0; t < kernel; t++) idx[(j * nIfo + c) * kernel + t] = BigInt(c * S + j * stride + t);
    windows = g.node("Gather", [flat, g.constant(idx, [batch, nIfo, kernel], "int64", "window_index")], { axis: 0 });
  }
  g.output(next, "snapshot_out", "float32", [1, nIfo, S]);
  g.output(windows, "windows", "float32", [batch, nIfo, kernel]);
  return g.toBytes(`snapshotter: ${nIfo} ifos, kernel ${kernel}, stride ${stride}, batch ${batch}`);
}

/**
 * Default snapshotter instances, i.e. streams (sequences) one server carries
 * at once. On Triton a Direct sequence model with max_batch_size 0 has one
 * sequence slot per instance; further sequences wait in a backlog until a
 * slot frees (END, or the idle limit). 8 = two default workers per server
 * (`timeslide worker`: 1 job × 4 sequences each); aframe runs 6 snapshotter
 * instances per GPU. Size it as workers × jobs per worker × sequences per
 * job ÷ servers.
 */
export const DEFAULT_STREAMS = 8;

export interface DemoRepositoryOptions extends DetectorOptions {
  stride: number;
  /** Windows per streaming update. */
  batch: number;
  /** Detector max_batch_size (default max(batch, 128)). */
  maxBatchSize?: number;
  /** Detector instances per server (instance_group count; default 1). */
  instances?: number;
  /**
   * Write for a Triton GPU site: the detector through `forGpu` (KIND_GPU,
   * `instances` per GPU unless gpu.count says, TensorRT FP16 unless
   * tensorrtFp16: false) and the snapshotter on the GPU too (KIND_GPU, no
   * accelerator: it only copies the state), as hermes writes them.
   */
  gpu?: GpuOptions;
  /** Detector dynamic_batching (default true): concurrent requests merge into one run. */
  dynamicBatching?: boolean;
  /** Snapshotter instances = sequence slots per server (default DEFAULT_STREAMS). */
  streams?: number;
  /** Idle sequences are dropped after this (default 60 s). */
  sequenceIdleMicroseconds?: number;
  detectorName?: string;
  snapshotterName?: string;
  ensembleName?: string;
  /**
   * Also write the detector as a factorized pair (`<detector>-slides` and
   * its parts, addFactorized) for these detectors, with the whole stream
   * declared as its equivalent whole model.
   */
  factorized?: { ifos: string[] };
  /**
   * The physical bank (bank.ts) instead of the random chirp bank: the
   * detector, encoder and head are buildBankDetector / buildBankEncoder /
   * buildBankHead with these options and the kernel above.
   */
  bank?: BankOptions & { coincidence?: number };
}

export interface DemoRepository {
  detector: string;
  snapshotter: string;
  ensemble: string;
  stateSize: number;
  updateSize: number;
  /** the factorized pair's slides ensemble, when written */
  slides?: string;
}

export function detectorConfig(name: string, nIfo: number, kernel: number, maxBatchSize: number, dynamicBatching = true): ModelConfig {
  const config: ModelConfig = {
    name,
    backend: "onnxruntime",
    platform: "onnxruntime_onnx",
    max_batch_size: maxBatchSize,
    input: [{ name: "whitened", data_type: "TYPE_FP32", dims: [nIfo, kernel] }],
    output: [{ name: "detection_statistic", data_type: "TYPE_FP32", dims: [1] }],
    instance_group: [{ count: 1, kind: "KIND_CPU" }],
  };
  if (dynamicBatching) config.dynamic_batching = { max_queue_delay_microseconds: 0 };
  return config;
}

export function snapshotterConfig(name: string, o: SnapshotterOptions, idleMicroseconds: number): ModelConfig {
  const S = snapshotSize(o);
  return {
    name,
    backend: "onnxruntime",
    platform: "onnxruntime_onnx",
    max_batch_size: 0,
    input: [{ name: "update", data_type: "TYPE_FP32", dims: [1, o.nIfo, o.stride * o.batch] }],
    output: [{ name: "windows", data_type: "TYPE_FP32", dims: [o.batch, o.nIfo, o.kernel] }],
    sequence_batching: {
      max_sequence_idle_microseconds: idleMicroseconds,
      direct: {},
      control_input: [{ name: "START", control: [{ kind: "CONTROL_SEQUENCE_START", fp32_false_true: [0, 1] }] }],
      state: [
        {
          input_name: "snapshot",
          output_name: "snapshot_out",
          data_type: "TYPE_FP32",
          dims: [1, o.nIfo, S],
          initial_state: [{ name: "zeros", data_type: "TYPE_FP32", dims: [1, o.nIfo, S], zero_data: true }],
        },
      ],
    },
    instance_group: [{ count: 1, kind: "KIND_CPU" }],
  };
}

export function streamingEnsembleConfig(
  name: string,
  snapshotter: string,
  model: string,
  o: SnapshotterOptions,
  modelInput = "whitened",
  modelOutput = "detection_statistic",
): ModelConfig {
  return {
    name,
    platform: "ensemble",
    max_batch_size: 0,
    input: [{ name: "update", data_type: "TYPE_FP32", dims: [1, o.nIfo, o.stride * o.batch] }],
    output: [{ name: modelOutput, data_type: "TYPE_FP32", dims: [o.batch, 1] }],
    ensemble_scheduling: {
      step: [
        { model_name: snapshotter, model_version: -1, input_map: { update: "update" }, output_map: { windows: "windows" } },
        { model_name: model, model_version: -1, input_map: { [modelInput]: "windows" }, output_map: { [modelOutput]: modelOutput } },
      ],
    },
  };
}

/**
 * Writes the demo detector, the snapshotter and the `detector-stream`
 * ensemble into `dir`, through the same code as `timeslide model-repo add`
 * and `stream` (addModel, addStreaming).
 */
export function writeDemoRepository(dir: string, o: DemoRepositoryOptions): DemoRepository {
  mkdirSync(dir, { recursive: true });
  const detector = o.detectorName ?? "detector";
  const snapshotter = o.snapshotterName ?? "snapshotter";
  const ensemble = o.ensembleName ?? "detector-stream";
  const maxBatch = o.maxBatchSize ?? Math.max(o.batch, 128);
  if (maxBatch < o.batch) throw new Error(`maxBatchSize ${maxBatch} is below the streaming batch ${o.batch}`);
  // The bank's time coincidence: the named detectors' largest light travel
  // time + 5 ms (H1–L1's 15 ms when they are not named).
  const ifos = o.factorized?.ifos;
  const coincidence = o.bank && ifos && o.bank.coincidence === undefined ? Math.round((maxLightTravelTime(ifos).seconds + 0.005) * o.bank.sampleRate) : o.bank?.coincidence;
  const bank = o.bank && { ...o.bank, kernel: o.kernel, nIfo: o.nIfo, coincidence };
  addModel(dir, detector, bank ? buildBankDetector(bank) : buildDetector(o), {
    version: 1,
    maxBatchSize: maxBatch,
    dynamicBatching: o.dynamicBatching ?? true,
    instances: { count: o.instances ?? 1, kind: "KIND_CPU" },
    gpu: o.gpu && { ...o.gpu, count: o.gpu.count ?? o.instances },
  });
  const s = addStreaming(dir, ensemble, {
    model: detector,
    snapshotter,
    kernel: o.kernel,
    stride: o.stride,
    batch: o.batch,
    nIfo: o.nIfo,
    sequenceIdleMicroseconds: o.sequenceIdleMicroseconds,
    kind: o.gpu ? "KIND_GPU" : undefined,
    streams: o.streams,
  });
  let slides: string | undefined;
  if (o.factorized) {
    if (o.factorized.ifos.length !== o.nIfo) throw new Error(`demo: factorized for ${o.factorized.ifos.length} detectors, the detector takes ${o.nIfo}`);
    slides = addFactorized(dir, detector, {
      encoder: bank ? buildBankEncoder(bank) : buildChirpEncoder(o),
      head: bank ? buildBankHead(bank) : buildSumHead(o.nIfo),
      ifos: o.factorized.ifos,
      kernel: o.kernel,
      stride: o.stride,
      batch: o.batch,
      whole: ensemble,
      streams: o.streams,
      sequenceIdleMicroseconds: o.sequenceIdleMicroseconds,
      instances: o.gpu ? { count: 1, kind: "KIND_GPU" } : undefined,
    }).slides;
  }
  return { detector, snapshotter, ensemble, stateSize: s.stateSize, updateSize: s.updateSize, slides };
}
