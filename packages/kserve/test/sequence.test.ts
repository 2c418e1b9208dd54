import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InferenceClient, outputOf } from "../src/client.js";
import { SequenceStream, sliceUpdate, stateLength, updateLength, randomSequenceId, windowEnd } from "../src/sequence.js";
import { startToyServer, type ToyServer } from "./helpers.js";
import { TOY_GEOMETRY as G, strain, updateAt, windowsAfter } from "./reference.js";

let server: ToyServer;
let client: InferenceClient;

beforeAll(async () => {
  server = await startToyServer();
  client = new InferenceClient(server.endpoint);
  await client.waitForReady();
});
afterAll(async () => {
  client?.close();
  await server?.kill("SIGTERM");
});

const stat = (r: { outputs: { name: string; data: unknown }[] }) => Array.from(outputOf(r as never, "stat").data as Float32Array);

describe("SequenceStream", () => {
  it("geometry: update and state lengths", () => {
    expect(updateLength(G)).toBe(6);
    expect(stateLength(G)).toBe(12);
    expect(randomSequenceId()).toBeGreaterThan(0n);
    const stream = { endpoint: "x", infer: () => Promise.reject(new Error("unused")) };
    expect(() => new SequenceStream({ carrier: stream, model: "m", geometry: { ...G, stride: 0 } })).toThrow(/stride = 0/);
  });

  it("sliceUpdate and windowEnd agree with the reference layout", () => {
    const n = 4 * updateLength(G);
    const data = strain(G.channels, n, 3);
    const chans = [data.subarray(0, n), data.subarray(n, 2 * n)];
    for (let k = 0; k < 4; k++) expect(Array.from(sliceUpdate(chans, k, G))).toEqual(Array.from(updateAt(data, n, G, k)));
    expect(() => sliceUpdate(chans, 4, G)).toThrow(/update 4 needs samples up to 30, channel 0 has 24/);
    // the last window of update k ends at the last sample sent; window j is (batch-1-j) strides earlier
    const w = windowsAfter(data, n, G, 2);
    for (let j = 0; j < G.batch; j++) {
      const end = windowEnd(2, j, G);
      expect(w[(j * G.channels + 0) * G.kernel + G.kernel - 1]).toBe(data[end - 1]);
    }
    expect(windowEnd(2, G.batch - 1, G)).toBe(3 * updateLength(G));
  });

  it("streaming updates gives the same statistic as sending every full window", async () => {
    const K = 7;
    const n = K * updateLength(G);
    const data = strain(G.channels, n, 42);
    const stream = client.openStream();
    const seq = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G });
    // pipelined: all updates in flight at once, answers resolve in order
    const streamed = await Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data, n, G, k), { end: k === K - 1 }).then(stat)));
    for (let k = 0; k < K; k++) {
      const full = await client.infer({
        model: "detector",
        inputs: [{ name: "windows", datatype: "FP32", shape: [G.batch, G.channels, G.kernel], data: windowsAfter(data, n, G, k) }],
      });
      expect(streamed[k]).toEqual(stat(full));
    }
    // bytes: each sample is sent once instead of kernel/stride times
    expect(seq.counters.payloadBytes).toBe(n * G.channels * 4);
    await stream.end();
  });

  it("retains the last kernel + (batch-1)·stride samples and its replay rebuilds the state from zero", async () => {
    const K = 5;
    const n = K * updateLength(G);
    const data = strain(G.channels, n, 7);
    const stream = client.openStream();
    const a = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G });
    for (let k = 0; k < 3; k++) await a.send(updateAt(data, n, G, k));
    const S = stateLength(G);
    const kept = a.retained();
    for (let c = 0; c < G.channels; c++) {
      expect(Array.from(kept.subarray(c * S, (c + 1) * S))).toEqual(Array.from(data.subarray(c * n + 3 * 6 - S, c * n + 3 * 6)));
    }
    // replay into a fresh sequence, then continue both: identical outputs
    const b = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G });
    const replay = a.replayUpdates();
    expect(replay.length).toBe(Math.ceil(S / 6));
    for (const u of replay) await b.send(u);
    for (let k = 3; k < K; k++) {
      const [ra, rb] = await Promise.all([a.send(updateAt(data, n, G, k)), b.send(updateAt(data, n, G, k))]);
      expect(stat(rb)).toEqual(stat(ra));
    }
    await stream.end();
  });

  it("rebuilds a sequence the server forgot (idle expiry) in place, outputs unchanged", async () => {
    const forgetful = await startToyServer(["0", "--idle-ms", "150"]);
    const c = new InferenceClient(forgetful.endpoint);
    try {
      await c.waitForReady();
      const K = 6;
      const n = K * updateLength(G);
      const data = strain(G.channels, n, 77);
      const stream = c.openStream();
      const ref = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G });
      const expected = await Promise.all(Array.from({ length: K }, (_, k) => ref.send(updateAt(data, n, G, k)).then(stat)));
      const seq = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G });
      const got: number[][] = [];
      for (let k = 0; k < 3; k++) got.push(stat(await seq.send(updateAt(data, n, G, k))));
      await new Promise((r) => setTimeout(r, 400)); // the server drops the idle sequence
      got.push(...(await Promise.all([3, 4, 5].map((k) => seq.send(updateAt(data, n, G, k)).then(stat)))));
      expect(got).toEqual(expected);
      expect(seq.counters.restarts).toBeGreaterThanOrEqual(1); // more if the machine is slow enough to idle again
      // without the restart the same gap is fatal
      const strict = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G, restartOnLostState: false });
      await strict.send(updateAt(data, n, G, 0));
      await new Promise((r) => setTimeout(r, 400));
      await expect(strict.send(updateAt(data, n, G, 1))).rejects.toThrow(/send sequence_start first/);
      await stream.end();
    } finally {
      c.close();
      await forgetful.kill("SIGKILL");
    }
  });

  it("rejects updates of the wrong size with a clear message", async () => {
    const stream = client.openStream();
    const seq = new SequenceStream({ carrier: stream, model: "snapshotter", geometry: G, sequenceId: 5 });
    await expect(seq.send(new Float32Array(5))).rejects.toThrow("sequence 5: update must be a Float32Array of 2 × 6 = 12 samples, got 5");
    await stream.end();
  });

  it("an in-band error ends the sequence for every queued update", async () => {
    const stream = client.openStream();
    const seq = new SequenceStream({ carrier: stream, model: "no-such-model", geometry: G });
    const u = new Float32Array(12);
    const results = await Promise.allSettled([seq.send(u), seq.send(u)]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    await expect(seq.send(u)).rejects.toThrow(/unknown model "no-such-model"/);
    await stream.end();
  });
});
