// The page: static HTML, CSS and a small script that draws each snapshot it
// receives over server-sent events (polling /api/snapshot when EventSource
// fails). Text goes in with textContent, never as markup; the one exception
// is the FAR plot, an SVG that @timeslide/report drew on the server from
// numbers (its labels are fixed strings).

export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>timeslide dashboard</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header>
  <h1>timeslide dashboard</h1>
  <p class="note">prefix <span id="prefix">-</span> · updated <span id="updated">-</span> (#<span id="seq">0</span>) · <span id="link">connecting</span></p>
  <p id="errors" class="error" hidden></p>
</header>
<main>
  <section><h2>Campaigns</h2><div id="campaigns"><p class="note">no campaigns submitted</p></div></section>
  <section><h2>Inference servers (registry, and those running campaigns list)</h2>
    <table id="servers"><thead><tr><th class="l">endpoint</th><th>ready</th><th class="l">models (state, requests/s, inferences/s)</th><th>sequences in flight</th><th>lease (s)</th><th class="l">listed by</th></tr></thead><tbody></tbody></table>
  </section>
  <section><h2>Workers</h2>
    <table id="workers"><thead><tr><th class="l">worker</th><th>alive</th><th class="l">campaigns</th><th>jobs running</th><th class="l">jobs</th><th>connected (s)</th></tr></thead><tbody></tbody></table>
  </section>
</main>
</body>
</html>
`;

export const PAGE_CSS = `body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#222;max-width:1200px}
h1{margin:0 0 .2em}h2{margin:1.2em 0 .4em;border-bottom:1px solid #ddd}h3{margin:.2em 0 .4em}
table{border-collapse:collapse;margin:.4em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right;vertical-align:top}
th{background:#f3f3f3}td.l,th.l{text-align:left}.note{color:#666}.error{color:#a00}
.campaign{border:1px solid #ccc;border-radius:6px;padding:.6em 1em;margin:.8em 0}
.bar{background:#eee;height:12px;border-radius:6px;overflow:hidden;width:100%;max-width:600px}.bar>div{background:#3a7;height:100%}
.state{font-weight:600}.grid{display:flex;flex-wrap:wrap;gap:1.5em}.plot svg{max-width:100%;height:auto}
.partial{background:#fff3cd;border:1px solid #e0c060;padding:0 .4em}.reason{max-width:640px;white-space:pre-wrap;word-break:break-word}`;

export const PAGE_JS = `"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "class") e.className = v; else e.setAttribute(k, String(v));
    }
    for (const k of kids) e.append(k instanceof Node ? k : document.createTextNode(k === null || k === undefined ? "-" : String(k)));
    return e;
  };
  // a value the test (and anyone scripting the page) can read back exactly
  const val = (tag, key, v, text) => el(tag, { "data-k": key, "data-v": JSON.stringify(v === undefined ? null : v) }, text === undefined ? (v === null ? "-" : String(v)) : text);
  const num = (x, d) => (x === null || x === undefined ? "-" : Number(x).toPrecision(d || 4));
  const time = (ms) => new Date(ms).toISOString().replace("T", " ").replace(/\\.\\d+Z$/, " UTC");
  const row = (...cells) => el("tr", {}, ...cells);
  const th = (t, l) => el("th", l ? { class: "l" } : {}, t);

  function campaignCard(c) {
    const s = c.status, j = s.jobs, l = s.livetime;
    const card = el("div", { class: "campaign", "data-campaign": s.campaign });
    card.append(el("h3", {}, s.campaign + " ", val("span", "state", s.state, s.state)));
    const frac = l.background_planned_s > 0 ? Math.min(1, l.background_s / l.background_planned_s) : 1;
    const fill = el("div", {});
    fill.style.width = (100 * frac).toFixed(1) + "%";
    card.append(el("div", { class: "bar", title: "background livetime done against planned" }, fill));
    const jobs = el("table", { class: "jobs" },
      row(th("total"), th("waiting"), th("active"), th("delayed"), th("completed"), th("failed"), th("awaiting retry")),
      row(val("td", "jobs.total", j.total), val("td", "jobs.waiting", j.waiting), val("td", "jobs.active", j.active), val("td", "jobs.delayed", j.delayed),
          val("td", "jobs.completed", j.completed), val("td", "jobs.failed", j.failed), val("td", "jobs.retrying", j.retrying)));
    const t = c.text || {};
    const live = el("table", { class: "livetime" },
      row(th("background", true), val("td", "livetime.background_s", l.background_s, t.background), val("td", "livetime.background_planned_s", l.background_planned_s, "planned " + l.background_planned_s + " s")),
      row(th("foreground (zero lag)", true), val("td", "livetime.foreground_s", l.foreground_s, t.foreground), val("td", "livetime.foreground_planned_s", l.foreground_planned_s, "planned " + l.foreground_planned_s + " s")),
      row(th("injections", true), val("td", "livetime.injection_s", l.injection_s, t.injection), val("td", "livetime.injection_planned_s", l.injection_planned_s, "planned " + l.injection_planned_s + " s")),
      row(th("lost to failures", true), val("td", "livetime.lost_s", l.lost_s, t.lost), el("td", {}, "")),
      row(th("rate", true), val("td", "rate", s.rate, t.rate), val("td", "status_at", c.status_at, "as of " + time(c.status_at))),
      row(th("ETA", true), val("td", "eta_s", s.eta_s, t.eta), val("td", "done", s.done, s.done ? "done" : "running")),
      row(th("FAR reach (1/T_bg)", true), val("td", "far_reach_per_year", c.far_reach_per_year, t.far_reach), el("td", {}, "")));
    card.append(el("div", { class: "grid" }, jobs, live));
    if (c.failures.length) {
      const ft = el("table", { class: "failures" }, row(th("failed job", true), th("kind", true), th("attempts"), th("livetime lost (s)"), th("reason", true)));
      for (const f of c.failures) ft.append(el("tr", { "data-job": f.job_id }, el("td", { class: "l" }, f.job_id), el("td", { class: "l" }, f.kind), el("td", {}, f.attempts), el("td", {}, f.livetime_lost_s), el("td", { class: "l reason" }, f.reason)));
      card.append(el("h4", {}, "Failures"), ft);
      if (c.failures_more) card.append(el("p", { class: "note" }, "and " + c.failures_more + " more"));
    }
    const r = c.report;
    if (!r) card.append(el("p", { class: "note report-note" }, c.report_note));
    else {
      const head = el("p", { class: "report-head" },
        r.partial ? el("span", { class: "partial" }, "partial report") : "final report", ": ",
        val("span", "report.jobs_completed", r.jobs_completed), " of " + r.jobs_total + " jobs, background ",
        val("span", "report.background_s", r.background_s), " s, written " + time(r.written_at));
      const plot = el("figure", { class: "plot" }, el("figcaption", {}, "FAR against detection statistic (from the report)"));
      const holder = el("div", {});
      holder.innerHTML = r.far_svg; // drawn by @timeslide/report on the server from numbers
      plot.append(holder);
      const lt = el("table", { class: "loudest" }, row(th("GPS time"), th("statistic"), th("FAR (per year)"), th("IFAR (years)"), th("p-value")));
      for (const x of r.loudest) lt.append(el("tr", { "data-time": x.time }, el("td", {}, x.time.toFixed(3)), el("td", {}, num(x.detection_statistic)), el("td", {}, (x.saturated ? "≤ " : "") + num(x.far_per_year, 3)), el("td", {}, num(x.ifar_years, 3)), el("td", {}, num(x.p_value, 3))));
      card.append(head, el("div", { class: "grid" }, plot, el("div", {}, el("h4", {}, "Loudest zero-lag candidates"), lt)));
    }
    return card;
  }

  let last = 0;
  // Redis away: the server keeps its last snapshot; say how old it is
  setInterval(() => {
    if (last && Date.now() - last > 15000) $("link").textContent = "stale: no refresh for " + Math.round((Date.now() - last) / 1000) + " s";
  }, 1000);

  function draw(snap) {
    last = Date.parse(snap.generated_at);
    $("prefix").textContent = snap.prefix;
    $("updated").textContent = snap.generated_at;
    $("seq").textContent = snap.seq;
    document.body.setAttribute("data-seq", snap.seq);
    const errs = $("errors");
    errs.hidden = !snap.errors.length;
    errs.textContent = snap.errors.join("; ");
    const cs = $("campaigns");
    cs.replaceChildren(...(snap.campaigns.length ? snap.campaigns.map(campaignCard) : [el("p", { class: "note" }, "no campaigns submitted")]));
    const sb = $("servers").tBodies[0];
    sb.replaceChildren(...snap.servers.map((s) => el("tr", { "data-endpoint": s.endpoint },
      el("td", { class: "l" }, s.endpoint),
      val("td", "ready", s.ready, s.error ? "no: " + s.error : s.ready ? "yes" : "no"),
      el("td", { class: "l" }, ...s.models.map((m) => el("div", { "data-model": m.name, "data-rps": JSON.stringify(m.requests_per_s) }, m.name + " v" + m.version + " " + m.state + (m.reason ? " (" + m.reason + ")" : "") + ", " + num(m.requests_per_s, 3) + " req/s, " + num(m.inferences_per_s, 3) + " inf/s"))),
      val("td", "in_flight", s.in_flight_sequences),
      el("td", {}, s.lease_s === null ? "-" : s.lease_s.toFixed(1)),
      el("td", { class: "l", "data-source": s.source.registry ? "registry" : "campaign" }, [s.source.registry ? "registry" : "", ...s.source.campaigns].filter(Boolean).join(", ")))));
    if (!snap.servers.length) sb.append(row(el("td", { class: "l note", colspan: 6 }, "no server registered or listed by a running campaign")));
    const wb = $("workers").tBodies[0];
    wb.replaceChildren(...snap.workers.map((w) => el("tr", { "data-worker": w.name },
      el("td", { class: "l" }, w.name), val("td", "alive", w.alive, w.alive === null ? "?" : w.alive ? "yes" : "no"), el("td", { class: "l" }, w.campaigns.join(", ")),
      val("td", "jobs_running", w.jobs_running.length), el("td", { class: "l" }, w.jobs_running.join(" ")), el("td", {}, w.connected_s === null ? "-" : w.connected_s))));
    if (!snap.workers.length) wb.append(row(el("td", { class: "l note", colspan: 6 }, "no worker connected")));
  }

  const poll = async () => {
    try {
      const r = await fetch("/api/snapshot", { cache: "no-store" });
      if (r.ok) { draw(await r.json()); $("link").textContent = "polling"; }
    } catch { $("link").textContent = "disconnected"; }
    setTimeout(poll, 2000);
  };
  if (typeof EventSource === "undefined") poll();
  else {
    const es = new EventSource("/events");
    es.onmessage = (m) => { draw(JSON.parse(m.data)); $("link").textContent = "live"; };
    es.onerror = () => { $("link").textContent = "reconnecting"; };
  }
})();
`;
