// Synthetic-data benchmark: the cost of `timeslide synth` per hour of
// two-detector (H1, L1) 4096 Hz data, realistic mode (wall, lines, drift,
// glitches, sky-projected injections) against clean mode in the same run,
// HDF5 writing included (what `timeslide synth` does). Also realistic with
// lines and glitches off, to show where the extra cost goes.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { synthesize } from "@timeslide/strain";

const RATE = 4096;
const DURATION = 600; // s of data per run
const REPS = 2;
const IFOS = ["H1", "L1"];

const configs = [
  { name: "clean", opts: { clean: true } },
  { name: "realistic (default)", opts: {} },
  { name: "realistic, no lines, no glitches", opts: { lines: false, glitchRate: 0 } },
];

const dir = mkdtempSync(join(tmpdir(), "timeslide-synth-bench-"));
try {
  const best = new Map();
  for (let r = 0; r < REPS; r++) {
    // interleaved, so a busy machine slows every configuration alike
    for (const c of configs) {
      const out = join(dir, `${c.name.replace(/\W+/g, "-")}-${r}`);
      const t0 = performance.now();
      const res = await synthesize({ out, ifos: IFOS, duration: DURATION, sampleRate: RATE, fileDuration: DURATION, injections: 10, gaps: 1, seed: 1, ...c.opts });
      const s = (performance.now() - t0) / 1000;
      const g = Object.values(res.glitches).reduce((a, x) => a + x.length, 0);
      if (!best.has(c.name) || s < best.get(c.name).s) best.set(c.name, { s, glitches: g });
      rmSync(out, { recursive: true, force: true });
    }
  }
  const base = best.get("clean").s;
  console.log(`synth: ${IFOS.join("+")} at ${RATE} Hz, ${DURATION} s of data per run (10 injections, 1 gap per detector), HDF5 written; best of ${REPS}`);
  for (const c of configs) {
    const { s, glitches } = best.get(c.name);
    const perHour = (s * 3600) / DURATION;
    console.log(
      `${c.name.padEnd(34)} ${perHour.toFixed(1).padStart(6)} s per hour of data (${(3600 / perHour).toFixed(0)}× real time; ${glitches} glitches)` +
        `   ratio to clean ${(s / base).toFixed(2)}`,
    );
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
