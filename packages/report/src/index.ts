export { ReportJson, jsonSafe, type ReportExtras } from "./schema.js";
export { renderPlots, renderSvg, type Plot } from "./plots.js";
export { renderReportHtml, escapeHtml } from "./html.js";
