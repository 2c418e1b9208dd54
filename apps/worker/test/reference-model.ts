import * as ort from "onnxruntime-node";
import { channelsReady, type Channel, type DetectionModel, type Geometry } from "@timeslide/worker";

/**
 * The reference for worker tests: the bare detector model run in-process by
 * onnxruntime-node on the windows a snapshotter would form (zero state before
 * the stream start), batched as the stream batches them, so outputs can be
 * compared exactly.
 */
export class InProcessModel implements DetectionModel {
  readonly kernel: number;
  readonly stride: number;
  readonly batch: number;
  constructor(
    private readonly session: ort.InferenceSession,
    g: Geometry,
  ) {
    this.kernel = g.kernel;
    this.stride = g.stride;
    this.batch = g.batch;
  }

  async run(sources: Channel[], first: number, count: number): Promise<Float32Array> {
    const { kernel: K, stride, batch: B } = this;
    const out = new Float32Array(count);
    const nIfo = sources.length;
    // Simple on purpose: wait for every sample, then index plain arrays.
    await channelsReady(sources, Infinity);
    const channels = sources.map((c) => {
      const x = new Float32Array(c.length);
      c.copyTo(x, 0, 0, c.length);
      return x;
    });
    for (let r = Math.floor(first / B); r < Math.ceil((first + count) / B); r++) {
      const x = new Float32Array(B * nIfo * K);
      for (let w = 0; w < B; w++) {
        const end = (r * B + w + 1) * stride;
        for (let c = 0; c < nIfo; c++)
          for (let t = 0; t < K; t++) {
            const s = end - K + t;
            x[(w * nIfo + c) * K + t] = s >= 0 && s < channels[c].length ? channels[c][s] : 0;
          }
      }
      const res = await this.session.run({ [this.session.inputNames[0]]: new ort.Tensor("float32", x, [B, nIfo, K]) });
      const y = res[this.session.outputNames[0]].data as Float32Array;
      for (let w = 0; w < B; w++) {
        const j = r * B + w - first;
        if (j >= 0 && j < count) out[j] = y[w];
      }
    }
    return out;
  }
}
