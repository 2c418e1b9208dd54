// Merging background events into the bounded-memory summary.
//  A. in memory: J jobs x E events through the same addJob/merge path the
//     aggregator uses (partial summaries of 1000 jobs, merged), at two sizes to
//     show time linear in events; peak memory; FAR of the loudest 1000 vs a full sort.
//  B. real HDF5: job files written with writeEvents, then readEvents + addJob:
//     the read rate, and the time it projects for 10^4 files of 10^4 events.
// Baseline (same run): one plain pass over the same generated events (max and
// sum), the least any merge must do.
// Usage: node packages/stats/bench/merge.bench.mjs [jobs=10000] [eventsPerJob=10000] [files=200]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BackgroundSummary, JULIAN_YEAR_S, countAtLeastSorted, readEvents, writeEvents, DEFAULT_CAPACITY } from "@timeslide/stats";

const JOBS = Number(process.argv[2] ?? 10_000);
const PER_JOB = Number(process.argv[3] ?? 10_000);
const FILES = Number(process.argv[4] ?? 200);
const JOB_LIVETIME = 32 * 4000; // 32 shifts of a 4096 s job after burn-in
const PARTIAL = 1000; // jobs per partial summary

const mib = (b) => (b / 2 ** 20).toFixed(0);
const maxRssMiB = () => (process.resourceUsage().maxRSS / 1024).toFixed(0);

// xorshift32: deterministic, so a job's events can be regenerated for the check
function fillJob(j, stat, time, shift) {
  let s = (j * 2654435761 + 1) >>> 0 || 1;
  const n = stat.length;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    // exponential tail, quantised to 1e-3: many ties among the loud events too
    stat[i] = Math.round(-Math.log((s + 1) / 4294967297) * 1000) / 1000;
    time[i] = 1.2e9 + j * 4096 + i * 0.4;
    shift[2 * i] = 0;
    shift[2 * i + 1] = (j % 32) + 1;
  }
}

function baseline(jobs, perJob) {
  const stat = new Float64Array(perJob), time = new Float64Array(perJob), shift = new Float64Array(2 * perJob);
  const t0 = performance.now();
  let mx = -Infinity, sum = 0;
  for (let j = 0; j < jobs; j++) {
    fillJob(j, stat, time, shift);
    for (let i = 0; i < perJob; i++) { const x = stat[i]; if (x > mx) mx = x; sum += x; }
  }
  return { ms: performance.now() - t0, mx, sum };
}

function merge(jobs, perJob) {
  const stat = new Float64Array(perJob), time = new Float64Array(perJob), shift = new Float64Array(2 * perJob);
  let peakRss = 0;
  const t0 = performance.now();
  let total = new BackgroundSummary({ nIfo: 2 });
  for (let a = 0; a < jobs; a += PARTIAL) {
    const part = new BackgroundSummary({ nIfo: 2 });
    for (let j = a; j < Math.min(jobs, a + PARTIAL); j++) {
      fillJob(j, stat, time, shift);
      part.addJob(`bg-${j}`, { livetime: JOB_LIVETIME, detection_statistic: stat, time, shift });
    }
    total.merge(part);
    // a job already counted, written again: it must count once
    if (a + PARTIAL >= jobs && jobs > 1) { fillJob(0, stat, time, shift); if (total.addJob("bg-0", { livetime: JOB_LIVETIME, detection_statistic: stat, time, shift })) throw new Error("bg-0 counted twice"); }
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }
  const ms = performance.now() - t0;
  return { total, ms, peakRss };
}

function check(total, jobs, perJob) {
  // full sort of every event (regenerated), then the FAR of the loudest 1000
  const all = new Float64Array(jobs * perJob);
  const stat = new Float64Array(perJob), time = new Float64Array(perJob), shift = new Float64Array(2 * perJob);
  for (let j = 0; j < jobs; j++) { fillJob(j, stat, time, shift); all.set(stat, j * perJob); }
  const t0 = performance.now();
  all.sort();
  all.reverse();
  const sortMs = performance.now() - t0;
  const T = jobs * JOB_LIVETIME;
  let identical = total.livetime === T && total.events === jobs * perJob;
  let firstDiff = null;
  for (let k = 0; k < 1000; k++) {
    const x = all[k];
    const full = (countAtLeastSorted(all, x) * JULIAN_YEAR_S) / T;
    const c = total.countAtLeast(x);
    const ours = (c.n * JULIAN_YEAR_S) / total.livetime;
    if (!c.exact || ours !== full) { identical = false; firstDiff ??= { k, x, full, ours, exact: c.exact }; }
  }
  return { identical, sortMs, firstDiff };
}

async function hdf5(files, perJob) {
  const dir = mkdtempSync(join(tmpdir(), "ts-merge-bench-"));
  try {
    const stat = new Float64Array(perJob), time = new Float64Array(perJob), shift = new Float64Array(2 * perJob);
    const paths = [];
    const w0 = performance.now();
    for (let j = 0; j < files; j++) {
      fillJob(j, stat, time, shift);
      const p = join(dir, `bg-${j}.h5`);
      await writeEvents(p, { time, detection_statistic: stat, shift, nIfo: 2, livetime: JOB_LIVETIME, ifos: ["H1", "L1"], kind: "background", job_id: `bg-${j}` });
      paths.push(p);
    }
    const writeMs = performance.now() - w0;
    const s = new BackgroundSummary({ nIfo: 2 });
    const r0 = performance.now();
    for (let j = 0; j < files; j++) s.addJob(`bg-${j}`, await readEvents(paths[j]));
    const readMs = performance.now() - r0;
    return { writeMs, readMs, events: s.events };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(`merge.bench: capacity ${DEFAULT_CAPACITY} loudest events kept exactly, partial summaries of ${PARTIAL} jobs`);
const small = { jobs: Math.max(1, Math.round(JOBS / 10)), perJob: PER_JOB };
merge(Math.max(1, Math.round(JOBS / 100)), PER_JOB); // warm-up (JIT), not reported
const results = [];
for (const size of [small, { jobs: JOBS, perJob: PER_JOB }]) {
  globalThis.gc?.();
  const base = baseline(size.jobs, size.perJob);
  const m = merge(size.jobs, size.perJob);
  const ev = size.jobs * size.perJob;
  results.push({ ...size, ev, ms: m.ms });
  console.log(
    `merge ${ev.toExponential(0)} events from ${size.jobs} jobs: ${(m.ms / 1000).toFixed(2)} s wall (${((ev / m.ms) * 1000 / 1e6).toFixed(1)} M events/s), ` +
      `peak RSS ${mib(m.peakRss)} MiB (maxRSS so far ${maxRssMiB()} MiB), baseline scan ${(base.ms / 1000).toFixed(2)} s, ratio merge/baseline ${(m.ms / base.ms).toFixed(2)}`,
  );
  results.at(-1).total = m.total;
}
const [a, b] = results;
console.log(`linearity: ${b.ev / a.ev}x events took ${(b.ms / a.ms).toFixed(2)}x the time (per-event time ratio ${((b.ms / b.ev) / (a.ms / a.ev)).toFixed(2)})`);
console.log(`peak memory during merging (maxRSS before the full-sort check): ${maxRssMiB()} MiB (target <= 2048 MiB)`);
const c = check(b.total, b.jobs, b.perJob);
console.log(`FAR of the loudest 1000 events identical to a full sort of ${b.ev.toExponential(0)} events: ${c.identical}${c.firstDiff ? ` (first difference ${JSON.stringify(c.firstDiff)})` : ""} (full sort ${(c.sortMs / 1000).toFixed(1)} s)`);
const h = await hdf5(FILES, PER_JOB);
const rate = (h.events / h.readMs) * 1000;
console.log(
  `HDF5 job files: ${FILES} files x ${PER_JOB} events: write ${(h.writeMs / 1000).toFixed(2)} s, read+merge ${(h.readMs / 1000).toFixed(2)} s ` +
    `(${(rate / 1e6).toFixed(2)} M events/s, ${((h.readMs / FILES)).toFixed(1)} ms/file); projected read+merge of ${JOBS} files x ${PER_JOB}: ${((JOBS * PER_JOB) / rate).toFixed(0)} s`,
);
if (!c.identical) process.exit(1);
