import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { ServerPool } from "@timeslide/kserve";
import { writeDemoRepository, mulberry32 } from "@timeslide/model-repo";
import { startServer, type RunningServer } from "@timeslide/server";
import { StreamingModel, arrayChannel, type Channel } from "@timeslide/worker";
import { InProcessModel } from "./reference-model.js";

// A shift streamed in parts (each its own sequence, starting from zero state
// part-way through the stream) must give exactly the detection statistic of
// one sequence from the stream start: jobs with fewer shifts than sequences
// (zero lag) are split this way.
const KERNEL = 256, STRIDE = 64, BATCH = 16;
const geometry = { kernel: KERNEL, stride: STRIDE, batch: BATCH };
const dir = mkdtempSync(join(tmpdir(), "timeslide-streaming-"));
let server: RunningServer;
let pool: ServerPool;
let session: ort.InferenceSession;
let channels: Channel[];

beforeAll(async () => {
  writeDemoRepository(dir, { nIfo: 2, kernel: KERNEL, stride: STRIDE, batch: BATCH, dynamicBatching: false });
  server = await startServer({ repository: dir, host: "127.0.0.1", port: 0, threads: 1 });
  pool = await ServerPool.create({ endpoints: `127.0.0.1:${server.port}` });
  session = await ort.InferenceSession.create(join(dir, "detector", "1", "model.onnx"), { intraOpNumThreads: 1 });
  const rand = mulberry32(3);
  // Loud enough that a window missing part of its samples scores differently.
  channels = [0, 1].map(() => arrayChannel(Float32Array.from({ length: STRIDE * BATCH * 30 + 37 }, () => 4 * (rand() - 0.5))));
}, 60_000);

afterAll(async () => {
  pool?.close();
  await session?.release();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("streaming a shift in parts", () => {
  it("each part, from zeroed state part-way through, equals the same outputs of the whole stream", async () => {
    const model = new StreamingModel(pool, "detector-stream", geometry);
    const first = 3;
    const count = (channels[0].length / STRIDE | 0) - first;
    const whole = await model.run(channels, first, count);
    expect(whole).toEqual(await new InProcessModel(session, geometry).run(channels, first, count));
    // Part starts on and off request boundaries, near and far from the stream start.
    for (const [a, n] of [[1, 40], [BATCH - first, 3 * BATCH], [5 * BATCH + 7, 2 * BATCH + 1], [count - 50, 50], [100, count - 100]]) {
      const part = await model.run(channels, first + a, n);
      expect(part, `outputs [${a}, ${a + n})`).toEqual(whole.subarray(a, a + n));
    }
  });
});
