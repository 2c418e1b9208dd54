// `timeslide synth` as a user runs it (the built CLI in a child process):
// realistic by default with the glitch list path printed, --glitch-rate and
// --no-lines passed through, --clean alone, bad flags refused.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { readGlitchList } from "@timeslide/strain";

const CLI = fileURLToPath(new URL("../dist/main.js", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "timeslide-cli-synth-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const synth = (out: string, ...flags: string[]) =>
  spawnSync(process.execPath, [CLI, "synth", "--out", join(dir, out), "--duration", "10m", "--sample-rate", "256", ...flags], { encoding: "utf8" });

describe("timeslide synth", () => {
  it("is realistic by default: prints the glitch list it wrote", () => {
    const r = synth("real", "--glitch-rate", "3");
    expect(r.status, r.stderr).toBe(0);
    const path = join(dir, "real", "glitches.txt");
    expect(r.stdout).toContain("realistic: low-frequency wall, lines, drift, glitches 3/min per detector");
    expect(r.stdout).toContain(path);
    const g = readGlitchList(readFileSync(path, "utf8"));
    expect(g.length).toBeGreaterThan(30); // 3/min × 10 min × 2 detectors ≈ 60
    expect(new Set(g.map((x) => x.ifo))).toEqual(new Set(["H1", "L1"]));
  });

  it("--no-lines and --glitch-rate 0 are passed through", () => {
    const r = synth("quiet", "--no-lines", "--glitch-rate", "0");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("no lines, drift, glitches 0/min per detector (H1 0, L1 0)");
    expect(readGlitchList(readFileSync(join(dir, "quiet", "glitches.txt"), "utf8"))).toEqual([]);
  });

  it("--clean writes no glitch list and refuses realism flags", () => {
    const r = synth("clean", "--clean");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("clean: stationary Gaussian design-PSD noise");
    expect(existsSync(join(dir, "clean", "glitches.txt"))).toBe(false);
    expect(readdirSync(join(dir, "clean")).filter((f) => f.endsWith(".hdf5"))).toHaveLength(2);
    const bad = synth("clean2", "--clean", "--glitch-rate", "1");
    expect(bad.status).toBe(1);
    expect(bad.stderr).toContain("--clean writes noise without lines or glitches");
  });

  it("refuses a malformed glitch rate", () => {
    const r = synth("bad", "--glitch-rate", "-1");
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("--glitch-rate: expected a number of glitches per minute >= 0");
  });
});
