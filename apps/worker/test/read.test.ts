// A job reads, resamples and whitens its strain step by step while its
// shifts stream. The steps must give exactly what reading the whole range
// at once and filtering it as one array gives.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SegmentList } from "@timeslide/segments";
import type { CampaignSpec, JobPayload } from "@timeslide/campaign";
import { DetectorStream, Whitener, decimate, injectInto, readInjections, synthesize, welchPsd, type InjectionSet } from "@timeslide/strain";
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

/** The whole-array path: one read, one decimation, injections added, one filter pass. */
async function wholeRange(a: number, b: number, span0: number, kind: string, analysed: SegmentList) {
  const stream = await DetectorStream.open(files.H1, { ifo: "H1" });
  const psdRaw = decimate((await stream.read(span0, span0 + inference.psd_length)).data, 4);
  const raw = decimate((await stream.read(a, b)).data, 4);
  if (kind === "injection") {
    injectInto({ ifo: "H1", start: a, sampleRate: FS, data: raw }, injections, { shift: 0, analysed });
    injectInto({ ifo: "H1", start: span0, sampleRate: FS, data: psdRaw }, injections, { shift: 0, analysed });
  }
  const w = Whitener.fromPsd(welchPsd(psdRaw, FS, { fftlength: inference.fduration }), { sampleRate: FS, ...inference });
  const head = w.push(raw);
  const tail = w.flush();
  const out = new Float64Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out.subarray(0, raw.length);
}

describe("reading a job's strain step by step", () => {
  for (const kind of ["background", "injection"] as const)
    it(`equals the whole-array read, resampling and whitening exactly (${kind})`, async () => {
      const segment: [number, number] = [start, start + 300];
      const span: [number, number] = [start + 20, start + 290];
      const ctx = { campaign: "t", spec: { data: { sample_rate: FS }, inference }, files, output: dir, injections } as unknown as JobContext;
      const payload = { kind, segment, span } as unknown as JobPayload;
      const analysed = new SegmentList([[span[0] + 16, span[1]]]);
      const injected = new Set<number>();
      const range: [number, number] = [span[0] + 10, span[1] - 3];
      const reader = await openPiece("t", ctx, "H1", payload, range, injected, analysed);
      const seen: number[] = [];
      while (await reader.step()) seen.push(reader.piece.filled);
      expect(seen.length).toBeGreaterThan(5); // really in steps
      expect(seen.every((n, i) => i === 0 || n > seen[i - 1])).toBe(true);
      // padded by fduration/2 + 1 s for the resampler, clamped to the segment
      const expected = await wholeRange(range[0] - 1.5, range[1] + 1.5, span[0], kind, analysed);
      expect(reader.piece.start).toBe(range[0] - 1.5);
      expect(reader.piece.filled).toBe(expected.length);
      expect(reader.piece.data).toEqual(expected);
      if (kind === "injection") expect(injected.size).toBeGreaterThan(0);
    });

  it("a waiting consumer is released as steps land, and rejected when reading fails", async () => {
    const ctx = { campaign: "t", spec: { data: { sample_rate: FS }, inference }, files, output: dir } as unknown as JobContext;
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
    const ctx = { campaign: "t", spec: { data: { sample_rate: FS }, inference }, files: own, output: dir } as unknown as JobContext;
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
