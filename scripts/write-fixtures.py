#!/usr/bin/env python3
"""Interop fixtures written by another HDF5 writer (h5py), at test time.

The tests must read files that timeslide did not write, so these come from
h5py (libhdf5), not from h5wasm: GWOSC-layout strain with fixed-length byte
strings as the open-data archive writes them, an injection file and two
event sets. Deterministic (seeded); layouts as ../shared/DESIGN.md (Formats).

  python3 scripts/write-fixtures.py OUT_DIR

What the tests rely on (kept in step with test/fixtures.ts):
- gwosc/: H1 and L1, two 128 s files each from GPS 1187008000 at 512 Hz,
  white Gaussian noise x 1e-21; DQmask 1 Hz, bits DATA, CBC_CAT1, ... ;
  DATA and CBC_CAT1 unset and strain NaN on H1 [1187008040, 1187008052)
  and L1 [1187008150, 1187008170).
- injections.h5: sine-Gaussians (120 Hz) at GPS 1187008070.25 and
  1187008200.5, 512 Hz, t_offset -0.45 s, 256 samples; parameters snr,
  distance, weight.
- background.h5: 500 events with ties (statistics rounded to 1e-3), shifts
  [0, k] with k in 1..49, livetime 12000 s; foreground.h5: 5 zero-lag
  events, livetime 256 s.
"""
import os
import sys

import h5py
import numpy as np

GPS0 = 1187008000
RATE = 512
FILE_S = 128
NAMES = ["DATA", "CBC_CAT1", "CBC_CAT2", "CBC_CAT3", "BURST_CAT1", "BURST_CAT2", "BURST_CAT3"]
DESCRIPTIONS = ["data present", "cbc cat1", "cbc cat2", "cbc cat3", "burst cat1", "burst cat2", "burst cat3"]
ALL_BITS = (1 << len(NAMES)) - 1
# DATA and CBC_CAT1 unset (strain NaN) over these GPS spans
GAPS = {"H1": [(GPS0 + 40, GPS0 + 52)], "L1": [(GPS0 + 150, GPS0 + 170)]}


def fixed_bytes(values):
    width = max(len(v) for v in values)
    return np.array([v.encode() for v in values], dtype=f"S{width}")


def write_strain(out, ifo, rng):
    for k in range(2):
        start = GPS0 + k * FILE_S
        n = FILE_S * RATE
        strain = rng.standard_normal(n) * 1e-21
        mask = np.full(FILE_S, ALL_BITS, dtype=np.int32)
        for a, b in GAPS[ifo]:
            lo, hi = max(a, start), min(b, start + FILE_S)
            if lo < hi:
                mask[lo - start : hi - start] &= ~0b11
                strain[(lo - start) * RATE : (hi - start) * RATE] = np.nan
        name = f"{ifo[0]}-{ifo}_GWOSC_512HZ_R1-{start}-{FILE_S}.hdf5"
        with h5py.File(os.path.join(out, "gwosc", name), "w") as f:
            meta = f.create_group("meta")
            meta["Detector"] = np.bytes_(ifo)
            meta["Observatory"] = np.bytes_(ifo[0])
            meta["Type"] = np.bytes_("StrainTimeSeries")
            meta["GPSstart"] = np.int64(start)
            meta["Duration"] = np.int64(FILE_S)
            q = f.create_group("quality/simple")
            q["DQShortnames"] = fixed_bytes(NAMES)
            q["DQDescriptions"] = fixed_bytes(DESCRIPTIONS)
            dq = q.create_dataset("DQmask", data=mask)
            dq.attrs.update({"Xstart": float(start), "Xspacing": 1.0, "Npoints": FILE_S})
            ds = f.create_dataset("strain/Strain", data=strain)
            ds.attrs.update({"Xstart": float(start), "Xspacing": 1.0 / RATE, "Npoints": n, "Xunits": "second", "Yunits": "strain"})


def write_injections(out):
    times = np.array([GPS0 + 70.25, GPS0 + 200.5])
    t_offset, length = -0.45, 256
    t = t_offset + np.arange(length) / RATE
    with h5py.File(os.path.join(out, "injections.h5"), "w") as f:
        g = f.create_group("injections")
        g.attrs["sample_rate"] = float(RATE)
        g.attrs["t_offset"] = t_offset
        g["time"] = times
        for ifo, phase in (("H1", 0.0), ("L1", 1.1)):
            w = [2e-21 * np.exp(-((t / 0.05) ** 2)) * np.sin(2 * np.pi * 120 * t + phase + i) for i in range(len(times))]
            g[ifo] = np.array(w, dtype=np.float32)
        p = f.create_group("parameters")
        p["snr"] = np.array([9.0, 18.0])
        p["distance"] = np.array([400.0, 200.0])
        p["weight"] = np.array([1.0, 1.0])


def write_events(path, kind, livetime, time, stat, shift):
    with h5py.File(path, "w") as f:
        e = f.create_group("events")
        e["time"] = time
        e["detection_statistic"] = stat
        e["shift"] = shift
        e.attrs["livetime"] = float(livetime)
        e.attrs["kind"] = kind
        e.attrs["ifos"] = fixed_bytes(["H1", "L1"])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: write-fixtures.py OUT_DIR")
    out = sys.argv[1]
    os.makedirs(os.path.join(out, "gwosc"), exist_ok=True)
    rng = np.random.default_rng(20170817)
    for ifo in ("H1", "L1"):
        write_strain(out, ifo, rng)
    write_injections(out)
    n = 500
    stat = np.round(rng.standard_normal(n), 3)
    stat[:20] = stat[20:40]  # ties, whatever the draw
    shift = np.zeros((n, 2))
    shift[:, 1] = rng.integers(1, 50, n).astype(float)
    time = GPS0 + np.sort(rng.uniform(0, 256, n))
    write_events(os.path.join(out, "background.h5"), "background", 12000.0, time, stat, shift)
    fg_time = GPS0 + np.array([11.8716774, 19.12284636, 94.02237344, 133.0510478, 164.66194963])
    write_events(os.path.join(out, "foreground.h5"), "foreground", 256.0, fg_time, np.array([1.374, -0.306, -0.195, -0.522, 0.541]), np.zeros((5, 2)))
    print(out)


if __name__ == "__main__":
    main()
