import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { InferenceClient, KServeError, outputOf } from "../src/client.js";
import { startToyServer, type ToyServer } from "./helpers.js";

let server: ToyServer;
let client: InferenceClient;

beforeAll(async () => {
  server = await startToyServer();
  client = new InferenceClient({ endpoint: server.endpoint, metadata: { "x-timeslide-tag": "campaign-7" } });
  await client.waitForReady({ timeoutMs: 10_000 });
});

afterAll(async () => {
  client?.close();
  await server?.kill("SIGTERM");
});

describe("InferenceClient against a protocol-only gRPC server", () => {
  it("health, metadata, config, statistics and repository calls", async () => {
    expect(await client.serverLive()).toBe(true);
    expect(await client.serverReady()).toBe(true);
    expect(await client.modelReady("simple")).toBe(true);
    expect(await client.modelReady("nope")).toBe(false);
    expect(await client.healthCheck()).toBe("SERVING");
    const sm = await client.serverMetadata();
    expect(sm).toMatchObject({ name: "toy", version: "0.0.1", extensions: ["sequence"] });
    const mm = await client.modelMetadata("simple");
    expect(mm.inputs.map((i) => [i.name, i.datatype, i.shape])).toEqual([
      ["INPUT0", "INT32", ["-1", "4"]],
      ["INPUT1", "INT32", ["-1", "4"]],
    ]);
    const cfg = await client.modelConfig("snapshotter");
    expect(cfg.scheduling_choice).toBe("sequence_batching");
    expect(cfg.sequence_batching?.state[0]).toMatchObject({ input_name: "snapshot", data_type: "TYPE_FP32", dims: ["2", "12"] });
    expect(cfg.sequence_batching?.state[0].initial_state[0].state_data).toBe("zero_data");
    await expect(client.modelConfig("nope")).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: 'unknown model "nope"' });

    await client.unloadModel("slow", { unloadDependents: false });
    expect(await client.modelReady("slow")).toBe(false);
    expect((await client.repositoryIndex({ ready: true })).map((m) => m.name)).not.toContain("slow");
    const all = await client.repositoryIndex();
    expect(all.find((m) => m.name === "slow")).toMatchObject({ state: "UNAVAILABLE" });
    await client.loadModel("slow");
    expect(await client.modelReady("slow")).toBe(true);

    const before = await client.modelStatistics("simple");
    await client.infer({
      model: "simple",
      inputs: [
        { name: "INPUT0", datatype: "INT32", shape: [1, 4], data: new Int32Array(4) },
        { name: "INPUT1", datatype: "INT32", shape: [1, 4], data: new Int32Array(4) },
      ],
    });
    const after = await client.modelStatistics("simple");
    expect(Number(after[0].inference_count) - Number(before[0].inference_count)).toBe(1);
  });

  it("unary ModelInfer with raw contents", async () => {
    const a = Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const b = Int32Array.from([8, 7, 6, 5, 4, 3, 2, 1]);
    const res = await client.infer({
      model: "simple",
      id: "req-1",
      inputs: [
        { name: "INPUT0", datatype: "INT32", shape: [2, 4], data: a },
        { name: "INPUT1", datatype: "INT32", shape: [2, 4], data: b },
      ],
    });
    expect(res.id).toBe("req-1");
    expect(outputOf(res, "OUTPUT0").shape).toEqual([2, 4]);
    expect(Array.from(outputOf(res, "OUTPUT0").data as Int32Array)).toEqual(Array(8).fill(9));
    expect(Array.from(outputOf(res, "OUTPUT1").data as Int32Array)).toEqual([-7, -5, -3, -1, 1, 3, 5, 7]);
    expect(() => outputOf(res, "OUTPUT9")).toThrow(/no output "OUTPUT9" \(outputs: OUTPUT0, OUTPUT1\)/);
  });

  it("every datatype survives the wire", async () => {
    const inputs = [
      { name: "b", datatype: "BOOL" as const, shape: [3], data: [true, false, true] },
      { name: "u64", datatype: "UINT64" as const, shape: [2], data: new BigUint64Array([2n ** 64n - 1n, 3n]) },
      { name: "i8", datatype: "INT8" as const, shape: [2], data: new Int8Array([-5, 6]) },
      { name: "h", datatype: "FP16" as const, shape: [2], data: new Float32Array([0.5, -1024]) },
      { name: "d", datatype: "FP64" as const, shape: [1, 2], data: new Float64Array([Math.PI, -0]) },
      { name: "s", datatype: "BYTES" as const, shape: [2], data: ["H1", "L1"] },
    ];
    const res = await client.infer({ model: "echo", inputs });
    expect(Array.from(outputOf(res, "b").data as Uint8Array)).toEqual([1, 0, 1]);
    expect(Array.from(outputOf(res, "u64").data as BigUint64Array)).toEqual([2n ** 64n - 1n, 3n]);
    expect(Array.from(outputOf(res, "i8").data as Int8Array)).toEqual([-5, 6]);
    expect(Array.from(outputOf(res, "h").data as Float32Array)).toEqual([0.5, -1024]);
    expect(Array.from(outputOf(res, "d").data as Float64Array)).toEqual([Math.PI, -0]);
    expect(outputOf(res, "d").shape).toEqual([1, 2]);
    expect((outputOf(res, "s").data as Buffer[]).map(String)).toEqual(["H1", "L1"]);
  });

  it("sends metadata headers (client-wide and per call)", async () => {
    const res = await client.infer({ model: "headers", inputs: [] });
    expect(String((outputOf(res, "HEADER").data as Buffer[])[0])).toBe("campaign-7");
    const res2 = await client.infer({ model: "headers", inputs: [] }, { metadata: { "x-timeslide-tag": "per-call" } });
    expect(String((outputOf(res2, "HEADER").data as Buffer[])[0])).toBe("per-call");
  });

  it("keeps the client deadline apart from the server-side timeout parameter", async () => {
    const input = { name: "INPUT", datatype: "FP32" as const, shape: [1], data: new Float32Array([1]) };
    // client deadline passes first: DEADLINE_EXCEEDED from the client
    const err = await client.infer({ model: "slow", inputs: [input], parameters: { delay_ms: 2000 } }, { deadlineMs: 150 }).catch((e) => e);
    expect(err).toBeInstanceOf(KServeError);
    expect(err.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err.details).not.toMatch(/server queue/); // the client's own deadline, not the server's timeout
    // server-side timeout (µs) is a request parameter the server acts on
    const err2 = await client.infer({ model: "slow", inputs: [input], parameters: { delay_ms: 50 }, timeoutUs: 10_000 }, { deadlineMs: 5000 }).catch((e) => e);
    expect(err2.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(err2.details).toMatch(/timed out in the server queue \(timeout 10000 us\)/);
    // generous timeout: succeeds
    const ok = await client.infer({ model: "slow", inputs: [input], parameters: { delay_ms: 20 }, timeoutUs: 1_000_000 });
    expect(Array.from(outputOf(ok, "OUTPUT").data as Float32Array)).toEqual([1]);
  });

  it("cancels a unary call through an AbortSignal", async () => {
    const ac = new AbortController();
    const p = client.infer(
      { model: "slow", inputs: [{ name: "INPUT", datatype: "FP32", shape: [1], data: new Float32Array(1) }], parameters: { delay_ms: 3000 } },
      { signal: ac.signal },
    );
    setTimeout(() => ac.abort(), 50);
    await expect(p).rejects.toMatchObject({ code: grpc.status.CANCELLED });
  });

  it("reports unknown models and missing servers as gRPC statuses", async () => {
    await expect(client.infer({ model: "nope", inputs: [] })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    const dead = new InferenceClient({ endpoint: "127.0.0.1:1" });
    await expect(dead.serverLive({ deadlineMs: 2000 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    await expect(dead.waitForReady({ timeoutMs: 400, initialDelayMs: 20 })).rejects.toThrow(/not ready after 400 ms \(last: .*UNAVAILABLE/);
    dead.close();
  });

  it("waitForReady retries with backoff until a late server comes up", async () => {
    const net = await import("node:net");
    const port: number = await new Promise((res) => {
      const s = net.createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => res(p));
      });
    });
    const late = new InferenceClient({ endpoint: `127.0.0.1:${port}` });
    const waiting = late.waitForReady({ timeoutMs: 15_000, model: "simple", initialDelayMs: 50, maxDelayMs: 200 });
    await new Promise((r) => setTimeout(r, 300));
    const srv = await startToyServer([String(port)]);
    try {
      await waiting;
      expect(await late.modelReady("simple")).toBe(true);
    } finally {
      late.close();
      await srv.kill("SIGTERM");
    }
  });
});

describe("ModelStreamInfer", () => {
  it("correlates out-of-order responses by request id", async () => {
    const stream = client.openStream();
    const mk = (delay: number, v: number) => ({
      model: "slow",
      inputs: [{ name: "INPUT", datatype: "FP32" as const, shape: [1], data: new Float32Array([v]) }],
      parameters: { delay_ms: delay },
    });
    const order: number[] = [];
    const ps = [mk(300, 1), mk(10, 2), mk(150, 3)].map((r, i) =>
      stream.infer(r).then((res) => {
        order.push(i);
        return (outputOf(res, "OUTPUT").data as Float32Array)[0];
      }),
    );
    expect(await Promise.all(ps)).toEqual([1, 2, 3]);
    expect(order[0]).toBe(1); // the fast answer overtook the slow ones; values still matched
    await stream.end();
  });

  it("returns in-band errors for one request and keeps the stream open", async () => {
    const stream = client.openStream();
    const bad = stream.infer({ model: "nope", inputs: [] });
    await expect(bad).rejects.toMatchObject({ inBand: true, details: 'unknown model "nope"' });
    const good = await stream.infer({ model: "echo", inputs: [{ name: "x", datatype: "INT16", shape: [1], data: new Int16Array([7]) }] });
    expect(Array.from(outputOf(good, "x").data as Int16Array)).toEqual([7]);
    expect(stream.usable).toBe(true);
    await stream.end();
  });

  it("interleaves two sequences on one stream (int and string ids) independently", async () => {
    const stream = client.openStream();
    const U = 6;
    const update = (v: number) => ({ name: "update", datatype: "FP32" as const, shape: [1, 2, U], data: new Float32Array(2 * U).fill(v) });
    const send = (id: number | string, v: number, start = false) =>
      stream.infer({ model: "snapshotter", inputs: [update(v)], sequence: { id, start } }).then((r) => Array.from(outputOf(r, "stat").data as Float32Array));
    // sequence A: 1,1 ; sequence B: 1 then 2 ; interleaved
    const [a1, b1] = await Promise.all([send(11, 1, true), send("job-b", 1, true)]);
    expect(a1).toEqual(b1);
    const [a2, b2] = await Promise.all([send(11, 1), send("job-b", 2)]);
    expect(a2).not.toEqual(b2);
    // a fresh sequence starts from zero state: equals the first response again
    const c1 = await send(12, 1, true);
    expect(c1).toEqual(a1);
    // continuing without a start is an in-band error naming the problem
    await expect(send(999, 1)).rejects.toMatchObject({ inBand: true, details: expect.stringMatching(/send sequence_start first/) });
    await stream.end();
  });

  it("per-request deadlines and aborts on a stream leave other requests alone", async () => {
    const stream = client.openStream();
    const mk = (delay: number) => ({
      model: "slow",
      inputs: [{ name: "INPUT", datatype: "FP32" as const, shape: [1], data: new Float32Array([delay]) }],
      parameters: { delay_ms: delay },
    });
    const late = stream.infer(mk(400), { deadlineMs: 50 }).catch((e) => e);
    const ac = new AbortController();
    const aborted = stream.infer(mk(400), { signal: ac.signal }).catch((e) => e);
    const fine = stream.infer(mk(100), { deadlineMs: 5000 });
    ac.abort();
    expect(await late).toMatchObject({ code: grpc.status.DEADLINE_EXCEEDED });
    expect(await aborted).toMatchObject({ code: grpc.status.CANCELLED });
    expect(Array.from(outputOf(await fine, "OUTPUT").data as Float32Array)).toEqual([100]);
    expect(stream.inFlight).toBe(0);
    await stream.end();
  });

  it("cancelling the whole stream rejects every pending request", async () => {
    const ac = new AbortController();
    const stream = client.openStream({ signal: ac.signal });
    const ps = [1, 2].map(() =>
      stream
        .infer({ model: "slow", inputs: [{ name: "INPUT", datatype: "FP32", shape: [1], data: new Float32Array(1) }], parameters: { delay_ms: 2000 } })
        .catch((e) => e),
    );
    setTimeout(() => ac.abort(), 30);
    for (const p of ps) expect(await p).toMatchObject({ code: grpc.status.CANCELLED });
    expect(stream.usable).toBe(false);
    await expect(stream.infer({ model: "echo", inputs: [] })).rejects.toBeInstanceOf(KServeError);
  });

  it("a dying server fails pending stream requests with UNAVAILABLE", async () => {
    const srv = await startToyServer([], { process: true });
    const c = new InferenceClient(srv.endpoint);
    try {
      await c.waitForReady();
      const stream = c.openStream();
      const p = stream
        .infer({ model: "slow", inputs: [{ name: "INPUT", datatype: "FP32", shape: [1], data: new Float32Array(1) }], parameters: { delay_ms: 5000 } })
        .catch((e) => e);
      await new Promise((r) => setTimeout(r, 100));
      await srv.kill("SIGKILL");
      const err = await p;
      expect(err).toBeInstanceOf(KServeError);
      expect(err.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
    }
  });
});

describe("TLS", () => {
  it("connects over TLS with a given root certificate", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kserve-tls-"));
    try {
      execFileSync("openssl", [
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
        "-subj", "/CN=timeslide-test", "-addext", "subjectAltName=DNS:timeslide-test",
      ], { stdio: "ignore" });
      const srv = await startToyServer(["0", "--tls", join(dir, "cert.pem"), join(dir, "key.pem")]);
      const tls = new InferenceClient({
        endpoint: srv.endpoint,
        tls: { rootCerts: readFileSync(join(dir, "cert.pem")), serverNameOverride: "timeslide-test" },
      });
      const plain = new InferenceClient(srv.endpoint);
      try {
        expect(await tls.serverLive({ deadlineMs: 5000 })).toBe(true);
        await expect(plain.serverLive({ deadlineMs: 2000 })).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      } finally {
        tls.close();
        plain.close();
        await srv.kill("SIGTERM");
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
