import h5wasm from "h5wasm/node";
import { describe, expect, it } from "vitest";
import { type SegmentList, segmentsFromDQMask } from "../src/index.js";
import { fixture } from "../../../test/fixtures.js";

const NAMES = ["DATA", "CBC_CAT1", "CBC_CAT2"];

describe("segmentsFromDQMask", () => {
  it("keeps samples with every required bit set, one sample = 1/rate s", () => {
    //            0  1  2  3  4  5  6  7
    const mask = [3, 3, 1, 3, 7, 0, 3, 3];
    const l = segmentsFromDQMask({ mask, names: NAMES, start: 100, required: ["DATA", "CBC_CAT1"] });
    expect(l.toJSON()).toEqual([[100, 102], [103, 105], [106, 108]]);
    expect(segmentsFromDQMask({ mask, names: NAMES, start: 100, required: ["DATA"] }).toJSON()).toEqual([[100, 105], [106, 108]]);
    expect(segmentsFromDQMask({ mask, names: NAMES, start: 100, required: ["CBC_CAT2"] }).toJSON()).toEqual([[104, 105]]);
  });

  it("reads bit positions from the names, not from a fixed layout", () => {
    const mask = [1, 2, 2, 1];
    const required = ["CBC_CAT1"];
    expect(segmentsFromDQMask({ mask, names: ["DATA", "CBC_CAT1"], start: 0, required }).toJSON()).toEqual([[1, 3]]);
    expect(segmentsFromDQMask({ mask, names: ["CBC_CAT1", "DATA"], start: 0, required }).toJSON()).toEqual([[0, 1], [3, 4]]);
  });

  it("handles rates other than 1 Hz and fractional starts", () => {
    const mask = [1, 1, 0, 1, 1, 1, 0, 0];
    const l = segmentsFromDQMask({ mask, names: NAMES, start: 1187008000.5, rate: 4, required: ["DATA"] });
    expect(l.toJSON()).toEqual([[1187008000.5, 1187008001], [1187008001.25, 1187008002]]);
  });

  it("takes int64 masks as BigInt, and bits above 31", () => {
    const names = Array.from({ length: 40 }, (_, i) => `BIT${i}`);
    const hi = (1n << 35n) | 1n;
    const mask = new BigInt64Array([hi, 1n, hi, -1n]);
    expect(segmentsFromDQMask({ mask, names, start: 0, required: ["BIT35", "BIT0"] }).toJSON()).toEqual([[0, 1], [2, 4]]);
    // the same as plain numbers
    const nums = [2 ** 35 + 1, 1, 2 ** 35 + 1, 2 ** 36 - 1];
    expect(segmentsFromDQMask({ mask: nums, names, start: 0, required: ["BIT35", "BIT0"] }).toJSON()).toEqual([[0, 1], [2, 4]]);
    // bit 31 with 32-bit masks, which are negative as int32
    const m32 = new Int32Array([-1, 0x7fffffff, -(2 ** 31)]);
    expect(segmentsFromDQMask({ mask: m32, names, start: 0, required: ["BIT31"] }).toJSON()).toEqual([[0, 1], [2, 3]]);
  });

  it("strips the NUL/space padding of fixed-length strings", () => {
    const l = segmentsFromDQMask({ mask: [1, 0], names: ["DATA\0\0\0\0", "CBC_CAT1  "], start: 0, required: ["DATA"] });
    expect(l.toJSON()).toEqual([[0, 1]]);
  });

  it("with nothing required, all of the mask is good; an empty mask gives no time", () => {
    expect(segmentsFromDQMask({ mask: [0, 0], names: NAMES, start: 5, required: [] }).toJSON()).toEqual([[5, 7]]);
    expect(segmentsFromDQMask({ mask: [], names: NAMES, start: 5, required: ["DATA"] }).length).toBe(0);
  });

  it("names the source, the missing flag and the available names", () => {
    expect(() => segmentsFromDQMask({ mask: [1], names: NAMES, start: 0, required: ["DATA", "BURST_CAT1"], source: "H1.hdf5" })).toThrow(
      'H1.hdf5: DQ flag "BURST_CAT1" is not in DQShortnames; available: "DATA", "CBC_CAT1", "CBC_CAT2"',
    );
    expect(() => segmentsFromDQMask({ mask: [1, 0.5], names: NAMES, start: 0, required: ["DATA"], source: "H1.hdf5" })).toThrow(
      "H1.hdf5: DQ mask sample 1 is not an integer: 0.5",
    );
    expect(() => segmentsFromDQMask({ mask: [1], names: NAMES, start: 0, rate: 0, required: [], source: "x" })).toThrow(/x: DQ mask rate must be > 0/);
    expect(() => segmentsFromDQMask({ mask: [1], names: NAMES, start: NaN, required: [] })).toThrow(/start must be a finite GPS time/);
  });
});

const FIXTURES = fixture("gwosc");

// Reads a GWOSC-layout file the way a caller must: GPS start, mask and bit names all from the file.
async function segmentsOfFile(name: string, required: readonly string[]): Promise<SegmentList> {
  await h5wasm.ready;
  const path = `${FIXTURES}/${name}`;
  const file = new h5wasm.File(path, "r");
  try {
    const maskDs = file.get("quality/simple/DQmask") as InstanceType<typeof h5wasm.Dataset>;
    const namesDs = file.get("quality/simple/DQShortnames") as InstanceType<typeof h5wasm.Dataset>;
    const gpsDs = file.get("meta/GPSstart") as InstanceType<typeof h5wasm.Dataset>;
    const mask = maskDs.slice([[0, maskDs.shape![0]]]) as Int32Array;
    const names = namesDs.value as string[];
    const start = Number(gpsDs.value as bigint | number);
    return segmentsFromDQMask({ mask, names, start, required, source: path });
  } finally {
    file.close();
  }
}

describe("segmentsFromDQMask on GWOSC files written by h5py", () => {
  const required = ["DATA", "CBC_CAT1"];

  it("H1 with DATA and CBC_CAT1 gives [1187008000, 1187008040) and [1187008052, 1187008128)", async () => {
    const l = await segmentsOfFile("H-H1_GWOSC_512HZ_R1-1187008000-128.hdf5", required);
    expect(l.toJSON()).toEqual([
      [1187008000, 1187008040],
      [1187008052, 1187008128],
    ]);
    expect(l.duration).toBe(116);
  });

  it("segments from consecutive files merge across the file boundary", async () => {
    const h1 = (await segmentsOfFile("H-H1_GWOSC_512HZ_R1-1187008000-128.hdf5", required)).union(
      await segmentsOfFile("H-H1_GWOSC_512HZ_R1-1187008128-128.hdf5", required),
    );
    expect(h1.toJSON()).toEqual([
      [1187008000, 1187008040],
      [1187008052, 1187008256],
    ]);
    const l1 = (await segmentsOfFile("L-L1_GWOSC_512HZ_R1-1187008000-128.hdf5", required)).union(
      await segmentsOfFile("L-L1_GWOSC_512HZ_R1-1187008128-128.hdf5", required),
    );
    expect(l1.toJSON()).toEqual([
      [1187008000, 1187008150],
      [1187008170, 1187008256],
    ]);
    // coincident time of the two detectors
    expect(h1.intersect(l1).toJSON()).toEqual([
      [1187008000, 1187008040],
      [1187008052, 1187008150],
      [1187008170, 1187008256],
    ]);
  });

  it("a flag the file does not name is refused with the file's names", async () => {
    await expect(segmentsOfFile("H-H1_GWOSC_512HZ_R1-1187008000-128.hdf5", ["DATA", "NO_SUCH_FLAG"])).rejects.toThrow(
      /H-H1_GWOSC_512HZ_R1-1187008000-128\.hdf5: DQ flag "NO_SUCH_FLAG" is not in DQShortnames; available: "DATA", "CBC_CAT1"/,
    );
  });
});
