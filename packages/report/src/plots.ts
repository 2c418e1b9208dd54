// Plots as SVG strings, rendered at build time: Vega-Lite spec -> Vega -> headless view.toSVG().
import * as vl from "vega-lite";
import * as vega from "vega";
import type { ReportExtras, ReportJson } from "./schema.js";

export interface Plot {
  id: string;
  title: string;
  svg: string;
}

const W = 520;
const H = 300;

export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

const pos = (v: number | null | undefined): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;

function farSpec(r: ReportJson): vl.TopLevelSpec {
  const bg = r.far_curve.filter((p) => pos(p.far_per_year)).map((p) => ({ x: p.detection_statistic, far: p.far_per_year, set: "background" }));
  const fg = r.foreground.filter((p) => pos(p.far_per_year)).map((p) => ({ x: p.detection_statistic, far: p.far_per_year, set: "foreground" }));
  return {
    width: W,
    height: H,
    layer: [
      { data: { values: bg }, mark: { type: "line", interpolate: "step-after", point: false }, encoding: enc() },
      { data: { values: fg }, mark: { type: "point", filled: true, size: 60 }, encoding: enc() },
    ],
  } as vl.TopLevelSpec;
  function enc() {
    return {
      x: { field: "x", type: "quantitative", title: "detection statistic", scale: { zero: false } },
      y: { field: "far", type: "quantitative", title: "FAR (per year)", scale: { type: "log" } },
      color: { field: "set", type: "nominal", title: null, scale: { domain: ["background", "foreground"] } },
    };
  }
}

function ifarSpec(r: ReportJson): vl.TopLevelSpec {
  const tfg = r.livetime.foreground_s / 31_557_600;
  const ifars = r.foreground.map((p) => p.ifar_years).filter(pos).sort((a, b) => b - a);
  const fg = ifars.map((x, i) => ({ ifar: x, n: i + 1, set: "foreground" }));
  // expected number of background events with IFAR >= x in T_fg: T_fg / x
  const lo = Math.min(...ifars, tfg > 0 ? tfg / 10 : 1e-6);
  const hi = Math.max(...ifars, r.livetime.background_years > 0 ? r.livetime.background_years : 1, lo * 10);
  const exp = Array.from({ length: 41 }, (_, k) => lo * (hi / lo) ** (k / 40))
    .map((x) => ({ ifar: x, n: tfg / x, set: "background expectation" }))
    .filter((p) => pos(p.n));
  const enc = {
    x: { field: "ifar", type: "quantitative", title: "IFAR (years)", scale: { type: "log" } },
    y: { field: "n", type: "quantitative", title: "cumulative number of events", scale: { type: "log" } },
    color: { field: "set", type: "nominal", title: null, scale: { domain: ["foreground", "background expectation"] } },
  };
  return {
    width: W,
    height: H,
    layer: [
      { data: { values: exp }, mark: { type: "line", strokeDash: [6, 3] }, encoding: enc },
      { data: { values: fg }, mark: { type: "line", interpolate: "step-before", point: true }, encoding: enc },
    ],
  } as vl.TopLevelSpec;
}

function volumeSpec(r: ReportJson, unit: string): vl.TopLevelSpec {
  const v = r.injections.sensitive_volume.filter((p) => pos(p.far_per_year)).map((p) => ({ far: p.far_per_year, v: p.volume, lo: Math.max(0, p.volume - p.error), hi: p.volume + p.error }));
  const x = { field: "far", type: "quantitative", title: "FAR threshold (per year)", scale: { type: "log" } };
  return {
    width: W,
    height: H,
    data: { values: v },
    layer: [
      { mark: { type: "area", opacity: 0.25 }, encoding: { x, y: { field: "lo", type: "quantitative", title: `sensitive volume${unit ? ` (${unit})` : ""}` }, y2: { field: "hi" } } },
      { mark: { type: "line", point: true }, encoding: { x, y: { field: "v", type: "quantitative" } } },
    ],
  } as vl.TopLevelSpec;
}

function efficiencySpec(e: NonNullable<ReportExtras["efficiency_vs_snr"]>): vl.TopLevelSpec {
  const v = e.bins.map((b) => ({ snr: (b.snr_low + b.snr_high) / 2, low: b.snr_low, high: b.snr_high, eff: b.efficiency, lo: Math.max(0, b.efficiency - b.error), hi: Math.min(1, b.efficiency + b.error), n: b.injected }));
  const domain = [e.bins[0].snr_low, e.bins[e.bins.length - 1].snr_high];
  const x = { field: "snr", type: "quantitative", title: "SNR", scale: { zero: false, domain, nice: false } };
  return {
    width: W,
    height: H,
    data: { values: v },
    layer: [
      // vertical: binomial error; horizontal: the SNR bin
      { mark: { type: "rule" }, encoding: { x, y: { field: "lo", type: "quantitative", title: "efficiency", scale: { domain: [0, 1] } }, y2: { field: "hi" } } },
      { mark: { type: "rule" }, encoding: { x: { ...x, field: "low" }, x2: { field: "high" }, y: { field: "eff", type: "quantitative" } } },
      { mark: { type: "point", filled: true, size: 60 }, encoding: { x, y: { field: "eff", type: "quantitative" } } },
    ],
  } as vl.TopLevelSpec;
}

/** Every plot the report has data for. */
export async function renderPlots(r: ReportJson, extras: ReportExtras = {}): Promise<Plot[]> {
  const plots: Plot[] = [];
  plots.push({ id: "far", title: "False-alarm rate against detection statistic", svg: await renderSvg(farSpec(r)) });
  plots.push({ id: "ifar", title: "Foreground IFAR against the background expectation", svg: await renderSvg(ifarSpec(r)) });
  if (r.injections.sensitive_volume.some((p) => pos(p.far_per_year))) {
    plots.push({ id: "volume", title: "Sensitive volume against FAR threshold", svg: await renderSvg(volumeSpec(r, extras.volume_unit ?? "")) });
  }
  if (extras.efficiency_vs_snr && extras.efficiency_vs_snr.bins.length) {
    const f = extras.efficiency_vs_snr.far_per_year;
    plots.push({ id: "efficiency", title: `Efficiency against SNR at FAR ≤ ${f.toPrecision(3)} per year`, svg: await renderSvg(efficiencySpec(extras.efficiency_vs_snr)) });
  }
  return plots;
}
