import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BadSegmentError, DetectorStream, openWhitenedStrain, resamplingHalfSupport, segmentEdge, writeStrainFile, type WhitenedStrainOptions } from "../src/index.js";
import { tempDir } from "./helpers.js";

const t = tempDir();
afterAll(t.cleanup);

const START = 1_200_000_000;
const DURATION = 128;

/**
 * Strain shaped like real strain's low-frequency wall: white in-band noise
 * plus a 3 Hz line and a slow random walk 10^4 times louder, which a
 * whitening filter suppresses only where it has its full support.
 */
function realisticStrain(rate: number, seed: number): Float64Array {
  let s = seed >>> 0;
  const rand = () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
  const gauss = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
  const n = DURATION * rate;
  const x = new Float64Array(n);
  let walk = 0;
  for (let i = 0; i < n; i++) {
    walk += gauss() * 30;
    walk *= 0.9995;
    x[i] = gauss() + 1e4 * Math.sin((2 * Math.PI * 3 * i) / rate + 0.3) + walk;
  }
  return x;
}

async function writeDetector(dir: string, rate: number, nanAt?: [number, number]): Promise<string> {
  const x = realisticStrain(rate, 7);
  if (nanAt) x.fill(Number.NaN, (nanAt[0] - START) * rate, (nanAt[1] - START) * rate);
  const path = join(dir, `H-H1_TEST-${START}-${DURATION}.hdf5`);
  await writeStrainFile(path, {
    ifo: "H1",
    start: START,
    duration: DURATION,
    sampleRate: rate,
    dqMask: new Int32Array(DURATION).fill(0b11),
    samples: (o, n) => x.subarray(o, o + n),
  });
  return path;
}

async function whitenAll(stream: DetectorStream, o: WhitenedStrainOptions): Promise<Float64Array> {
  const w = await openWhitenedStrain(stream, o);
  const y = new Float64Array(w.length);
  let at = 0;
  for (let part = await w.step(); part; part = await w.step()) {
    y.set(part, at);
    at += part.length;
  }
  expect(at).toBe(w.length);
  return y;
}

const maxAbs = (x: Float64Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);

describe("the strain pipeline (read → resample → inject → whiten)", () => {
  for (const rate of [256, 1024]) {
    it(`returns only fully supported whitened samples: equal to those of a longer stretch, no artifact at the segment end (files at ${rate} Hz, analysed at 256 Hz)`, async () => {
      const dir = join(t.dir, `full-${rate}`);
      await import("node:fs").then((fs) => fs.mkdirSync(dir, { recursive: true }));
      const stream = await DetectorStream.open([await writeDetector(dir, rate)], { ifo: "H1" });
      const fs = 256;
      const edge = segmentEdge(rate, fs, 1);
      expect(edge).toBe(0.5 + resamplingHalfSupport(rate, fs));
      if (rate === fs) expect(edge).toBe(0.5);
      else expect(edge).toBeGreaterThan(0.5);
      const base = { sampleRate: fs, psdLength: 16, fduration: 1, highpass: 16, psdStart: START };
      // A segment that ends 40 s before the data does: its last whitened samples
      // must not depend on that it ends there.
      const seg: [number, number] = [START, START + 80];
      const range: [number, number] = [START + 16, seg[1] - edge];
      const y = await whitenAll(stream, { ...base, segment: seg, range });
      expect(y.length).toBe((range[1] - range[0]) * fs);
      const longer = await whitenAll(stream, { ...base, segment: [START, START + DURATION], range: [range[0], range[1] + 20] });
      let worst = 0;
      for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i] - longer[i]));
      expect(worst).toBeLessThan(1e-9 * maxAbs(y));
      // Whitened noise everywhere: the last second is no louder than the rest.
      const tail = y.subarray(y.length - fs);
      expect(maxAbs(tail)).toBeLessThan(1.5 * maxAbs(y.subarray(0, y.length - fs)));
      const v = y.reduce((a, x) => a + x * x, 0) / y.length;
      expect(v).toBeGreaterThan(0.5);
      expect(v).toBeLessThan(2);
      // Steps of any size give the same samples (streaming = whole array).
      const small = await whitenAll(stream, { ...base, segment: seg, range, stepSeconds: 3 });
      expect(small).toEqual(y);
      stream.close();
    });
  }

  it("refuses to read outside the segment, or strain that is NaN inside it, naming what and where", async () => {
    const dir = join(t.dir, "bad");
    await import("node:fs").then((fs) => fs.mkdirSync(dir, { recursive: true }));
    const path = await writeDetector(dir, 512, [START + 100, START + 102]);
    const stream = await DetectorStream.open([path], { ifo: "H1" });
    const base = { sampleRate: 256, psdLength: 16, fduration: 1, psdStart: START, context: "job bg-1" };
    const edge = segmentEdge(512, 256, 1);
    // a range up to the segment's very end: its filters would need strain past it
    const past = await openWhitenedStrain(stream, { ...base, segment: [START, START + 64], range: [START + 16, START + 64] }).catch((e) => e);
    expect(past).toBeInstanceOf(BadSegmentError);
    expect(past.message).toContain(`job bg-1: H1: whitened strain over [${START + 16}, ${START + 64}) needs [${START + 16 - edge}, ${START + 64 + edge})`);
    expect(past.message).toContain(`inside the segment [${START}, ${START + 64})`);
    // the segment claims good data across the NaN: the read that meets it fails, naming the file
    const w = await openWhitenedStrain(stream, { ...base, segment: [START, START + 120], range: [START + 16, START + 110] });
    let err: unknown;
    try {
      while (await w.step());
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BadSegmentError);
    expect((err as Error).message).toContain(`job bg-1: H1 has no valid data (NaN or no file) at [${START + 100}, ${START + 102}) inside the good segment`);
    expect((err as Error).message).toContain(path);
    stream.close();
  });

  it("adds signal before whitening, where the injection callback puts it", async () => {
    const dir = join(t.dir, "inject");
    await import("node:fs").then((fs) => fs.mkdirSync(dir, { recursive: true }));
    const stream = await DetectorStream.open([await writeDetector(dir, 256)], { ifo: "H1" });
    const o = { sampleRate: 256, psdLength: 16, fduration: 1, highpass: 16, psdStart: START, segment: [START, START + 64] as [number, number], range: [START + 16, START + 60] as [number, number] };
    const plain = await whitenAll(stream, o);
    const parts: string[] = [];
    const withSignal = await whitenAll(stream, {
      ...o,
      inject: (start, rate, data, part) => {
        parts.push(part);
        if (part !== "analysis") return;
        // a loud 100 Hz burst at START + 40
        for (let i = 0; i < data.length; i++) {
          const tt = start + i / rate - (START + 40);
          data[i] += 1e3 * Math.exp(-((tt / 0.05) ** 2)) * Math.cos(2 * Math.PI * 100 * tt);
        }
      },
    });
    expect(parts).toEqual(["psd", "analysis"]);
    const at = (gps: number) => Math.round((gps - o.range[0]) * 256);
    const d = (i: number) => Math.abs(withSignal[i] - plain[i]);
    expect(d(at(START + 40))).toBeGreaterThan(10);
    expect(d(at(START + 30))).toBeLessThan(1e-6);
    stream.close();
  });
});
