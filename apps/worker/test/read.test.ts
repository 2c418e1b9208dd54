// A job reads, resamples and whitens its strain step by step while its
// shifts stream. The steps must give exactly what reading the whole range
// at once and filtering it as one array gives.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SegmentList } from "@timeslide/segments";
import { psdFftLength, type CampaignSpec, type JobPayload } from "@timeslide/campaign";
import { Decimator, DetectorStream, Whitener, decimate, injectInto, readInjections, segmentEdge, synthesize, welchPsd, type InjectionSet } from "@timeslide/strain";
import { openPiece, type JobContext } from "../src/pipeline.js";

const dir = mkdtempSync(join(tmpdir(), "timeslide-read-"));
const FS = 256;
const inference = { psd_length: 16, fduration: 1, highpass: 20 };
let files: Record<string, string[]>;
let injections: InjectionSet;
let start = 0;

beforeAll(async () => {
  const syn = await synthesize({ out: dir, ifos: ["H1"], duration: 300, sampleRate: 1024, fileDuration: 100, gaps: 0, injections: 5, snr: [20, 30], seed: 5 });
  files = syn.files;
  start = syn.start;
  injections = await readInjections(syn.injectionFile!);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The whole-array path: one read widened by the edge, one decimation (its
 * partially supported samples dropped), injections added, one filter pass,
 * the whitening filter's partially supported samples dropped.
 */
async function wholeRange(a: number, b: number, span0: number, kind: string, analysed: SegmentList) {
  const stream = await DetectorStream.open(files.H1, { ifo: "H1" });
  const half = (new Decimator(4).taps.length - 1) / 2;
  const valid = (x: Float64Array, n: number) => x.subarray(Math.ceil(half / 4), Math.floor((n - 1 - half) / 4) + 1);
  const edge = segmentEdge(1024, FS, inference.fduration);
  const r = edge - inference.fduration / 2;
  const psdIn = (await stream.read(span0, span0 + inference.psd_length)).data;
  const psdRaw = valid(decimate(psdIn, 4), psdIn.length);
  const rawIn = (await stream.read(a - edge, b + edge)).data;
  const raw = valid(decimate(rawIn, 4), rawIn.length);
  if (kind === "injection") {
    injectInto({ ifo: "H1", start: a - edge + r, sampleRate: FS, data: raw }, injections, { shift: 0, analysed });
    injectInto({ ifo: "H1", start: span0 + r, sampleRate: FS, data: psdRaw }, injections, { shift: 0, analysed });
  }
  const w = Whitener.fromPsd(welchPsd(psdRaw, FS, { fftlength: psdFftLength(inference) }), { sampleRate: FS, ...inference });
  const head = w.push(raw);
  const tail = w.flush();
  const out = new Float64Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  const e = (inference.fduration / 2) * FS;
  return out.subarray(e, e + (b - a) * FS);
}

describe("reading a job's strain step by step", () => {
  for (const kind of ["background", "injection"] as const)
    it(`equals the whole-array read, resampling and whitening exactly (${kind})`, async () => {
      const segment: [number, number] = [start, start + 300];
      const span: [number, number] = [start + 20, start + 290];
      const ctx = { campaign: "t", spec: { data: { sample_rate: FS }, inference }, edge: segmentEdge(1024, FS, 1), files, output: dir, injections } as unknown as JobContext;
      const payload = { kind, segment, span } as unknown as JobPayload;
      const analysed = new SegmentList([[span[0] + 16, span[1]]]);
      const injected = new Set<number>();
      const range: [number, number] = [span[0] + 10, span[1] - 3];
      const reader = await openPiece("t", ctx, "H1", payload, range, injected, analysed);
      const seen: number[] = [];
      while (await reader.step()) seen.push(reader.piece.filled);
      expect(seen.length).toBeGreaterThan(5); // really in steps
      expect(seen.every((n, i) => i === 0 || n > seen[i - 1])).toBe(true);
      // only the range, each sample with the filters' full support
      const expected = await wholeRange(range[0], range[1], span[0], kind, analysed);
      expect(reader.piece.start).toBe(range[0]);
      expect(reader.piece.filled).toBe(expected.length);
      expect(reader.piece.data).toEqual(expected);
      if (kind === "injection") expect(injected.size).toBeGreaterThan(0);
    });

  it("a waiting consumer is released as steps land, and rejected when reading fails", async () => {
    const ctx = { campaign: "t", spec: { data: { sample_rate: FS }, inference }, edge: segmentEdge(1024, FS, 1), files, output: dir } as unknown as JobContext;
    const payload = { kind: "background", segment: [start, start + 300], span: [start, start + 300] } as unknown as JobPayload;
    const reader = await openPiece("t", ctx, "H1", payload, [start + 20, start + 280], new Set(), new SegmentList([]));
    const wait = reader.piece.until(FS * 40);
    expect(wait).toBeInstanceOf(Promise);
    let released = false;
    void wait!.then(() => (released = true));
    await reader.step();
    await Promise.resolve();
    expect(released).toBe(false);
    for (let k = 0; k < 4; k++) await reader.step();
    await Promise.resolve();
    expect(released).toBe(true);
    const late = reader.piece.until(reader.piece.data.length);
    reader.piece.fail(new Error("disk gone"));
    await expect(late).rejects.toThrow("disk gone");
    await expect(reader.piece.until(reader.piece.data.length)).rejects.toThrow("disk gone");
  });

  it("jobs of one context open each detector's files once; a file damaged since fails only the reads that need it", async () => {
    // A copy of the data: this test damages a file.
    const own = { H1: files.H1.map((f, i) => join(dir, `copy-${i}.hdf5`)) };
    files.H1.forEach((f, i) => copyFileSync(f, own.H1[i]));
    const ctx = { campaign: "t", spec: { data: { sample_rate: FS }, inference }, edge: segmentEdge(1024, FS, 1), files: own, output: dir } as unknown as JobContext;
    const payload = { kind: "background", segment: [start, start + 300], span: [start, start + 300] } as unknown as JobPayload;
    const drain = async (range: [number, number]) => {
      const reader = await openPiece("t", ctx, "H1", payload, range, new Set(), new SegmentList([]));
      while (await reader.step());
      return reader.piece;
    };
    await drain([start + 20, start + 90]);
    const opened = ctx.streams?.get("H1");
    expect(opened).toBeInstanceOf(Promise);
    // The last file (its time: [start + 200, start + 300)) is cut short after the files were opened.
    const last = own.H1.find((f) => f.includes("copy-2"))!;
    writeFileSync(last, readFileSync(last).subarray(0, 4096));
    await expect(drain([start + 220, start + 280])).rejects.toThrow(/truncated|unreadable/);
    const early = await drain([start + 30, start + 150]);
    expect(early.filled).toBe(early.data.length);
    expect(ctx.streams?.get("H1")).toBe(opened); // the same stream throughout
  });
});
