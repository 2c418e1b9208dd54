// ONNX Runtime (platform onnxruntime_onnx, backend onnxruntime): each model
// instance is an InferenceSession in a worker thread of its own
// (worker/ort-worker.mjs): onnxruntime-node's `run` is synchronous on its
// calling thread, so the gRPC event loop stays free while a model computes.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { status } from "@grpc/grpc-js";
import { fromOrtType, toOrtType } from "@timeslide/kserve";
import { InferenceError, invalid } from "../errors.js";
import type { HostTensor } from "../host-tensors.js";
import type { Backend, InstanceResult, LoadContext, ModelInstance } from "./backend.js";

const WORKER_URL = new URL("../../worker/ort-worker.mjs", import.meta.url);
/** Runs handed to one instance's thread at a time: one computing, one waiting in its message queue. */
const PIPELINE_DEPTH = 2;

interface WireTensor {
  name: string;
  type: string;
  data: HostTensor["data"];
  dims: number[];
}

/**
 * ONNX Runtime refusing a request's tensors (dimensions, rank, data type, a
 * node that can't take the shape) is the request's fault, not the server's:
 * INVALID_ARGUMENT naming the model, so clients do not retry it elsewhere.
 */
function ortInputError(model: string, e: Error): Error {
  const msg = e?.message ?? String(e);
  if (/invalid dimensions|Invalid rank|Unexpected input data type|input data type|Non-zero status code returned while running/i.test(msg) && !/allocat/i.test(msg)) {
    return invalid(`model '${model}': ONNX Runtime refused the input: ${msg.replace(/\s+/g, " ").trim()}`);
  }
  return e;
}

/** One session in its worker thread, which runs what it is handed one at a time, in order. */
class OrtInstance implements ModelInstance {
  readonly concurrency = PIPELINE_DEPTH;
  private readonly worker: Worker;
  private readonly pending = new Map<number, { resolve: (r: InstanceResult) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private closed = false;
  private exited = false;
  inputNames: string[] = [];
  outputNames: string[] = [];
  readonly ready: Promise<void>;

  constructor(
    readonly modelPath: string,
    private readonly model: string,
    private readonly fetches: string[],
    threads: number,
  ) {
    // The thread's console output is copied to ours, not piped: a pipe per
    // thread adds listeners to our stdout, and a repository of 40+ instances
    // warned of a listener leak at every start.
    this.worker = new Worker(WORKER_URL, { workerData: { modelPath, intraOpNumThreads: threads, interOpNumThreads: 1 }, stdout: true, stderr: true });
    this.worker.stdout.on("data", (d: Buffer) => process.stdout.write(d));
    this.worker.stderr.on("data", (d: Buffer) => process.stderr.write(d));
    this.ready = new Promise((resolve, reject) => {
      this.worker.once("message", (m: { ready?: boolean; error?: string; inputNames?: string[]; outputNames?: string[] }) => {
        if (!m.ready) return reject(new Error(`${modelPath}: ${m.error}`));
        this.inputNames = m.inputNames ?? [];
        this.outputNames = m.outputNames ?? [];
        this.worker.on("message", (msg) => this.onMessage(msg));
        resolve();
      });
      this.worker.once("error", (e) => {
        reject(e);
        this.failAll(e);
      });
    });
    this.ready.catch(() => {});
    this.worker.on("exit", (code) => {
      this.exited = true;
      if (!this.closed) this.failAll(new Error(`ONNX Runtime worker for ${modelPath} exited (${code})`));
    });
  }

  private onMessage(msg: { id: number; error?: string; outputs?: WireTensor[]; inferNs?: number }) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) {
      p.reject(ortInputError(this.model, new InferenceError(status.INTERNAL, `onnx runtime error: ${msg.error}`)));
      return;
    }
    const outputs = new Map<string, HostTensor>();
    for (const o of msg.outputs ?? []) outputs.set(o.name, { datatype: fromOrtType(o.type), data: o.data, shape: o.dims });
    p.resolve({ outputs, inferNs: msg.inferNs ?? 0 });
  }

  private failAll(e: Error) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  run(feeds: Map<string, HostTensor>): Promise<InstanceResult> {
    if (this.closed) return Promise.reject(new InferenceError(status.UNAVAILABLE, `model instance ${this.modelPath} is unloaded`));
    const id = this.nextId++;
    const list: WireTensor[] = [];
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of feeds) {
      list.push({ name, type: toOrtType(t.datatype), data: t.data, dims: t.shape });
      // Move, not copy, buffers the tensor owns whole (the codec decodes into such).
      if (ArrayBuffer.isView(t.data) && t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength) {
        if (!transfer.includes(t.data.buffer as ArrayBuffer)) transfer.push(t.data.buffer as ArrayBuffer);
      }
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, feeds: list, fetches: this.fetches }, transfer);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new InferenceError(status.UNAVAILABLE, `model instance ${this.modelPath} is unloaded`));
    if (this.exited) return;
    const exit = new Promise<void>((r) => this.worker.once("exit", () => r()));
    this.worker.postMessage({ close: true });
    const t = setTimeout(() => void this.worker.terminate(), 2000);
    t.unref();
    await exit;
    clearTimeout(t);
  }
}

export const onnxBackend: Backend = {
  async load({ model, version, threads }: LoadContext): Promise<ModelInstance[]> {
    const path = join(model.entry.dir, String(version), model.config.default_model_filename || "model.onnx");
    if (!existsSync(path)) throw new Error(`missing model file ${path}`);
    // The config's outputs and the state outputs (fed back by the sequence batcher).
    const fetches = [...model.outputs.map((o) => o.name), ...model.states.map((s) => s.output)];
    const instances = Array.from({ length: model.instanceCount }, () => new OrtInstance(path, model.name, fetches, threads));
    try {
      await Promise.all(instances.map((i) => i.ready));
      const have = new Set(instances[0].inputNames);
      const wanted = [...model.inputs.map((i) => i.name), ...model.states.map((s) => s.input), ...model.controls.map((c) => c.name)];
      const missing = wanted.filter((n) => !have.has(n));
      if (missing.length) throw new Error(`${path}: model has no input(s) ${missing.map((n) => `'${n}'`).join(", ")} (it has ${[...have].join(", ")})`);
      const outs = new Set(instances[0].outputNames);
      const missingOut = fetches.filter((n) => !outs.has(n));
      if (missingOut.length) throw new Error(`${path}: model has no output(s) ${missingOut.map((n) => `'${n}'`).join(", ")}`);
    } catch (e) {
      await Promise.all(instances.map((i) => i.close()));
      throw e;
    }
    return instances;
  },
};
