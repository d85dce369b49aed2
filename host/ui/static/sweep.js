// A sweep: progress, the best run so far and which parameters decide the best trials (PED-ANOVA
// importance), each swept parameter against a metric (every run a point, each value's mean with
// its 95% CI as a band), trials and the pruning decisions.
"use strict";
(() => {
  const {api, el, num, status, header, showError, table, lineChart, palette} = jepa;
  const main = document.getElementById("main");
  const name = decodeURIComponent(location.pathname.split("/")[2] || "");
  const q = jepa.query();
  const opts = {metric: q.get("metric") || "", mode: q.get("mode") || ""};
  const charts = [];
  const colours = {COMPLETED: "#1f8a4c", RUNNING: "#2f6fde", FAILED: "#c62828", KILLED: "#8e5a00", PRUNED: "#7a5ab5",
                   pending: "#d0d4dc"};

  function progress(p) {
    const bar = el("div", {class: "progress", id: "progress"});
    const legend = el("div", {class: "legend"});
    for (const k of ["COMPLETED", "RUNNING", "FAILED", "KILLED", "PRUNED", "pending"]) {
      const n = p[k] || 0;
      if (!n) continue;
      const seg = el("span", {title: `${k}: ${n}`});
      seg.style.width = `${(100 * n) / Math.max(1, p.trials)}%`;
      seg.style.background = colours[k];
      bar.append(seg);
      const sw = el("span", {class: "swatch"});
      sw.style.background = colours[k];
      legend.append(el("span", {}, sw, `${k.toLowerCase()} ${n}`));
    }
    return el("div", {}, el("p", {}, `${p.trials} trials: ${p.COMPLETED} done, ${p.RUNNING} running, ${p.FAILED + p.KILLED} failed, ` +
                                 `${p.PRUNED} pruned, ${p.pending} not started`), bar, legend);
  }

  function effectChart(e, metric) {
    const canvas = el("canvas");
    const categories = e.numeric ? null : e.values.map(v => v.value);
    const xs = e.values.map(v => v.x);
    const logX = e.numeric && xs.length > 1 && xs[0] > 0 && xs[xs.length - 1] / xs[0] >= 100;
    const band = (i) => e.values.filter(v => v.n >= 2).map(v => ({x: v.x, y: v.ci95[i]}));
    const datasets = [
      {label: "runs", type: "scatter", data: e.points.map(([x, y]) => ({x, y})), pointRadius: 3, showLine: false,
       borderColor: "#9aa1ad", backgroundColor: "#9aa1ad"},
      {label: "_95% CI low", data: band(0), borderColor: "rgba(47,111,222,0.25)", backgroundColor: "rgba(47,111,222,0.12)",
       borderDash: [4, 3], borderWidth: 1},
      {label: "95% CI", data: band(1), fill: "-1", borderColor: "rgba(47,111,222,0.25)",
       backgroundColor: "rgba(47,111,222,0.12)", borderDash: [4, 3], borderWidth: 1},
      {label: "mean", data: e.values.map(v => ({x: v.x, y: v.mean})), pointRadius: 4, borderWidth: 2,
       borderColor: palette[0], backgroundColor: palette[0]},
    ];
    const x = {type: logX ? "logarithmic" : "linear", title: {display: true, text: e.param}};
    if (categories) Object.assign(x, {ticks: {stepSize: 1, callback: v => categories[v] ?? ""}, min: -0.5, max: categories.length - 0.5});
    charts.push(lineChart(canvas, datasets, {x, xLabel: e.param, yLabel: metric}));
    const rows = e.values.map(v => [el("span", {class: "mono"}, v.value), el("td", {class: "num"}, v.n), el("td", {class: "num"}, num(v.mean)),
                                    el("td", {class: "num"}, num(v.sd)), v.n >= 2 ? `[${num(v.ci95[0])}, ${num(v.ci95[1])}]` : "-"]);
    return el("div", {class: "card"}, el("h3", {}, `${metric} vs ${e.param}`), el("div", {class: "chart"}, canvas),
              table([e.param, "n", "mean", "sd", "95% CI"], rows));
  }

  // One bar per parameter, its length the parameter's share of the summed importance: shares
  // compare at a glance where the raw divergences (small numbers) do not.
  function importanceCard(imp) {
    const bar = (share) => {
      const track = el("span");
      Object.assign(track.style, {display: "inline-block", background: "#eceef2", borderRadius: "3px", height: "10px",
                                  width: "70px", marginRight: "0.4em", verticalAlign: "-1px"});
      const fill = el("span");
      Object.assign(fill.style, {display: "block", background: palette[0], borderRadius: "3px", height: "100%",
                                 width: `${100 * share}%`});
      track.append(fill);
      const cell = el("span", {}, track, `${(100 * share).toFixed(1)}%`);
      cell.style.whiteSpace = "nowrap";  // style attributes are refused by the page's CSP; the CSSOM is not
      return cell;
    };
    // The raw importance goes in the tooltip: the card sits beside two others and has room for three columns.
    const rows = imp.params.map(p => [el("span", {class: "mono"}, p.param), el("span", {title: `importance ${num(p.importance)}`}, bar(p.share)),
                                      el("td", {class: "num"}, `${p.top}/${p.n}`)]);
    const note = el("p", {class: "muted"}, imp.note);
    if (!imp.reliable) note.style.color = "var(--killed)";  // too few top trials: the ranking is a hint at best
    return el("div", {class: "card", id: "importance"}, el("h3", {}, `Parameter importance for ${imp.metric} (PED-ANOVA)`),
              rows.length ? el("div", {class: "table-scroll"},
                               table(["param", "share", {text: "top/n", attrs: {class: "num"}}], rows))
                          : "",
              note,
              el("p", {class: "muted"}, `top/n: of the completed trials that have the parameter (n), how many are among the best ` +
                 `${Math.round(100 * imp.quantile)}% (top)` + (imp.space === "inferred" ? "; parameters inferred from the runs" : "")));
  }

  function render(s) {
    for (const c of charts.splice(0)) c.destroy();
    document.title = `${s.sweep.name} · jepa ui`;
    const metricSel = el("select", {onchange: e => { opts.metric = e.target.value; opts.mode = ""; load(); }},
                         s.metrics.map(m => el("option", {value: m, selected: m === s.metric}, m)));
    const modeSel = el("select", {onchange: e => { opts.mode = e.target.value; load(); }},
                       ["min", "max"].map(m => el("option", {value: m, selected: m === s.mode}, m === "min" ? "lower is better" : "higher is better")));
    const best = s.best
      ? el("dl", {class: "summary", id: "best"},
           el("dt", {}, "best"), el("dd", {}, el("a", {href: `/runs/${s.best.run}`}, `run ${s.best.run} ${s.best.name}`), " ",
                                   status(s.best.status)),
           el("dt", {}, s.metric), el("dd", {}, num(s.best.value, 6)),
           Object.entries(s.best.params).map(([k, v]) => [el("dt", {class: "mono"}, k), el("dd", {class: "mono"}, v)]))
      : el("p", {class: "muted"}, `No completed or running trial has ${s.metric} yet.`);
    const historyCanvas = el("canvas");
    const pruning = s.pruning.rule === "none" ? "no pruning" : `pruning: ${s.pruning.rule} on ${s.pruning.metric} (${s.pruning.mode})`;
    const trialRows = (s.trials.length ? s.trials : s.runs.map((r, i) => ({index: i, overrides: r.point, run: r.id, status: r.status, reason: r.reason})))
      .map(t => [t.index, el("span", {class: "mono"}, Array.isArray(t.overrides) ? t.overrides.join(" ") : JSON.stringify(t.overrides)),
                 t.run ? el("a", {href: `/runs/${t.run}`}, t.run) : "-", t.status ? status(t.status) : el("span", {class: "muted"}, "pending"),
                 (s.runs.find(r => r.id === t.run) || {}).value !== undefined ? num((s.runs.find(r => r.id === t.run) || {}).value) : "-",
                 el("span", {class: "muted"}, t.reason || "")]);
    main.replaceChildren(
      el("h1", {}, "Sweep ", el("span", {id: "sweep-name"}, s.sweep.name), " ", el("span", {class: "muted"}, `(${s.sweep.status.toLowerCase()})`)),
      el("div", {class: "toolbar"}, el("a", {href: `/?sweep=${encodeURIComponent(s.sweep.name)}`}, "its runs"),
         el("a", {href: `/compare?sweep=${encodeURIComponent(s.sweep.name)}`}, "compare its runs"), el("span", {class: "muted"}, pruning)),
      progress(s.progress),
      el("div", {class: "toolbar"}, el("strong", {}, "Metric:"), metricSel, modeSel),
      el("h2", {}, "Best so far"),
      el("div", {class: "cards"}, el("div", {class: "card"}, best),
         el("div", {class: "card"}, el("h3", {}, `${s.metric}: each trial and the best so far`), el("div", {class: "chart"}, historyCanvas)),
         importanceCard(s.importance)),
      el("h2", {}, "Parameters"),
      el("div", {class: "cards", id: "effects"}, s.effects.map(e => effectChart(e, s.metric))),
      s.effects.length ? "" : el("p", {class: "muted"}, "No swept parameter (a seeds-only sweep)."),
      el("h2", {}, "Pruning decisions"),
      s.pruned.length ? table(["run", "name", "steps", "reason"], s.pruned.map(p => [el("a", {href: `/runs/${p.run}`}, p.run), p.name, p.steps,
                                                                                  el("span", {class: "reason"}, p.reason)]))
                      : el("p", {class: "muted"}, "No trial was pruned."),
      el("h2", {}, "Trials"),
      table(["trial", "overrides", "run", "status", s.metric, "reason"], trialRows));
    charts.push(lineChart(historyCanvas, [
      {label: "trial", type: "scatter", data: s.best_so_far.map(h => ({x: h.run, y: h.value})), pointRadius: 2, showLine: false,
       borderColor: "#9aa1ad", backgroundColor: "#9aa1ad"},
      {label: "best so far", data: s.best_so_far.map(h => ({x: h.run, y: h.best})), stepped: true, borderWidth: 2}],
      {xLabel: "run id"}));
  }

  async function load() {
    const p = new URLSearchParams();
    if (opts.metric) p.set("metric", opts.metric);
    if (opts.mode) p.set("mode", opts.mode);
    history.replaceState(null, "", `${location.pathname}${p.toString() ? "?" + p : ""}`);
    try {
      render(await api(`/api/sweeps/${encodeURIComponent(name)}`, opts));
    } catch (err) {
      showError(main, err);
    }
    jepa.ready();
  }

  header("");
  load();
})();
