import { expect, it } from "vitest";
import { InferenceClient, outputOf, type InferResult } from "../src/client.js";
import { ServerPool } from "../src/pool.js";
import { SequenceStream, updateLength } from "../src/sequence.js";
import { startToyServer } from "./helpers.js";
import { TOY_GEOMETRY as G, strain, updateAt } from "./reference.js";
const stat = (r: InferResult) => Array.from(outputOf(r, "stat").data as Float32Array);

it("stress: repeated kills", async () => {
  const K = 40, nseq = 16;
  const n = K * updateLength(G);
  const data = Array.from({ length: nseq }, (_, i) => strain(G.channels, n, 900 + i));
  const ref = await startToyServer();
  const rc = new InferenceClient(ref.endpoint);
  const rs = rc.openStream();
  const expected: number[][][] = [];
  for (let s = 0; s < nseq; s++) {
    const seq = new SequenceStream({ carrier: rs, model: "snapshotter", geometry: G });
    expected.push(await Promise.all(Array.from({ length: K }, (_, k) => seq.send(updateAt(data[s], n, G, k)).then(stat))));
  }
  const srvs = await Promise.all([0, 1, 2].map(() => startToyServer(["0", "--idle-ms", "10000"], { process: true })));
  const pool = await ServerPool.create({ endpoints: srvs.map((s) => s.endpoint), maxInFlightPerServer: 5, healthIntervalMs: 100 });
  const seqs = data.map(() => pool.openSequence({ model: "snapshotter", geometry: G, deadlineMs: 5000, maxFailovers: 5 }));
  const got: number[][][] = seqs.map(() => []);
  const killer = (async () => {
    for (let i = 0; i < 2; i++) {
      await new Promise((r) => setTimeout(r, 60 + Math.random() * 100));
      await srvs[i].kill("SIGKILL");
    }
  })();
  await Promise.all(seqs.map(async (seq, s) => {
    const inflight: Promise<void>[] = [];
    for (let k = 0; k < K; k++) {
      inflight.push(seq.send(updateAt(data[s], n, G, k)).then((r) => void got[s].push(stat(r))));
      if (inflight.length >= 4) await inflight.shift();
      if (k % 5 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.all(inflight);
  }));
  await killer;
  for (let s = 0; s < nseq; s++) expect(got[s]).toEqual(expected[s]);
  console.log("failovers", seqs.map((q) => q.counters.failovers).join(","), "replayed", seqs.reduce((a, q) => a + q.counters.replayed, 0));
  pool.close(); rc.close();
  await Promise.all(srvs.map((s) => s.kill()));
  await ref.kill();
}, 60_000);
