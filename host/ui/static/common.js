// Shared by every page of jepa ui: fetching the JSON API, building elements without innerHTML
// (run names and reasons are data, never markup), number formats, status badges and charts.
"use strict";

const jepa = (() => {
  const palette = ["#2f6fde", "#e8590c", "#2b8a3e", "#c2255c", "#7048e8", "#0b7285", "#a07400", "#5c677d",
                   "#d6336c", "#1098ad", "#66a80f", "#862e9c"];

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v === undefined || v === null || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) url.searchParams.append(k, item);
    }
    const res = await fetch(url, {headers: {Accept: "application/json"}});
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    if (!res.ok) throw new Error((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  function num(v, digits = 4) {
    if (v === null || v === undefined) return "-";
    if (typeof v !== "number") return String(v);
    if (!isFinite(v)) return String(v);
    if (v === 0) return "0";
    const a = Math.abs(v);
    if (a >= 1e6 || a < 1e-3) return v.toExponential(digits - 1).replace("e+", "e");
    return String(Number(v.toPrecision(digits)));
  }

  function duration(s) {
    if (s === null || s === undefined) return "-";
    if (s < 60) return `${Math.round(s)}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }

  function status(s, stale) {
    return el("span", {class: `status status-${stale ? "stale" : s}`,
                       title: stale ? "RUNNING, but no heartbeat for over a minute: probably dead" : null},
              stale ? `${s}?` : s);
  }

  function header(db) {
    const h = el("header", {},
                 el("span", {class: "brand"}, "jepa ui"),
                 el("a", {href: "/"}, "Runs"),
                 el("a", {href: "/compare"}, "Compare"),
                 el("a", {href: "/masks"}, "Masks"),
                 el("span", {class: "db", id: "db"}, db || ""));
    document.body.prepend(h);
  }

  function showError(where, err) {
    const box = el("div", {class: "error"}, err instanceof Error ? err.message : String(err));
    where.replaceChildren(box);
  }

  function table(headers, rows) {
    return el("table", {},
              el("thead", {}, el("tr", {}, headers.map(h => el("th", typeof h === "string" ? {} : h.attrs,
                                                                 typeof h === "string" ? h : h.text)))),
              el("tbody", {}, rows.map(r => el("tr", {}, r.map(c => c instanceof Node && c.tagName === "TD"
                                                                         ? c : el("td", {}, c))))));
  }

  function keyValueTable(obj) {
    const keys = Object.keys(obj || {}).sort();
    if (!keys.length) return el("p", {class: "muted"}, "(none)");
    return table(["key", "value"], keys.map(k => [el("span", {class: "mono"}, k),
                                                  typeof obj[k] === "object" ? JSON.stringify(obj[k]) : String(obj[k])]));
  }

  // [steps], [values] -> Chart.js points; null values (NaN, inf) leave gaps.
  function points(steps, values) {
    const out = new Array(steps.length);
    for (let i = 0; i < steps.length; ++i) out[i] = {x: steps[i], y: values[i]};
    return out;
  }

  // A line chart tuned for long curves: no animation, no point markers, data already parsed.
  function lineChart(canvas, datasets, opts = {}) {
    return new Chart(canvas, {
      type: "line",
      data: {datasets: datasets.map((d, i) => Object.assign({
        borderColor: palette[i % palette.length], backgroundColor: palette[i % palette.length],
        borderWidth: 1.5, pointRadius: 0, spanGaps: false, tension: 0}, d))},
      options: {
        animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false,
        interaction: {mode: "nearest", intersect: false},
        plugins: {legend: {display: datasets.length > 1 && datasets.length <= 12,  // "_label": not in the legend
                           labels: {boxWidth: 10, font: {size: 11}, filter: item => !item.text.startsWith("_")}},
                  tooltip: {callbacks: {label: c => `${c.dataset.label || ""} ${num(c.parsed.y, 6)} @ ${c.parsed.x}`}}},
        scales: {x: Object.assign({type: "linear", title: {display: true, text: opts.xLabel || "step"}}, opts.x || {}),
                 y: Object.assign({type: opts.logY ? "logarithmic" : "linear",
                                   title: {display: !!opts.yLabel, text: opts.yLabel || ""}}, opts.y || {})},
      },
    });
  }

  function query() { return new URLSearchParams(location.search); }

  // Tests (and people) know the page has drawn its data when this is set.
  function ready() { document.body.dataset.ready = "1"; }

  return {api, el, num, duration, status, header, showError, table, keyValueTable, points, lineChart, palette,
          query, ready};
})();

// Every page is page.html; its address says which page script draws it.
(() => {
  const path = location.pathname;
  const [page, title] = path === "/" ? ["runs", "Runs"]
    : path.startsWith("/runs/") ? ["run", "Run"]
    : path === "/compare" ? ["compare", "Compare runs"]
    : path.startsWith("/sweeps/") ? ["sweep", "Sweep"]
    : path === "/masks" ? ["masks", "Masks"] : [null, null];
  if (!page) return;
  document.title = `${title} · jepa ui`;
  const script = document.createElement("script");
  script.src = `/static/${page}.js`;
  document.head.append(script);
})();
