// One run: status and reason, every metric's curve (polled while the run is RUNNING),
// evaluations, artifacts, plugins, environment and the resolved config.
"use strict";
(() => {
  const {api, el, num, duration, status, header, showError, table, keyValueTable, points, lineChart} = jepa;
  const main = document.getElementById("main");
  const run = decodeURIComponent(location.pathname.split("/")[2] || "");
  const charts = new Map();  // metric key -> Chart
  let timer = null;

  function summary(r) {
    const rows = [
      ["status", [status(r.status, r.stale), r.stale ? ` no heartbeat for ${duration(r.heartbeat_age_s)}` : ""]],
      r.reason ? ["reason", el("span", {id: "reason"}, r.reason)] : null,
      ["started", r.started_at], ["ended", r.ended_at || "-"], ["duration", duration(r.duration_s)],
      ["steps", r.steps], ["seed", r.seed],
      r.sweep ? ["sweep", el("a", {href: `/sweeps/${encodeURIComponent(r.sweep)}`}, r.sweep)] : null,
      r.resumed_from ? ["resumed from", el("a", {href: `/runs/${r.resumed_from}`}, `run ${r.resumed_from}`)] : null,
      ["config file", el("span", {class: "mono"}, r.config_path || "-")],
      r.status === "RUNNING" ? ["heartbeat", `${r.heartbeat_at} (${duration(r.heartbeat_age_s)} ago)`] : null,
    ].filter(Boolean);
    return el("dl", {class: "summary", id: "summary"}, rows.map(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
  }

  function drawCurves(container, data) {
    const keys = Object.keys(data.metrics).sort((a, b) => (a === "train/loss" ? -1 : b === "train/loss" ? 1 : a < b ? -1 : 1));
    for (const key of keys) {
      const m = data.metrics[key];
      if (m.count < 2) continue;  // a single value (an evaluation result) is in the table above
      const pts = points(m.steps, m.values);
      const label = m.count > m.steps.length ? `${key} (${m.steps.length} of ${m.count} points)` : key;
      if (charts.has(key)) {
        const c = charts.get(key);
        c.data.datasets[0].data = pts;
        c.data.datasets[0].pointRadius = pts.length < 3 ? 3 : 0;
        c.update("none");
        c.canvas.closest(".card").querySelector("h3").textContent = label;
        continue;
      }
      const canvas = el("canvas", {"data-metric": key});
      container.append(el("div", {class: "card"}, el("h3", {}, label), el("div", {class: "chart"}, canvas)));
      charts.set(key, lineChart(canvas, [{label: key, data: pts, pointRadius: pts.length < 3 ? 3 : 0}],
                                {logY: false}));
    }
  }

  function render(r, metrics) {
    for (const c of charts.values()) c.destroy();
    charts.clear();
    document.title = `${r.name} · jepa ui`;
    const curves = el("div", {class: "cards", id: "curves"});
    const evals = r.evaluations.length
      ? table(["evaluator", "metric", {text: "value", attrs: {class: "num"}}, {text: "step", attrs: {class: "num"}}, "params"],
              r.evaluations.map(e => [e.evaluator, e.metric, el("td", {class: "num"}, num(e.value, 6)),
                                      el("td", {class: "num"}, e.step), el("span", {class: "mono"}, JSON.stringify(e.params))]))
      : el("p", {class: "muted"}, "(none)");
    const artifacts = r.artifacts.length
      ? table(["kind", "step", "bytes", "path", "sha256"],
              r.artifacts.map(a => [a.kind, a.step, a.bytes, el("span", {class: "mono"}, a.path),
                                    el("span", {class: "mono"}, (a.sha256 || "").slice(0, 16))]))
      : el("p", {class: "muted"}, "(none)");
    const plugins = r.plugins.length
      ? table(["role", "component", "plugin", "sha256", "path", "build"],
              r.plugins.map(p => [p.role, `${p.component} v${p.component_version}`, `${p.plugin} ${p.plugin_version}`,
                                  el("span", {class: "mono"}, (p.sha256 || "").slice(0, 16)),
                                  el("span", {class: "mono"}, p.path), el("span", {class: "muted"}, p.fingerprint)]))
      : el("p", {class: "muted"}, "(none)");
    main.replaceChildren(
      el("h1", {}, el("span", {class: "muted"}, `run ${r.id} `), el("span", {id: "run-name"}, r.name)),
      summary(r),
      el("h2", {}, "Metrics"),
      el("details", {open: r.metric_summary.length <= 12},
         el("summary", {}, "latest values"),
         table(["key", {text: "step", attrs: {class: "num"}}, {text: "last", attrs: {class: "num"}},
                {text: "min", attrs: {class: "num"}}, {text: "max", attrs: {class: "num"}}, {text: "points", attrs: {class: "num"}}],
               r.metric_summary.map(s => [el("span", {class: "mono"}, s.key), el("td", {class: "num"}, s.last_step),
                                          el("td", {class: "num"}, num(s.last, 6)), el("td", {class: "num"}, num(s.min, 6)),
                                          el("td", {class: "num"}, num(s.max, 6)), el("td", {class: "num"}, s.count)]))),
      curves,
      el("h2", {}, "Evaluations"), evals,
      el("h2", {}, "Artifacts"), artifacts,
      el("h2", {}, "Plugins"), plugins,
      el("h2", {}, "Environment"), keyValueTable(r.environment),
      el("h2", {}, "Parameters (resolved config)"), keyValueTable(r.params),
      el("details", {}, el("summary", {}, "config as JSON"), el("pre", {}, JSON.stringify(r.config, null, 2))));
    if (!Object.keys(metrics.metrics).length) curves.append(el("p", {class: "muted"}, "No metrics yet."));
    drawCurves(curves, metrics);
  }

  // While the run trains, its curves follow: the summary and every curve are fetched again.
  async function poll() {
    try {
      const [r, metrics] = await Promise.all([api(`/api/runs/${encodeURIComponent(run)}`),
                                              api(`/api/runs/${encodeURIComponent(run)}/metrics`, {points: jepa.query().get("points")})]);
      const curves = document.getElementById("curves");
      document.getElementById("summary").replaceWith(summary(r));
      drawCurves(curves, metrics);
      if (r.status !== "RUNNING" || r.stale) {
        clearInterval(timer);
        render(r, metrics);  // evaluations and artifacts arrive at the end
      }
    } catch (err) {
      // A transient error (the database being checkpointed, a restart) is retried next time.
    }
  }

  async function load() {
    header("");
    try {
      const [r, metrics] = await Promise.all([api(`/api/runs/${encodeURIComponent(run)}`),
                                              api(`/api/runs/${encodeURIComponent(run)}/metrics`, {points: jepa.query().get("points")})]);
      const t0 = performance.now();
      render(r, metrics);
      // How long building the page and drawing every chart took (bench/RESULTS.md quotes it).
      document.body.dataset.drawMs = (performance.now() - t0).toFixed(1);
      if (r.status === "RUNNING" && !r.stale) timer = setInterval(poll, 3000);
    } catch (err) {
      showError(main, err);
    }
    jepa.ready();
  }

  load();
})();
