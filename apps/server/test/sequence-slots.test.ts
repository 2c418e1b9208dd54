// Triton's sequence batcher in the embedded server: one slot per snapshotter
// instance (Direct, max_batch_size 0), a FIFO backlog beyond the slots, slots
// freed at END or after max_sequence_idle_microseconds, and the Oldest
// strategy batching requests of different sequences. Real ONNX models built
// with the project's builder; requests are unary calls (one gRPC call each,
// so an answer held back on a shared stream cannot hide what the server does).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InferenceClient, outputOf, type InferResult } from "@timeslide/kserve";
import { addOnnxModel, buildSnapshotter, GraphBuilder, snapshotterConfig, type ModelConfig } from "@timeslide/model-repo";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "../src/index.js";
import { fullWindows, GEOM, noise, UPDATE, updateAt } from "./helpers.js";

const { nIfo, kernel, stride, batch } = GEOM;
const silent = pino({ level: "silent" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));




/** A repository with the snapshotter alone: `instances` instances, idle limit `idleUs`. */
function snapshotterRepo(instances: number, idleUs = 60_000_000): string {
  const repo = mkdtempSync(join(tmpdir(), "seq-slots-"));
  const snap = { nIfo, kernel, stride, batch };
  const config = snapshotterConfig("snapshotter", snap, idleUs);
  config.instance_group = [{ count: instances, kind: "KIND_CPU" }];
  addOnnxModel(repo, config, buildSnapshotter(snap), 1);
  return repo;
}

/**
 * A batched stateful model: `acc = state + x` per row, `x [-1, 4]`, state
 * `[-1, 4]` (zero at START): each sequence's output is the running sum of
 * its inputs, so rows of different sequences in one batch must not mix.
 */
function accumulatorRepo(sb: ModelConfig["sequence_batching"], maxBatchSize: number, instances = 1): string {
  const repo = mkdtempSync(join(tmpdir(), "seq-oldest-"));
  const g = new GraphBuilder("accumulator");
  const x = g.input("x", "float32", ["batch", 4]);
  const s = g.input("acc_in", "float32", ["batch", 4]);
  g.input("START", "float32", ["batch", 1]);
  const y = g.node("Add", [x, s]);
  g.output(y, "acc", "float32", ["batch", 4]);
  g.output(g.node("Identity", ["acc"]), "acc_out", "float32", ["batch", 4]);
  const config: ModelConfig = {
    name: "accumulator",
    platform: "onnxruntime_onnx",
    max_batch_size: maxBatchSize,
    input: [{ name: "x", data_type: "TYPE_FP32", dims: [4] }],
    output: [{ name: "acc", data_type: "TYPE_FP32", dims: [4] }],
    sequence_batching: {
      ...sb,
      control_input: [{ name: "START", control: [{ kind: "CONTROL_SEQUENCE_START", fp32_false_true: [0, 1] }] }],
      state: [{ input_name: "acc_in", output_name: "acc_out", data_type: "TYPE_FP32", dims: [4], initial_state: [{ name: "zeros", data_type: "TYPE_FP32", dims: [4], zero_data: true }] }],
    },
    instance_group: [{ count: instances, kind: "KIND_CPU" }],
  };
  addOnnxModel(repo, config, g.toBytes("accumulator"), 1);
  return repo;
}

let server: RunningServer | undefined;
let client: InferenceClient | undefined;
afterEach(async () => {
  client?.close();
  await server?.close();
  server = client = undefined;
});

async function serve(repo: string): Promise<InferenceClient> {
  server = await startServer({ repository: repo, host: "127.0.0.1", port: 0, threads: 1, logger: silent });
  client = new InferenceClient(`127.0.0.1:${server.port}`);
  await client.waitForReady({ model: server.engine.models.keys().next().value!, timeoutMs: 10_000 });
  return client;
}

const snapRequest = (id: number, data: Float32Array, start: boolean, end: boolean) => ({
  model: "snapshotter",
  inputs: [{ name: "update", datatype: "FP32" as const, shape: [1, nIfo, UPDATE], data }],
  sequence: { id, start, end },
});

interface Trace {
  id: number;
  startAnswered: number;
  endAnswered: number;
  last: Float32Array;
}

/** Offers `n` sequences of `steps` updates at once (each sends its next update when the last is answered). */
async function offer(c: InferenceClient, n: number, steps: number, t0: number): Promise<Trace[]> {
  const streams = Array.from({ length: n }, (_, s) => [0, 1].map((i) => noise(steps * UPDATE, 10 * s + i + 1)));
  return Promise.all(
    streams.map(async (stream, s) => {
      await sleep(15 * s); // offered in this order, all before the first ends
      const id = 100 + s;
      const trace: Trace = { id, startAnswered: 0, endAnswered: 0, last: new Float32Array() };
      let r: InferResult | undefined;
      for (let k = 0; k < steps; k++) {
        r = await c.infer(snapRequest(id, updateAt(stream, k), k === 0, k === steps - 1), { deadlineMs: 30_000 });
        if (k === 0) trace.startAnswered = performance.now() - t0;
        if (k < steps - 1) await sleep(25); // a stream's pace: the sequence keeps its slot between updates
      }
      trace.endAnswered = performance.now() - t0;
      trace.last = outputOf(r!, "windows").data as Float32Array;
      expect(Array.from(trace.last)).toEqual(Array.from(fullWindows(stream, steps * UPDATE)));
      return trace;
    }),
  );
}

describe("sequence slots (Direct)", () => {
  it("one snapshotter instance, four sequences at once: one runs, the others wait (not fail) and run in order", async () => {
    const c = await serve(snapshotterRepo(1));
    const model = server!.engine.models.get("snapshotter")!;
    expect(model.batcher!.slots).toBe(1);
    const t0 = performance.now();
    const run = offer(c, 4, 6, t0);
    await sleep(100);
    const mid = [model.sequencesActive, model.sequencesWaiting];
    const traces = await run;
    // Mid-flight: one sequence holds the slot, three wait in the backlog.
    expect(mid).toEqual([1, 3]);
    // Each sequence's START is answered only after the previous sequence's END: exactly one at a time, in offer order.
    expect(traces.map((t) => t.id)).toEqual([100, 101, 102, 103]);
    const byStart = [...traces].sort((a, b) => a.startAnswered - b.startAnswered).map((t) => t.id);
    expect(byStart).toEqual([100, 101, 102, 103]);
    for (let k = 1; k < traces.length; k++) expect(traces[k].startAnswered).toBeGreaterThanOrEqual(traces[k - 1].endAnswered);
    expect(model.sequencesActive + model.sequencesWaiting).toBe(0);
    // Triton's statistics: one inference and one execution per request; the backlog counts as queue time.
    const st = (await c.modelStatistics("snapshotter"))[0];
    expect(Number(st.inference_count)).toBe(24);
    expect(Number(st.execution_count)).toBe(24);
    const waited = traces[3].startAnswered - 15 * 3; // the last sequence's START waited for three whole sequences
    expect(Number(st.inference_stats!.queue!.ns) / 1e6).toBeGreaterThan(waited * 0.8);
  }, 60_000);

  it("N instances run N sequences at once; the next waits for a slot", async () => {
    const c = await serve(snapshotterRepo(3));
    const model = server!.engine.models.get("snapshotter")!;
    expect(model.batcher!.slots).toBe(3);
    const t0 = performance.now();
    const run = offer(c, 4, 10, t0);
    await sleep(100);
    const mid = [model.sequencesActive, model.sequencesWaiting];
    const traces = await run;
    expect(mid).toEqual([3, 1]);
    // The first three started before any ended; the fourth only after one of them ended.
    const firstEnd = Math.min(...traces.slice(0, 3).map((t) => t.endAnswered));
    for (const t of traces.slice(0, 3)) expect(t.startAnswered).toBeLessThan(firstEnd);
    expect(traces[3].startAnswered).toBeGreaterThanOrEqual(firstEnd);
  }, 60_000);

  it("an idle sequence frees its slot after max_sequence_idle_microseconds; it is then unknown", async () => {
    const c = await serve(snapshotterRepo(1, 300_000));
    const model = server!.engine.models.get("snapshotter")!;
    const u = new Float32Array(nIfo * UPDATE).fill(1);
    await c.infer(snapRequest(1, u, true, false)); // holds the slot, then goes quiet
    const t0 = performance.now();
    const second = c.infer(snapRequest(2, u, true, false), { deadlineMs: 10_000 });
    await sleep(100);
    expect(model.sequencesWaiting).toBe(1); // waiting, not failed
    await second;
    const waited = performance.now() - t0;
    expect(waited).toBeGreaterThan(200); // ~300 ms idle limit, counted from sequence 1's last answer
    expect(waited).toBeLessThan(3000);
    expect(model.sequencesActive).toBe(1);
    await expect(c.infer(snapRequest(1, u, false, false))).rejects.toMatchObject({
      details: expect.stringMatching(/sequence 1 to model 'snapshotter' must specify the START flag/),
    });
    await c.infer(snapRequest(2, u, false, true));
    expect(model.sequencesActive).toBe(0);
  }, 30_000);
});

describe("Oldest strategy", () => {
  const rows = (id: number, k: number) => Float32Array.from({ length: 4 }, (_, j) => id * 10 + k + j / 4);

  it("batches requests of different sequences into one execution (preferred batch size, queue delay), state kept per sequence", async () => {
    const repo = accumulatorRepo(
      { max_sequence_idle_microseconds: 5_000_000, oldest: { max_candidate_sequences: 4, preferred_batch_size: [4], max_queue_delay_microseconds: 500_000 } },
      4,
    );
    const c = await serve(repo);
    const model = server!.engine.models.get("accumulator")!;
    expect(model.batcher!.slots).toBe(4);
    const steps = 3;
    const ids = [1, 2, 3, 4];
    const sums = await Promise.all(
      ids.map(async (id) => {
        let last: Float32Array = new Float32Array(4);
        for (let k = 0; k < steps; k++) {
          const r = await c.infer({ model: "accumulator", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: rows(id, k) }], sequence: { id, start: k === 0, end: k === steps - 1 } });
          last = outputOf(r, "acc").data as Float32Array;
        }
        return last;
      }),
    );
    ids.forEach((id, i) => {
      const want = Array.from({ length: 4 }, (_, j) => [0, 1, 2].reduce((a, k) => a + rows(id, k)[j], 0));
      Array.from(sums[i]).forEach((v, j) => expect(v).toBeCloseTo(want[j], 4));
    });
    const st = (await c.modelStatistics("accumulator"))[0];
    expect(Number(st.inference_count)).toBe(12);
    // Four sequences, one request each per batch: 3 executions of batch 4.
    expect(Number(st.execution_count)).toBe(3);
    expect(st.batch_stats!.map((b) => [Number(b.batch_size), Number(b.compute_infer!.count)])).toEqual([[4, 3]]);
  }, 30_000);

  it("sends a partial batch when max_queue_delay_microseconds expires; more sequences than candidates wait", async () => {
    const repo = accumulatorRepo({ oldest: { max_candidate_sequences: 2, preferred_batch_size: [2], max_queue_delay_microseconds: 200_000 } }, 2);
    const c = await serve(repo);
    const model = server!.engine.models.get("accumulator")!;
    const t0 = performance.now();
    const one = await c.infer({ model: "accumulator", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: rows(1, 0) }], sequence: { id: 1, start: true, end: false } });
    expect(performance.now() - t0).toBeGreaterThan(150); // waited for a second sequence, then ran alone
    expect(Array.from(outputOf(one, "acc").data as Float32Array)).toEqual(Array.from(rows(1, 0)));
    const send = (id: number, start: boolean, end: boolean) =>
      c.infer({ model: "accumulator", inputs: [{ name: "x", datatype: "FP32", shape: [1, 4], data: rows(id, 0) }], sequence: { id, start, end } });
    const two = send(2, true, false);
    const three = send(3, true, true);
    await sleep(50);
    expect(model.sequencesActive).toBe(2);
    expect(model.sequencesWaiting).toBe(1);
    await two;
    await send(1, false, true); // frees sequence 1's slot: sequence 3 gets it
    await three;
    await send(2, false, true);
    expect(model.sequencesActive + model.sequencesWaiting).toBe(0);
  }, 30_000);
});
