// Reference computations for the toy server's models (geometry as in
// fixtures/toy-server.mjs): what the "detector" sees when given the full
// windows that the snapshotter builds from its state.
import type { SnapshotGeometry } from "../src/sequence.js";

export const TOY_GEOMETRY: SnapshotGeometry = { channels: 2, kernel: 8, stride: 2, batch: 3 };

/** Deterministic pseudo-random strain, [channels, n] channel-major. */
export function strain(channels: number, n: number, seed: number): Float32Array {
  const out = new Float32Array(channels * n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2 ** 32 - 0.5;
  }
  return out;
}

/** Update k: samples [k·U, (k+1)·U) of every channel, [channels, U]. */
export function updateAt(data: Float32Array, n: number, g: SnapshotGeometry, k: number): Float32Array {
  const U = g.stride * g.batch;
  const u = new Float32Array(g.channels * U);
  for (let c = 0; c < g.channels; c++) u.set(data.subarray(c * n + k * U, c * n + (k + 1) * U), c * U);
  return u;
}

/** The `batch` full windows [batch, channels, kernel] that follow update k (zeros before the stream). */
export function windowsAfter(data: Float32Array, n: number, g: SnapshotGeometry, k: number): Float32Array {
  const U = g.stride * g.batch;
  const S = g.kernel + (g.batch - 1) * g.stride;
  const w = new Float32Array(g.batch * g.channels * g.kernel);
  const stateStart = (k + 1) * U - S;
  for (let j = 0; j < g.batch; j++) {
    for (let c = 0; c < g.channels; c++) {
      for (let t = 0; t < g.kernel; t++) {
        const idx = stateStart + j * g.stride + t;
        w[(j * g.channels + c) * g.kernel + t] = idx >= 0 ? data[c * n + idx] : 0;
      }
    }
  }
  return w;
}
