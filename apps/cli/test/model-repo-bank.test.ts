// `timeslide model-repo demo --bank physical --factorized H1,L1`: the demo
// search's detector, whole and as a factorized pair, from the command.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkRepository, readFactorized, readModel } from "@timeslide/model-repo";
import { parseModelRepoFlags, writeModelRepository } from "../src/commands/model-repo.js";

const dir = mkdtempSync(join(tmpdir(), "model-repo-bank-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const geometry = { kernelLength: "1.75", sampleRate: "256", inferenceSamplingRate: "1", batchSize: "16" };

describe("model-repo demo --bank, --factorized", () => {
  it("writes the physical bank whole and as a pair; the repository checks clean and the campaign settings name the pair", () => {
    const r = writeModelRepository(parseModelRepoFlags({ out: join(dir, "bank"), ...geometry, bank: "physical", factorized: "H1,L1" }));
    expect(r.bank).toBe("physical");
    expect(r.models.slides).toBe("detector-slides");
    expect(r.campaign.model).toEqual({ name: "detector-slides", factorized: true });
    expect(checkRepository(r.repository).models.filter((m) => m.problems.length)).toEqual([]);
    const pair = readFactorized(readModel(r.repository, "detector-slides").config, ["H1", "L1"]);
    expect(pair).toMatchObject({ encoders: ["detector-encoder-stream", "detector-encoder-stream"], embeddingDim: 32, whole: "detector-stream" });
    // the physical bank, not the random chirps: its graph says so
    expect(readFileSync(join(r.repository, "detector", "1", "model.onnx")).toString("latin1")).toMatch(/physical chirp bank: 16 templates/);
    // the head's time coincidence: H1–L1's light travel + 5 ms (3.84 samples at 256 Hz); with V1, H1–V1's (27 ms)
    const head = (repo: string) => readFileSync(join(repo, "detector-head", "1", "model.onnx")).toString("utf8");
    expect(head(r.repository)).toMatch(/coincidence ±4 samples/);
    const hlv = writeModelRepository(parseModelRepoFlags({ out: join(dir, "hlv"), ...geometry, ifos: "3", bank: "physical", factorized: "H1,L1,V1" }));
    expect(head(hlv.repository)).toMatch(/coincidence ±8 samples/);
    expect(readFileSync(join(hlv.repository, "detector", "1", "model.onnx")).toString("utf8")).toMatch(/coincidence ±8 samples/); // the whole model agrees
    // the default stays the chirp bank, whole only
    const plain = writeModelRepository(parseModelRepoFlags({ out: join(dir, "plain"), ...geometry }));
    expect(plain.bank).toBe("chirp");
    expect(plain.models.slides).toBeUndefined();
    expect(plain.campaign.model).toEqual({ name: "detector-stream" });
  });

  it("refuses detector names that do not match --ifos, a kernel shorter than the templates, an unknown bank", () => {
    expect(() => parseModelRepoFlags({ out: "x", ...geometry, factorized: "H1" })).toThrow(/--factorized: 1 detectors named \(H1\), but --ifos is 2/);
    expect(() => parseModelRepoFlags({ out: "x", ...geometry, factorized: "H1,l1" })).toThrow(/--factorized: expected detector names/);
    expect(() => parseModelRepoFlags({ out: "x", ...geometry, kernelLength: "0.5", bank: "physical" })).toThrow(/templates are 0.625 s long; --kernel-length 0.5 s is shorter/);
    expect(() => parseModelRepoFlags({ out: "x", ...geometry, bank: "gaussian" })).toThrow(/--bank: expected chirp or physical/);
  });
});
