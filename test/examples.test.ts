// examples/export_pytorch.py documents the whitening a model must be trained
// with. Its numpy/scipy `whiten` must give the samples packages/strain gives
// (the worker's whitening), to rounding. Needs python3 with numpy and scipy
// (`npm test` installs Debian's python3-scipy where it can); torch is never needed.
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { whiten } from "@timeslide/strain";
import { psdFftLength } from "@timeslide/campaign";

const EXAMPLES = join(import.meta.dirname, "../examples");
const PYTHON = ["python3", "/usr/bin/python3"].find((py) => spawnSync(py, ["-c", "import numpy, scipy"]).status === 0);

describe("examples/export_pytorch.py", () => {
  it("whiten() equals packages/strain's whitening on the valid samples", () => {
    if (!PYTHON) throw new Error("no python3 here imports numpy and scipy: apt-get install -y python3-scipy (npm test does it as root)");
    const fs = 256;
    const n = fs * 40;
    let s = 12345;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0), s / 2 ** 32 - 0.5);
    const x = new Float64Array(n);
    let red = 0;
    for (let i = 0; i < n; i++) x[i] = (red = 0.9 * red + rnd()) + 0.3 * Math.sin(i * 0.7); // coloured noise and a line
    const w = whiten(x, { sampleRate: fs, psdLength: 16, fduration: 1, highpass: 20, fftlength: psdFftLength({ psd_length: 16, fduration: 1 }) }); // as the worker whitens
    const ours = w.data.subarray(w.valid[0], w.valid[1]);
    const dir = mkdtempSync(join(tmpdir(), "timeslide-examples-"));
    try {
      writeFileSync(join(dir, "x.json"), JSON.stringify(Array.from(x)));
      const py = spawnSync(
        PYTHON,
        ["-c", `import json, sys, numpy as np; sys.path.insert(0, ${JSON.stringify(EXAMPLES)}); from export_pytorch import whiten; print(json.dumps(whiten(np.array(json.load(open(${JSON.stringify(join(dir, "x.json"))}))), 256, psd_length=16, fduration=1, highpass=20).tolist()))`],
        { encoding: "utf8", maxBuffer: 1 << 26 },
      );
      expect(py.status, py.stderr).toBe(0);
      const theirs = JSON.parse(py.stdout) as number[];
      expect(theirs.length).toBe(ours.length);
      let max = 0;
      for (let i = 0; i < ours.length; i++) max = Math.max(max, Math.abs(ours[i] - theirs[i]));
      expect(max).toBeLessThan(1e-9);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
