// background.h5: the summary's kept loudest events in the events layout, plus
// /histogram (the bulk) and /jobs (provenance: one row per counted job).
// An events file from any other writer (all events, no /histogram) reads too.

import { BackgroundSummary, DEFAULT_BIN_WIDTH, DEFAULT_CAPACITY } from "./summary.js";
import { readColumns, readEventsFile, readStrings, writeEvents } from "./events-io.js";

export async function writeBackground(path: string, s: BackgroundSummary, meta: { ifos: string[]; campaign?: string }): Promise<void> {
  const L = s.loudest();
  const h = s.histogram();
  const ids = s.jobIds();
  await writeEvents(
    path,
    { time: L.time, detection_statistic: L.detection_statistic, shift: L.shift, nIfo: s.nIfo, livetime: s.livetime, ifos: meta.ifos, kind: "background" },
    {
      ...(meta.campaign ? { campaign: meta.campaign } : {}),
      n_events: s.events,
      n_jobs: s.jobCount,
      capacity: s.capacity,
      // n(x) from /events is exact for x above this; −inf: /events holds every event
      exact_above: s.exactAbove,
    },
    {
      histogram: { attrs: { bin_width: h.binWidth, offset: h.offset }, datasets: { counts: h.counts } },
      jobs: {
        datasets: {
          job_id: ids,
          livetime: Float64Array.from(ids, (id) => s.jobLivetime(id) ?? 0),
        },
      },
      loudest: { datasets: { job_id: L.job_id } },
    },
  );
}

/**
 * Load a background events file into a summary. Files with /histogram (our
 * background.h5) restore the bulk; plain events files (any writer) are taken
 * whole, kept exactly when they have at most `capacity` events.
 */
export async function readBackground(path: string, opts: { capacity?: number; binWidth?: number } = {}): Promise<BackgroundSummary> {
  const { events, attrs } = await readEventsFile(path);
  const hist = await readColumns(path, "histogram");
  const nIfo = Math.max(events.nIfo, 1);
  if (hist && hist.columns.counts) {
    const binWidth = Number(hist.attrs.bin_width);
    const offset = Number(hist.attrs.offset);
    if (!(binWidth > 0) || !Number.isInteger(offset)) throw new Error(`${path}: /histogram attrs bin_width, offset: expected a positive width and an integer offset`);
    const exactAbove = attrs.exact_above === undefined ? -Infinity : Number(attrs.exact_above);
    const jobIds = (await readStrings(path, "jobs/job_id")) ?? [];
    const jobCols = await readColumns(path, "jobs");
    const loudestJobs = (await readStrings(path, "loudest/job_id")) ?? [];
    const nEvents = Number(attrs.n_events ?? events.detection_statistic.length);
    const jobs = jobIds.map((job_id, i) => ({ job_id, livetime: jobCols?.columns.livetime?.[i] ?? 0, events: 0 }));
    if (jobs.length === 0) jobs.push({ job_id: `file:${path}`, livetime: events.livetime, events: 0 });
    jobs[0].events = nEvents; // only totals matter once read back
    const s = BackgroundSummary.fromParts({
      nIfo,
      capacity: Number(attrs.capacity ?? events.detection_statistic.length),
      binWidth,
      exactAbove,
      jobs,
      loudest: { ...events, job_id: loudestJobs },
      histogram: { offset, counts: hist.columns.counts },
    });
    if (Math.abs(s.livetime - events.livetime) > 1e-6 * Math.max(1, events.livetime)) {
      throw new Error(`${path}: /events attr livetime ${events.livetime} s disagrees with /jobs/livetime sum ${s.livetime} s`);
    }
    return s;
  }
  const n = events.detection_statistic.length;
  const s = new BackgroundSummary({ nIfo, capacity: Math.max(opts.capacity ?? DEFAULT_CAPACITY, Math.min(n, 5_000_000), 1), binWidth: opts.binWidth ?? DEFAULT_BIN_WIDTH });
  s.addJob(events.job_id ?? `file:${path}`, events.nIfo ? events : { ...events, shift: new Float64Array(n) });
  return s;
}
