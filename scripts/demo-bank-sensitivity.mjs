// Measures the demo bank's sensitivity on a demo's data, factorized as
// DESIGN.md's "Factorized models" describes (and as the factorized worker
// will): each detector's whitened strain is encoded once, then the head runs
// on re-paired embeddings for every time slide. Not the worker: whitening is
// one PSD per good stretch (its first psd_length s) instead of one per job,
// events are 8 s block maxima instead of the worker's clustering, and
// injections are added sample-aligned into the strain (same rate) before
// whitening. Usage (after `npm run build` and a demo run that wrote DIR/data):
//   node scripts/demo-bank-sensitivity.mjs DIR [background-years=1]
// With a demo's results (DIR/results/injections.h5: the workers' injection
// events, whole model), it also tables the workers' own injection statistics
// against the threshold found here. Environment: FDURATION, FFTLENGTH,
// PSD_LENGTH (whitening; default the demo's 1, 1, 16) and BANK_KAPPA.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { existsSync, readFileSync } from "node:fs";
import h5wasm from "h5wasm/node";
import { DetectorStream, readGlitchList, readInjections, whiten } from "@timeslide/strain";
import { buildBankEncoder, buildBankHead } from "@timeslide/model-repo";

const dir = process.argv[2];
const years = Number(process.argv[3] ?? 1);
const fs = 256, K = 448, stride = 256, highpass = 20, cluster = 8;
const psdLength = Number(process.env.PSD_LENGTH ?? 16);
const fduration = Number(process.env.FDURATION ?? 1);
const bank = { sampleRate: fs, templateLength: 160, nTemplates: 16, chunks: 4, highpass, kernel: K, nIfo: 2, ...(process.env.BANK_KAPPA ? { chi2Mismatch: Number(process.env.BANK_KAPPA) } : {}) };
const ifos = ["H1", "L1"];
const files = readdirSync(join(dir, "data")).filter((f) => f.endsWith(".hdf5"));
const opts = { intraOpNumThreads: 1 };
const enc = await ort.InferenceSession.create(buildBankEncoder(bank), opts);
const head = await ort.InferenceSession.create(buildBankHead(bank), opts);
const D = 2 * bank.nTemplates;
const t0 = Date.now();

const raw = {};
let gps0 = 0;
for (const ifo of ifos) {
  const s = await DetectorStream.open(files.filter((f) => f.startsWith(ifo[0] + "-" + ifo)).map((f) => join(dir, "data", f)), { ifo });
  const segs = s.coverage().segments;
  const span = [segs[0].start, segs[segs.length - 1].end];
  const sl = await s.read(span[0], span[1]);
  raw[ifo] = sl.data;
  gps0 = sl.start;
  s.close();
}
const n = Math.min(...ifos.map((i) => raw[i].length));
// good stretches: both detectors finite, at least 300 s
const stretches = [];
for (let i = 0; i < n; ) {
  while (i < n && !ifos.every((f) => Number.isFinite(raw[f][i]))) i++;
  const a = i;
  while (i < n && ifos.every((f) => Number.isFinite(raw[f][i]))) i++;
  if (i - a >= 300 * fs) stretches.push([a, i]);
}

async function encode(x) {
  // windows start every stride from the whitened data's valid start; returns [nWin, D]
  const nWin = Math.floor((x.length - K) / stride) + 1;
  const out = new Float32Array(nWin * D);
  for (let b0 = 0; b0 < nWin; b0 += 256) {
    const B = Math.min(256, nWin - b0);
    const w = new Float32Array(B * K);
    for (let b = 0; b < B; b++) for (let k = 0; k < K; k++) w[b * K + k] = x[(b0 + b) * stride + k];
    const r = await enc.run({ whitened: new ort.Tensor("float32", w, [B, 1, K]) });
    out.set(r.embedding.data, b0 * D);
  }
  return { nWin, emb: out };
}

// whitened windows on a global grid: window g starts at gps0 + g seconds (stride = 1 s)
async function embedAll(injSet) {
  const grid = {}; // ifo -> Map(g -> offset into emb)
  for (const ifo of ifos) grid[ifo] = { emb: [], index: new Map() };
  for (const [a, b] of stretches) {
    for (const ifo of ifos) {
      const x = Float64Array.from(raw[ifo].subarray(a, b));
      if (injSet) {
        const wf = injSet.waveforms[ifo];
        for (let j = 0; j < injSet.times.length; j++) {
          const i0 = Math.round((injSet.times[j] + injSet.tOffset - gps0) * fs) - a;
          for (let k = 0; k < injSet.length; k++) if (i0 + k >= 0 && i0 + k < x.length) x[i0 + k] += wf[j * injSet.length + k];
        }
      }
      const w = whiten(x, { sampleRate: fs, psdLength, fduration, highpass, fftlength: Number(process.env.FFTLENGTH ?? 1) }); // the demo's inference.fftlength
      const v0 = Math.max(w.valid[0], psdLength * fs); // after the PSD burn-in
      const first = Math.ceil((a + v0) / stride) * stride - a; // on the global 1 s grid
      const { nWin, emb } = await encode(w.data.subarray(first, w.valid[1]));
      const g0 = (a + first) / stride;
      const G = grid[ifo];
      const base = G.emb.length;
      G.emb.push(emb);
      for (let k = 0; k < nWin; k++) G.index.set(g0 + k, [base, k]);
    }
  }
  return grid;
}

async function headOn(grid, pairs) {
  // pairs: [gH, gL][]; returns statistic per pair
  const out = new Float32Array(pairs.length);
  const chunk = 65536;
  for (let p0 = 0; p0 < pairs.length; p0 += chunk) {
    const P = Math.min(chunk, pairs.length - p0);
    const e = new Float32Array(P * 2 * D);
    for (let q = 0; q < P; q++)
      pairs[p0 + q].forEach((g, i) => {
        const [blk, k] = grid[ifos[i]].index.get(g);
        e.set(grid[ifos[i]].emb[blk].subarray(k * D, (k + 1) * D), (q * 2 + i) * D);
      });
    const r = await head.run({ embedding: new ort.Tensor("float32", e, [P, 2, D]) });
    out.set(r.detection_statistic.data, p0);
  }
  return out;
}

const bg = await embedAll(null);
const tEnc = Date.now();
const gs = [...bg.H1.index.keys()].filter((g) => bg.L1.index.has(g)).sort((a, b) => a - b);
const gMin = gs[0], gMax = gs[gs.length - 1];
const L1set = new Set(bg.L1.index.keys());
// circular slides over the common windows: L1's window (g + shift) mod the span, both detectors' windows present
// an odd ring, so that 2 s shifts reach every offset around it (an even one only half of them)
const spanW = (gMax - gMin + 1) % 2 ? gMax - gMin + 1 : gMax - gMin;
const want = years * 365.25 * 86400;
const events = [];
let livetime = 0;
const seen = new Set();
for (let k = 1; livetime < want && k < spanW; k++) {
  const sh = (2 * k) % spanW; // shifts of 2 s (the demo's background.step) around the ring, each once
  if (sh === 0 || seen.has(sh)) continue;
  seen.add(sh);
  const pairs = [];
  for (const g of gs) {
    if (g - gMin >= spanW) continue;
    const gl = gMin + ((g - gMin + sh) % spanW);
    if (L1set.has(gl)) pairs.push([g, gl]);
  }
  const st = await headOn(bg, pairs);
  livetime += pairs.length; // 1 s per window
  // events: maxima of 8 s blocks
  let blk = -1, best = -1, at = null;
  for (let q = 0; q < pairs.length; q++) {
    const b = Math.floor(pairs[q][0] / cluster);
    if (b !== blk) { if (best > 0) events.push([best, ...at]); blk = b; best = -1; }
    if (st[q] > best) { best = st[q]; at = pairs[q]; }
  }
  if (best > 0) events.push([best, ...at]);
}
events.sort((a, b) => b[0] - a[0]);
// which of the loudest background events have a glitch (synth's list) in either detector's window
const glitches = readGlitchList(readFileSync(join(dir, "data", "glitches.txt"), "utf8"));
const hasGlitch = (ifo, g) => glitches.some((x) => x.ifo === ifo && x.time >= gps0 + g && x.time < gps0 + g + K / fs);
const top = events.slice(0, 50);
const withGlitch = top.filter(([, gh, gl]) => hasGlitch("H1", gh) || hasGlitch("L1", gl)).length;
console.log(`loudest 50 background events: ${withGlitch} with a glitch in a detector's window (windows with a glitch: ~${((glitches.length / 2 / (n / fs)) * (K / fs) * 2 * 100).toFixed(1)}% of pairs)`);
for (let i = 0; i < events.length; i++) events[i] = events[i][0];
const ly = livetime / (365.25 * 86400);
const farThreshold = (perYear) => events[Math.max(0, Math.round(perYear * ly) - 1)] ?? 0;
const tBg = Date.now();
console.log(`background: ${ly.toFixed(3)} y (${livetime} s of slid windows), ${events.length} events; loudest ${events.slice(0, 5).map((v) => v.toFixed(2)).join(" ")}`);
const thr = { month: farThreshold(12), day: farThreshold(365.25) };
console.log(`threshold at FAR 1/month: ${thr.month.toFixed(3)}; at 1/day: ${thr.day.toFixed(3)}`);

// injections: zero lag, each injection's statistic = max over windows within ±2 s of its time
const injPath = join(dir, "data", "injections.h5");
const inj = await readInjections(injPath, ifos);
const fg = await embedAll(inj);
const bins = [[6, 8], [8, 10], [10, 12], [12, 15], [15, 20], [20, 30]];
const table = bins.map(() => ({ inj: 0, found: 0, foundDay: 0 }));
let glitchy = 0;
for (let j = 0; j < inj.times.length; j++) {
  const gc = Math.floor(inj.times[j] - gps0); // window g starts at gps0 + g s
  const pairs = [];
  for (let g = gc - 3; g <= gc + 2; g++) if (fg.H1.index.has(g) && fg.L1.index.has(g)) pairs.push([g, g]);
  if (!pairs.length) continue; // in a gap or burn-in
  const st = await headOn(fg, pairs);
  const s = Math.max(...st);
  const snr = inj.parameters.snr[j];
  const bi = bins.findIndex(([lo, hi]) => snr >= lo && snr < hi);
  if (bi < 0) continue;
  table[bi].inj++;
  if (s > thr.month) table[bi].found++;
  if (s > thr.day) table[bi].foundDay++;
}
// the workers' injection events (the demo's campaign, whole model) against the same thresholds
const workerTable = bins.map(() => ({ inj: 0, found: 0, foundOwn: 0 }));
// and against the threshold of the campaign's own background (report.json's FAR curve), when there is one
const reportFile = join(dir, "results", "report.json");
const own = existsSync(reportFile)
  ? JSON.parse(readFileSync(reportFile, "utf8")).far_curve.filter((x) => x.far_per_year <= 12).reduce((m, x) => Math.min(m, x.detection_statistic), Infinity)
  : undefined;
const resultFile = join(dir, "results", "injections.h5");
let workers = false;
if (existsSync(resultFile)) {
  await h5wasm.ready;
  const f = new h5wasm.File(resultFile, "r");
  const idx = f.get("events/injection_index").value;
  const stat = f.get("events/detection_statistic").value;
  const analysed = f.get("injections/index").value;
  const snr = f.get("parameters/snr").value;
  const best = new Map();
  for (let k = 0; k < idx.length; k++) best.set(Number(idx[k]), Math.max(best.get(Number(idx[k])) ?? 0, stat[k]));
  for (const j of analysed) {
    const bi = bins.findIndex(([lo, hi]) => snr[Number(j)] >= lo && snr[Number(j)] < hi);
    if (bi < 0) continue;
    workerTable[bi].inj++;
    if ((best.get(Number(j)) ?? 0) > thr.month) workerTable[bi].found++;
    if (own !== undefined && (best.get(Number(j)) ?? 0) >= own) workerTable[bi].foundOwn++;
  }
  f.close();
  workers = true;
}
const tEnd = Date.now();
if (own !== undefined) console.log(`the campaign's own background (report.json): statistic ${own.toFixed(3)} at FAR ≤ 12 /y`);
console.log("network SNR   found/injected at FAR ≤ 1/month   (≤ 1/day)" + (workers ? "   workers' events at FAR ≤ 1/month (this threshold; the campaign's)" : ""));
for (const [i, [lo, hi]] of bins.entries())
  console.log(
    `  ${lo}–${hi}`.padEnd(14) + `${table[i].found}/${table[i].inj}`.padEnd(34) + `${table[i].foundDay}/${table[i].inj}`.padEnd(10) +
      (workers ? `${workerTable[i].found}/${workerTable[i].inj}`.padEnd(10) + (own !== undefined ? `${workerTable[i].foundOwn}/${workerTable[i].inj}` : "") : ""),
  );
const hi = table.slice(3).reduce((a, t) => ({ f: a.f + t.found, n: a.n + t.inj }), { f: 0, n: 0 });
console.log(`SNR ≥ 12: ${hi.f}/${hi.n} found at FAR ≤ 1/month` + (workers ? `; workers' events: ${workerTable.slice(3).reduce((a, t) => a + t.found, 0)}/${workerTable.slice(3).reduce((a, t) => a + t.inj, 0)}` : ""));
console.log(`timings: encode ${(tEnc - t0) / 1000} s, background head ${(tBg - tEnc) / 1000} s, injections ${(tEnd - tBg) / 1000} s`);
