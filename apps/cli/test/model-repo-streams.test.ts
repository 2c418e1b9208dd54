// `timeslide model-repo --streams`: snapshotter instances = sequence slots per server.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DEFAULT_STREAMS, readModel } from "@timeslide/model-repo";
import { parseModelRepoFlags, writeModelRepository } from "../src/commands/model-repo.js";

const dir = mkdtempSync(join(tmpdir(), "model-repo-streams-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const small = { kernelLength: "1", sampleRate: "256", inferenceSamplingRate: "4", batchSize: "16" };

describe("model-repo --streams", () => {
  it("writes that many snapshotter instances (default DEFAULT_STREAMS), on the GPU with --device gpu; the detector keeps --instances", () => {
    expect(DEFAULT_STREAMS).toBe(8);
    const def = writeModelRepository(parseModelRepoFlags({ out: join(dir, "default"), ...small }));
    expect(def.streams).toBe(8);
    expect(readModel(def.repository, "snapshotter").config.instance_group).toEqual([{ count: 8, kind: "KIND_CPU" }]);
    const six = writeModelRepository(parseModelRepoFlags({ out: join(dir, "gpu"), ...small, device: "gpu", instances: "2", streams: "6" }));
    expect(six.streams).toBe(6);
    expect(readModel(six.repository, "snapshotter").config.instance_group).toEqual([{ count: 6, kind: "KIND_GPU" }]);
    expect(readModel(six.repository, "detector").config.instance_group).toEqual([{ count: 2, kind: "KIND_GPU" }]);
    expect(() => parseModelRepoFlags({ out: "x", streams: "0" })).toThrow(/--streams: expected >= 1/);
  });
});
