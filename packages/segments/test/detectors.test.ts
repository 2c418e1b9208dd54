// The detector constants (one fact, one place): vertices and arm directions
// as published (LALSuite LALDetectors.h), checked for what they must satisfy.
import { describe, expect, it } from "vitest";
import { DETECTOR_ARMS, DETECTOR_VERTICES, KNOWN_IFOS, lightTravelTime } from "../src/index.js";

const dot = (a: readonly number[], b: readonly number[]) => a[0] * b[0] + a[1] * b[1] + a[2] * b[2];

describe("detector constants", () => {
  it("every known detector has a vertex and two arms", () => {
    expect(Object.keys(DETECTOR_ARMS).sort()).toEqual([...KNOWN_IFOS].sort());
  });

  it("arms are unit vectors, perpendicular to each other and (nearly) horizontal at the vertex", () => {
    for (const ifo of KNOWN_IFOS) {
      const { x, y } = DETECTOR_ARMS[ifo];
      const r = DETECTOR_VERTICES[ifo];
      const up = r.map((v) => v / Math.hypot(...r));
      expect(Math.hypot(...x)).toBeCloseTo(1, 6);
      expect(Math.hypot(...y)).toBeCloseTo(1, 6);
      expect(Math.abs(dot(x, y))).toBeLessThan(1e-3);
      // geocentric vs geodetic vertical differ by ≤ 0.2°; arm altitudes are ≤ 4 mrad
      expect(Math.abs(dot(x, up))).toBeLessThan(0.01);
      expect(Math.abs(dot(y, up))).toBeLessThan(0.01);
    }
  });

  it("H1–L1 light travel time is the familiar 10.0 ms", () => {
    expect(lightTravelTime("H1", "L1")).toBeCloseTo(0.01001, 4);
  });
});
