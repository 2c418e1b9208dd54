import { Worker } from "node:worker_threads";
import { status } from "@grpc/grpc-js";
import { InferenceError } from "./errors.js";
import { fromOrtType, ortType, type HostTensor } from "./tensors.js";

const WORKER_URL = new URL("../worker/ort-worker.mjs", import.meta.url);

export interface SessionOptions {
  intraOpNumThreads: number;
  interOpNumThreads?: number;
}

export interface RunResult {
  outputs: Map<string, HostTensor>;
  inferNs: number;
}

interface Pending {
  resolve: (r: RunResult) => void;
  reject: (e: Error) => void;
}

/** One model instance: an ONNX Runtime session in its own worker thread, which runs what it is handed one at a time, in order. */
export class OrtInstance {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private closed = false;
  private exited = false;
  /** runs handed to the thread and not yet answered */
  running = 0;
  inputNames: string[] = [];
  outputNames: string[] = [];
  readonly ready: Promise<void>;

  constructor(readonly modelPath: string, opts: SessionOptions) {
    this.worker = new Worker(WORKER_URL, {
      workerData: { modelPath, intraOpNumThreads: opts.intraOpNumThreads, interOpNumThreads: opts.interOpNumThreads ?? 1 },
    });
    this.ready = new Promise((resolve, reject) => {
      const onFirst = (m: { ready?: boolean; error?: string; inputNames?: string[]; outputNames?: string[] }) => {
        if (m.ready) {
          this.inputNames = m.inputNames ?? [];
          this.outputNames = m.outputNames ?? [];
          this.worker.on("message", (msg) => this.onMessage(msg));
          resolve();
        } else reject(new Error(`${modelPath}: ${m.error}`));
      };
      this.worker.once("message", onFirst);
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

  private onMessage(msg: { id: number; error?: string; outputs?: Array<{ name: string; type: string; data: HostTensor["data"]; dims: number[] }>; inferNs?: number }) {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) {
      p.reject(new InferenceError(status.INTERNAL, `onnx runtime error: ${msg.error}`));
      return;
    }
    const outputs = new Map<string, HostTensor>();
    for (const o of msg.outputs ?? []) outputs.set(o.name, { datatype: fromOrtType(o.type), data: o.data, dims: o.dims });
    p.resolve({ outputs, inferNs: msg.inferNs ?? 0 });
  }

  private failAll(e: Error) {
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  /** Runs the session; input buffers are moved to the worker (the caller must not reuse them). */
  run(feeds: Map<string, HostTensor>, fetches?: string[]): Promise<RunResult> {
    if (this.closed) return Promise.reject(new InferenceError(status.UNAVAILABLE, `model instance ${this.modelPath} is unloaded`));
    const id = this.nextId++;
    const list: Array<{ name: string; type: string; data: HostTensor["data"]; dims: number[] }> = [];
    const transfer: ArrayBuffer[] = [];
    for (const [name, t] of feeds) {
      list.push({ name, type: ortType(t.datatype), data: t.data, dims: t.dims });
      if (ArrayBuffer.isView(t.data) && t.data.byteOffset === 0 && t.data.byteLength === t.data.buffer.byteLength) {
        if (!transfer.includes(t.data.buffer as ArrayBuffer)) transfer.push(t.data.buffer as ArrayBuffer);
      }
    }
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, feeds: list, fetches }, transfer);
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
