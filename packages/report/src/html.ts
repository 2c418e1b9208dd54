// report.html: one self-contained page (inline CSS and SVG, no scripts, no
// network). Every string that came from an input file is escaped.
import { renderPlots } from "./plots.js";
import type { ReportExtras, ReportJson } from "./schema.js";

export function escapeHtml(s: unknown): string {
  return String(s).replace(/[&<>"'`]/g, (c) => `&#${c.charCodeAt(0)};`);
}

function fmt(x: number | null | undefined, digits = 4): string {
  if (x === null || x === undefined) return "∞";
  if (!Number.isFinite(x)) return x > 0 ? "∞" : "−∞";
  if (x === 0) return "0";
  const a = Math.abs(x);
  return a >= 1e-3 && a < 1e6 ? String(Number(x.toPrecision(digits))) : x.toExponential(digits - 1);
}

const CSS = `body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td.l,th.l{text-align:left}figure{margin:1em 0 2em}figcaption{font-weight:600;margin-bottom:0.4em}
.partial{background:#fff3cd;border:1px solid #e0c060;padding:0.5em 1em}.note{color:#666}`;

export async function renderReportHtml(r: ReportJson, extras: ReportExtras = {}): Promise<string> {
  const plots = await renderPlots(r, extras);
  const e = escapeHtml;
  const rows = (pairs: [string, string][]) => pairs.map(([k, v]) => `<tr><th class="l">${k}</th><td>${v}</td></tr>`).join("\n");
  const lost = extras.failures?.reduce((a, f) => a + f.livetime_lost, 0);
  const summary = rows([
    ["campaign", e(r.campaign)],
    ["detectors", e(r.ifos.join(", "))],
    ["background livetime", `${fmt(r.livetime.background_s)} s (${fmt(r.livetime.background_years)} yr)${extras.planned_background_s ? ` of ${fmt(extras.planned_background_s)} s planned` : ""}`],
    ["foreground livetime", `${fmt(r.livetime.foreground_s)} s`],
    ["jobs", `${r.jobs.completed} completed, ${r.jobs.failed} failed, of ${r.jobs.total}`],
    ["livetime lost to failed jobs", lost === undefined ? "—" : `${fmt(lost)} s`],
    ["injections", `${r.injections.injected}`],
  ]);
  const withRemoval = r.removed !== undefined || r.foreground.some((c) => c.far_per_year_exclusive !== undefined);
  const exclSaturated = new Map(r.foreground.map((c, i) => [c, extras.removal?.exclusive_saturated[i] ?? false]));
  const loudest = [...r.foreground].sort((a, b) => b.detection_statistic - a.detection_statistic).slice(0, 20);
  const cand = loudest
    .map(
      (c) =>
        `<tr><td>${e(c.time.toFixed(4))}</td><td>${e(fmt(c.detection_statistic, 6))}</td><td>${c.saturated ? "≤ " : ""}${e(fmt(c.far_per_year))}</td>` +
        (withRemoval ? `<td>${exclSaturated.get(c) ? "≤ " : ""}${e(fmt(c.far_per_year_exclusive))}</td>` : "") +
        `<td>${c.saturated ? "≥ " : ""}${e(fmt(c.ifar_years))}</td><td>${c.saturated ? "≤ " : ""}${e(fmt(c.p_value))}</td></tr>`,
    )
    .join("\n");
  const removedRows = (r.removed ?? [])
    .map((x, k) => `<tr><td>${k + 1}</td><td>${e(x.time.toFixed(4))}</td><td>${e(fmt(x.detection_statistic, 6))}</td><td>${x.events_removed}</td><td>${e(fmt(x.livetime_removed_s, 8))}</td></tr>`)
    .join("\n");
  const rm = extras.removal;
  const removedSection = withRemoval
    ? `<h2>Hierarchical removal</h2>
<p class="note">${rm ? `Up to ${rm.hierarchical_removal} removal(s), window w = ${e(fmt(rm.removal_window))} s. ` : ""}While the loudest remaining zero-lag candidate was louder than every remaining background event, every background event of shift δ at time t with |t + δ<sub>i</sub> − t<sub>c</sub>| &lt; w for some detector i was removed, and the background livetime whose output samples meet the same condition. Inclusive FAR: against the whole background; exclusive: against the background left after the removals made before the candidate.${rm ? ` Background livetime left: ${e(fmt(rm.background_left_s, 8))} s of ${e(fmt(r.livetime.background_s, 8))} s.` : ""}</p>
${removedRows ? `<table id="removed"><tr><th>#</th><th>time (GPS)</th><th>detection statistic</th><th>background events removed</th><th>livetime removed (s)</th></tr>\n${removedRows}</table>` : `<p class="note">nothing removed: the loudest candidate was not louder than every background event</p>`}`
    : "";
  const failures = (extras.failures ?? [])
    .slice(0, 100)
    .map((f) => `<tr><td class="l">${e(f.job_id)}</td><td class="l">${e(f.kind)}</td><td>${e(fmt(f.livetime_lost))}</td><td class="l">${e(f.reason)}</td></tr>`)
    .join("\n");
  const figs = plots.map((p) => `<figure class="plot" id="plot-${e(p.id)}"><figcaption>${e(p.title)}</figcaption>\n${p.svg}\n</figure>`).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>timeslide report: ${e(r.campaign)}</title><style>${CSS}</style></head>
<body>
<h1>timeslide report: ${e(r.campaign)}</h1>
${extras.partial ? `<p class="partial">Partial report: the campaign is still running; livetime and significances cover the jobs completed so far.</p>` : ""}
${extras.generated_at ? `<p class="note">generated ${e(extras.generated_at)}</p>` : ""}
<h2>Summary</h2>
<table id="summary">${summary}</table>
<h2>Loudest foreground candidates</h2>
${loudest.length ? `<table id="candidates"><tr><th>time (GPS)</th><th>detection statistic</th><th>FAR (/yr)${withRemoval ? " inclusive" : ""}</th>${withRemoval ? "<th>FAR (/yr) exclusive</th>" : ""}<th>IFAR (yr)</th><th>p-value</th></tr>\n${cand}</table><p class="note">≤ / ≥: saturated, no background event was as loud; the value is a bound.${withRemoval ? " IFAR and p-value are inclusive." : ""}</p>` : `<p class="note">no foreground events</p>`}
${removedSection}
${failures ? `<h2>Failed jobs</h2><table id="failures"><tr><th class="l">job</th><th class="l">kind</th><th>livetime lost (s)</th><th class="l">reason</th></tr>\n${failures}</table>` : ""}
<h2>Plots</h2>
${figs}
${plots.some((p) => p.id === "volume") ? "" : `<p class="note">no injections: no sensitivity plots</p>`}
</body></html>
`;
}
