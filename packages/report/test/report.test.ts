import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { chromium, type Browser } from "playwright-core";
import { ReportJson, escapeHtml, jsonSafe, renderReportHtml, type ReportExtras } from "../src/index.js";

const EVIL = `<script>alert("x")</script>&'`;
const YEAR = 31557600;

function sampleReport(): ReportJson {
  const T = 3 * YEAR;
  const far_curve = Array.from({ length: 200 }, (_, i) => ({ detection_statistic: 10 - i * 0.05, far_per_year: ((i + 1) / T) * YEAR }));
  return ReportJson.parse(
    jsonSafe({
      campaign: EVIL,
      ifos: ["H1", "L1"],
      livetime: { background_s: T, background_years: 3, foreground_s: 86400 },
      jobs: { total: 12, completed: 10, failed: 1, failed_ids: [`bg-${EVIL}`] },
      far_curve,
      foreground: [
        { time: 1187008011.87, detection_statistic: 10.5, far_per_year: 1 / 3, ifar_years: 3, p_value: 1 - Math.exp(-86400 / T), saturated: true },
        { time: 1187008019.12, detection_statistic: 8, far_per_year: 14, ifar_years: 1 / 14, p_value: 0.03, saturated: false },
        { time: 1187008094.02, detection_statistic: 2, far_per_year: 60, ifar_years: 1 / 60, p_value: 0.15, saturated: false },
      ],
      injections: {
        injected: 20,
        found: [1, 10, 100].map((f, i) => ({ far_per_year: f, found: 5 + 5 * i, efficiency: (5 + 5 * i) / 20 })),
        sensitive_volume: [1, 10, 100].map((f, i) => ({ far_per_year: f, volume: 1e6 * (1 + i), error: 2e5 })),
      },
    }),
  );
}

const extras: ReportExtras = {
  partial: true,
  generated_at: "2026-01-01T00:00:00Z",
  failures: [{ job_id: `bg-${EVIL}`, kind: "background", reason: `NaN in segment ${EVIL}`, livetime_lost: 4000 }],
  planned_background_s: 4 * YEAR,
  efficiency_vs_snr: {
    far_per_year: 1,
    bins: [
      { snr_low: 4, snr_high: 8, injected: 10, found: 2, efficiency: 0.2, error: Math.sqrt(0.016) },
      { snr_low: 8, snr_high: 16, injected: 10, found: 9, efficiency: 0.9, error: Math.sqrt(0.009) },
    ],
  },
  volume_unit: "Mpc^3",
};

describe("report.json", () => {
  it("validates the DESIGN.md shape and writes Infinity as null", () => {
    const r = sampleReport();
    expect(Object.keys(r)).toEqual(["campaign", "ifos", "livetime", "jobs", "far_curve", "foreground", "injections"]);
    const inf = jsonSafe({ x: Infinity, y: [1, -Infinity] });
    expect(inf).toEqual({ x: null, y: [1, null] });
    expect(() => ReportJson.parse({ ...r, extra: 1 })).toThrow();
  });
});

describe("report.html", () => {
  let html = "";
  const dir = mkdtempSync(join(tmpdir(), "ts-report-"));
  let browser: Browser;
  beforeAll(async () => {
    html = await renderReportHtml(sampleReport(), extras);
    writeFileSync(join(dir, "report.html"), html);
    if (!existsSync("/usr/bin/chromium")) throw new Error("/usr/bin/chromium missing: apt-get install -y chromium");
    browser = await chromium.launch({
      executablePath: "/usr/bin/chromium",
      args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
    });
  });
  afterAll(async () => {
    await browser?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("escapes every input string and needs no network", () => {
    expect(html).not.toContain("<script");
    expect(html).toContain(escapeHtml(EVIL));
    expect(html).not.toMatch(/(src|href)=["']?https?:/);
    expect(escapeHtml(`<a href="x">'&`)).toBe("&#60;a href=&#34;x&#34;&#62;&#39;&#38;");
  });

  it("renders every plot in headless Chromium with no console errors", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("request", (req) => {
      if (!req.url().startsWith("file:")) requests.push(req.url());
    });
    await page.goto(pathToFileURL(join(dir, "report.html")).href, { waitUntil: "load" });
    const plots = await page.$$eval("figure.plot", (figs) =>
      figs.map((f) => {
        const svg = f.querySelector("svg");
        const box = svg?.getBoundingClientRect();
        return {
          id: f.id,
          width: box?.width ?? 0,
          height: box?.height ?? 0,
          marks: svg ? svg.querySelectorAll("path, line, circle, rect").length : 0,
          dataMarks: svg ? svg.querySelectorAll(".mark-line path, .mark-symbol path, .mark-area path, .mark-rule line").length : 0,
        };
      }),
    );
    expect(plots.map((p) => p.id)).toEqual(["plot-far", "plot-ifar", "plot-volume", "plot-efficiency"]);
    for (const p of plots) {
      expect(p.width, p.id).toBeGreaterThan(100);
      expect(p.height, p.id).toBeGreaterThan(100);
      expect(p.dataMarks, p.id).toBeGreaterThan(0);
    }
    expect(await page.$$("script")).toHaveLength(0);
    expect(await page.title()).toBe(`timeslide report: ${EVIL}`);
    const cells = await page.$$eval("#candidates tr", (rs) => rs.length);
    expect(cells).toBe(4);
    expect(errors).toEqual([]);
    expect(requests).toEqual([]);
    await page.close();
  });

  it("a report without injections or foreground still renders its plots", async () => {
    const r = sampleReport();
    const bare = { ...r, foreground: [], injections: { injected: 0, found: [], sensitive_volume: [] } };
    const h = await renderReportHtml(bare, {});
    expect(h).toContain('id="plot-far"');
    expect(h).toContain('id="plot-ifar"');
    expect(h).not.toContain('id="plot-volume"');
    expect(h).toContain("no injections");
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.setContent(h);
    expect(await page.$$eval("figure.plot svg", (s) => s.length)).toBe(2);
    expect(errors).toEqual([]);
    await page.close();
  });
});

describe("report with hierarchical removal", () => {
  it("report.json carries far_per_year_exclusive and removed[]; report.html shows inclusive and exclusive FAR and what was removed", async () => {
    const base = sampleReport();
    const r = ReportJson.parse({
      ...base,
      foreground: base.foreground.map((c, i) => ({ ...c, far_per_year_exclusive: i === 1 ? 0.5 : c.far_per_year })),
      removed: [{ time: 1187008011.87, detection_statistic: 10.5, events_removed: 16, livetime_removed_s: 120 }],
    });
    expect(() => ReportJson.parse({ ...r, removed: [{ time: 1, detection_statistic: 2, events_removed: -1, livetime_removed_s: 0 }] })).toThrow();
    const html = await renderReportHtml(r, {
      removal: { hierarchical_removal: 1, removal_window: 8, background_left_s: r.livetime.background_s - 120, exclusive_saturated: [true, true, false] },
    });
    expect(html).toContain("FAR (/yr) inclusive");
    expect(html).toContain("FAR (/yr) exclusive");
    expect(html).toContain('<table id="removed">');
    expect(html).toMatch(/<td>1<\/td><td>1187008011\.8700<\/td><td>10\.5<\/td><td>16<\/td><td>120<\/td>/);
    expect(html).toContain("≤ 0.5"); // the second candidate: saturated against the exclusive background
    const none = await renderReportHtml(sampleReport(), {});
    expect(none).not.toContain("exclusive");
    expect(none).not.toContain("Hierarchical removal");
  });
});
