// `timeslide far` end to end: the built CLI on the h5py fixtures (npm test builds every workspace first).
import { describe, expect, it } from "vitest";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { farFromFiles } from "../src/index.js";
import { FIXTURES } from "../../../test/fixtures.js";

const CLI = fileURLToPath(new URL("../../cli/dist/main.js", import.meta.url));
const FIX = FIXTURES;

function cli(...args: string[]) {
  if (!existsSync(CLI)) throw new Error(`${CLI} missing: build apps/cli first (npm run build)`);
  return spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8" });
}

describe("timeslide far (CLI)", () => {
  it("--json carries report.json's livetime, far_curve and foreground, with the DESIGN.md values", async () => {
    const r = cli("far", "--background", `${FIX}/background.h5`, "--foreground", `${FIX}/foreground.h5`, "--json", "--points", "0");
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(Object.keys(out)).toEqual(["livetime", "far_curve", "foreground"]);
    expect(out).toEqual(await farFromFiles({ background: `${FIX}/background.h5`, foreground: `${FIX}/foreground.h5`, maxPoints: Infinity }));
    // one hand check straight from the fixture README: 12000 s of background, 256 s of foreground
    expect(out.livetime).toEqual({ background_s: 12000, background_years: 12000 / 31557600, foreground_s: 256 });
    expect(out.far_curve[0].far_per_year).toBe(31557600 / 12000);
  });

  it("prints a table without --json and fails clearly on a bad file", () => {
    const ok = cli("far", "--background", `${FIX}/background.h5`, "--foreground", `${FIX}/foreground.h5`);
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/background livetime 12000 s/);
    expect(ok.stdout.trim().split("\n")).toHaveLength(7);
    const bad = cli("far", "--background", `${FIX}/injections.h5`);
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/injections\.h5: \/events: expected a group/);
  });
});
