// Strain benchmark: read + resample + whiten throughput (seconds of strain
// per wall second on one core; Node runs this single-threaded) against the
// raw fft.js cost of the FFTs the same work needs, and the h5wasm read rate.
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import FFT from "fft.js";
import { DetectorStream, decimate, whiten, synthesize } from "@timeslide/strain";

const RATE_IN = 4096;
const RATE_OUT = 2048;
const SEGMENT = 512; // s
const FILE = 256; // s per file
const W = { sampleRate: RATE_OUT, psdLength: 64, fduration: 1, highpass: 32 };
const REPS = 3;

const dir = mkdtempSync(join(tmpdir(), "timeslide-strain-bench-"));
try {
  const syn = await synthesize({ out: dir, ifos: ["H1"], duration: SEGMENT, sampleRate: RATE_IN, fileDuration: FILE, seed: 1 });
  const files = syn.files.H1;
  const bytes = files.reduce((a, f) => a + statSync(f).size, 0);
  const stream = await DetectorStream.open(files, { ifo: "H1" });

  const best = (fn) => {
    let t = Infinity;
    return async () => {
      for (let r = 0; r < REPS; r++) {
        const t0 = performance.now();
        await fn();
        t = Math.min(t, (performance.now() - t0) / 1000);
      }
      return t;
    };
  };

  // h5wasm read rate (whole segment, across the file boundary)
  const tRead = await best(async () => {
    await stream.read(syn.start, syn.end);
  })();
  const strainBytes = SEGMENT * RATE_IN * 8;

  // the pipeline a worker runs once per segment and detector
  let tResample = Infinity, tWhiten = Infinity;
  const tPipe = await best(async () => {
    const s = await stream.read(syn.start, syn.end);
    let t0 = performance.now();
    const x = decimate(s.data, RATE_IN / RATE_OUT);
    tResample = Math.min(tResample, (performance.now() - t0) / 1000);
    t0 = performance.now();
    whiten(x, W);
    tWhiten = Math.min(tWhiten, (performance.now() - t0) / 1000);
  })();

  // raw fft.js cost of the same transforms: Welch segments (real forward),
  // the filter design (one inverse), the overlap-save blocks (forward + inverse)
  const nOut = SEGMENT * RATE_OUT;
  const nfir = W.fduration * RATE_OUT;
  const nper = nfir;
  const nseg = Math.floor((W.psdLength * RATE_OUT - nper) / (nper / 2)) + 1;
  let nfft = 2;
  while (nfft < 8 * nfir) nfft *= 2;
  const block = nfft - (nfir - 1);
  const nblocks = Math.ceil((nOut + nfir / 2) / block);
  const fftRaw = (n, forward, inverse) => {
    const f = new FFT(n);
    const input = new Float64Array(n).map(() => Math.random());
    const out = new Float64Array(2 * n);
    const cin = new Float64Array(2 * n).map(() => Math.random());
    for (let i = 0; i < forward; i++) f.realTransform(out, input);
    for (let i = 0; i < inverse; i++) f.inverseTransform(out, cin);
  };
  const tFft = await best(() => {
    fftRaw(nper, nseg, 1);
    fftRaw(nfft, nblocks, nblocks);
  })();

  const perCore = (t) => (SEGMENT / t).toFixed(0);
  console.log(`segment ${SEGMENT} s, ${files.length} files (${(bytes / 1e6).toFixed(1)} MB), ${RATE_IN} -> ${RATE_OUT} Hz, whiten psd_length ${W.psdLength} s fduration ${W.fduration} s; best of ${REPS}`);
  console.log(`h5wasm read: ${(strainBytes / 1e6 / tRead).toFixed(0)} MB/s (${(tRead * 1000).toFixed(1)} ms for ${(strainBytes / 1e6).toFixed(1)} MB of strain)`);
  console.log(`read+resample+whiten: ${perCore(tPipe)} s of strain per s per core (${(tPipe * 1000).toFixed(1)} ms; resample ${(tResample * 1000).toFixed(1)} ms, whiten ${(tWhiten * 1000).toFixed(1)} ms)`);
  console.log(`raw fft.js FFTs of the same sizes (${nseg}×${nper} + ${nblocks}×2×${nfft}): ${perCore(tFft)} s of strain per s (${(tFft * 1000).toFixed(1)} ms)`);
  console.log(`ratio pipeline / raw FFT time: ${(tPipe / tFft).toFixed(2)}; whitening alone / raw FFT: ${(tWhiten / tFft).toFixed(2)}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
