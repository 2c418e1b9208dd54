// Whitening realistic data (synth's default: the low-frequency wall and
// narrow lines) with the campaign's default settings: a 4 s Welch PSD and a
// 1 s filter. The whitened spectrum must be flat where the wall rises
// (20–35 Hz) and above 100 Hz, and the lines must be whitened away rather
// than come through hundreds of times above the white level (what truncating
// the fine inverse ASD did: 60 Hz ~260×, violin modes ~800×; a PSD of 1 s
// segments instead whitens the lines but under-weights 20–35 Hz by half).
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DetectorStream, spectralLines, synthesize, welchPsd, whiten } from "../src/index.js";
import { tempDir } from "./helpers.js";

const t = tempDir();
afterAll(t.cleanup);

describe("whitening realistic data", () => {
  it("flat from the wall to 1 kHz, lines whitened away (PSD 4 s segments, filter 1 s)", async () => {
    const fs = 2048;
    const r = await synthesize({ ifos: ["H1"], duration: 384, sampleRate: fs, fileDuration: 384, gaps: 0, injections: 0, seed: 3, glitchRate: 0, out: join(t.dir, "data") });
    const s = await DetectorStream.open(r.files.H1, { ifo: "H1" });
    const x = (await s.read(r.start, r.end)).data;
    s.close();
    const w = whiten(x, { sampleRate: fs, psdLength: 64, fduration: 1, fftlength: 4, highpass: 20 });
    const p = welchPsd(w.data.subarray(w.valid[0] + 64 * fs, w.valid[1]), fs, { fftlength: 4 });
    const bins = (a: number, b: number) => Array.from(p.values.subarray(Math.ceil(a / p.df), Math.floor(b / p.df) + 1));
    const mean = (v: number[]) => v.reduce((a, y) => a + y, 0) / v.length;
    const white = mean(bins(80, 100));
    expect(mean(bins(20, 35)) / white, "20-35 Hz, where the wall rises").toBeGreaterThan(0.85);
    expect(mean(bins(20, 35)) / white).toBeLessThan(1.15);
    expect(mean(bins(100, 1000)) / white, "100-1000 Hz, with the lines").toBeGreaterThan(0.85);
    expect(mean(bins(100, 1000)) / white).toBeLessThan(1.15);
    const lines = spectralLines("H1", fs).filter((l) => l.frequency > 25);
    expect(lines.length).toBeGreaterThanOrEqual(8); // mains, violin modes, calibration
    for (const l of lines) expect(Math.max(...bins(l.frequency - 1, l.frequency + 1)) / white, `${l.frequency} Hz line`).toBeLessThan(15);
  });
});
