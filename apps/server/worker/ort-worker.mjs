// One ONNX Runtime session in a worker thread. onnxruntime-node's
// InferenceSession.run executes synchronously on the calling thread (its
// promise only defers the start), so the server runs every session here to
// keep the gRPC event loop free while a model computes.
//
// workerData: { modelPath, intraOpNumThreads, interOpNumThreads }
// in:  { id, feeds: [{ name, type, data, dims }], fetches: [name] | undefined }
// out: { id, outputs: [{ name, type, data, dims }], inferNs } | { id, error }
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";

const { modelPath, intraOpNumThreads, interOpNumThreads } = workerData;

let session;
try {
  session = await ort.InferenceSession.create(modelPath, {
    intraOpNumThreads,
    interOpNumThreads,
    executionMode: "sequential",
    graphOptimizationLevel: "all",
    // Idle intra-op threads must not spin: they would take the cores the
    // gRPC thread needs between runs.
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
  parentPort.postMessage({ ready: true, inputNames: session.inputNames, outputNames: session.outputNames });
} catch (e) {
  parentPort.postMessage({ ready: false, error: String(e && e.message ? e.message : e) });
}

// The server may hand over the next run before this one is answered; runs
// go one after another, in order, each timed from its own start.
let tail = Promise.resolve();
parentPort.on("message", (msg) => {
  tail = tail.then(() => (msg.close ? close() : execute(msg)));
});

async function close() {
  await session?.release();
  parentPort.close();
}

async function execute({ id, feeds, fetches }) {
  try {
    const inputs = {};
    for (const f of feeds) inputs[f.name] = new ort.Tensor(f.type, f.data, f.dims);
    const t0 = process.hrtime.bigint();
    const out = fetches ? await session.run(inputs, fetches) : await session.run(inputs);
    const inferNs = Number(process.hrtime.bigint() - t0);
    const outputs = [];
    const transfer = [];
    for (const [name, t] of Object.entries(out)) {
      let data = t.data;
      if (ArrayBuffer.isView(data)) {
        // Own the memory so it can be moved, not copied, to the main thread.
        if (data.byteOffset !== 0 || data.byteLength !== data.buffer.byteLength) data = data.slice();
        transfer.push(data.buffer);
      }
      outputs.push({ name, type: t.type, data, dims: Array.from(t.dims) });
    }
    try {
      parentPort.postMessage({ id, outputs, inferNs }, transfer);
    } catch {
      // Buffers owned by the native binding may refuse to move; copy them.
      parentPort.postMessage({ id, outputs: outputs.map((o) => ({ ...o, data: ArrayBuffer.isView(o.data) ? o.data.slice() : o.data })), inferNs });
    }
  } catch (e) {
    parentPort.postMessage({ id, error: String(e && e.message ? e.message : e) });
  }
}
