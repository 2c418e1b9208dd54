// background.h5: the summary's kept loudest events in the events layout, plus
// /bulk (every event's bin: key, count, smallest value; bins.ts) and /jobs
// (provenance: one row per counted job). An events file from any other
// writer (all events, no /bulk) reads too.

import { StatisticHistogram, MANTISSA_BITS } from "./bins.js";
import { BackgroundSummary, DEFAULT_CAPACITY } from "./summary.js";
import { readColumns, readEventsFile, readStrings, writeEvents } from "./events-io.js";

export async function writeBackground(path: string, s: BackgroundSummary, meta: { ifos: string[]; campaign?: string }): Promise<void> {
  const L = s.loudest();
  const bulk = s.bulk();
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
      bulk: { attrs: { mantissa_bits: MANTISSA_BITS }, datasets: { key: bulk.key, count: bulk.count, min: bulk.min } },
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
export async function readBackground(path: string, opts: { capacity?: number } = {}): Promise<BackgroundSummary> {
  const { events, attrs } = await readEventsFile(path);
  const nIfo = Math.max(events.nIfo, 1);
  if (await readColumns(path, "histogram"))
    throw new Error(`${path}: /histogram: fixed-width bins of an earlier timeslide, which this version does not read: aggregate the campaign again (timeslide report CAMPAIGN)`);
  const bulkCols = await readColumns(path, "bulk");
  if (bulkCols) {
    const bits = Number(bulkCols.attrs.mantissa_bits);
    if (bits !== MANTISSA_BITS) throw new Error(`${path}: /bulk attr mantissa_bits: expected ${MANTISSA_BITS}, got ${bulkCols.attrs.mantissa_bits}`);
    const { key, count, min } = bulkCols.columns;
    if (!key || !count || !min) throw new Error(`${path}: /bulk: expected datasets key, count and min`);
    const bulk = StatisticHistogram.fromColumns({ key, count, min }, `${path}: /bulk`);
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
      exactAbove,
      jobs,
      loudest: { ...events, job_id: loudestJobs },
      bulk,
    });
    if (Math.abs(s.livetime - events.livetime) > 1e-6 * Math.max(1, events.livetime)) {
      throw new Error(`${path}: /events attr livetime ${events.livetime} s disagrees with /jobs/livetime sum ${s.livetime} s`);
    }
    return s;
  }
  const n = events.detection_statistic.length;
  const s = new BackgroundSummary({ nIfo, capacity: Math.max(opts.capacity ?? DEFAULT_CAPACITY, Math.min(n, 5_000_000), 1) });
  s.addJob(events.job_id ?? `file:${path}`, events.nIfo ? events : { ...events, shift: new Float64Array(n) });
  return s;
}
