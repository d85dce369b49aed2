// Compare runs: their curves overlaid and the table `jepa compare` prints (seed groups, n, mean,
// sd, 95% CI, difference and Welch p against the baseline), with the grouping chosen here.
"use strict";
(() => {
  const {api, el, num, header, showError, table, points, lineChart, palette} = jepa;
  const main = document.getElementById("main");
  const q = jepa.query();
  const sel = {runs: q.get("runs") || "", sweep: q.get("sweep") || "", where: q.get("where") || ""};
  const opts = {group_by: q.getAll("group_by"), baseline: q.get("baseline") || "", any_status: q.get("any_status") === "1",
                curve: q.get("curve") || "train/loss"};
  let chart = null;

  function remember() {
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(sel)) if (v) p.set(k, v);
    for (const g of opts.group_by) p.append("group_by", g);
    if (opts.baseline) p.set("baseline", opts.baseline);
    if (opts.any_status) p.set("any_status", "1");
    if (opts.curve !== "train/loss") p.set("curve", opts.curve);
    history.replaceState(null, "", `/compare?${p}`);
  }

  function chooser(c) {
    const groupBox = el("div", {class: "toolbar"}, el("strong", {}, "Group by:"));
    const candidates = [...new Set([...c.params, ...opts.group_by])].sort();
    if (!candidates.length) groupBox.append(el("span", {class: "muted"}, "the runs share every parameter (seeds aside)"));
    for (const k of candidates) {
      groupBox.append(el("label", {}, el("input", {type: "checkbox", checked: opts.group_by.includes(k), onchange: e => {
        opts.group_by = e.target.checked ? [...opts.group_by, k] : opts.group_by.filter(x => x !== k);
        opts.baseline = "";
        load();
      }}), " ", el("span", {class: "mono"}, k)));
    }
    groupBox.append(el("span", {class: "muted"}, opts.group_by.length ? "" : "(default: every parameter but seeds)"));
    const baseline = el("select", {onchange: e => { opts.baseline = e.target.value; load(); }},
                        c.groups.map(g => el("option", {value: g.label, selected: g.label === c.baseline}, g.label)));
    const curve = el("select", {onchange: e => { opts.curve = e.target.value; drawCurves(c); remember(); }},
                     [...new Set(["train/loss", ...c.metrics, opts.curve])].map(
                       m => el("option", {value: m, selected: m === opts.curve}, m)));
    const any = el("label", {}, el("input", {type: "checkbox", checked: opts.any_status, onchange: e => {
      opts.any_status = e.target.checked; load();
    }}), " include runs that did not complete");
    return el("div", {}, groupBox, el("div", {class: "toolbar"}, el("strong", {}, "Baseline:"), baseline,
                                       el("strong", {}, "Curve:"), curve, any));
  }

  function groupTable(c) {
    const headers = ["group", ...c.varying.map(k => el("span", {class: "mono"}, k)), "runs", "seeds"];
    return table(headers.map(h => (typeof h === "string" ? h : {text: h.textContent, attrs: {class: "mono"}})),
                 c.groups.map((g, i) => [
                   el("span", {}, el("span", {class: "swatch", "data-colour": i}), g.label),
                   ...c.varying.map(k => el("span", {class: "mono"}, g.params[k])),
                   el("span", {}, g.runs.map((id, j) => [j ? ", " : "", el("a", {href: `/runs/${id}`, title: c.names[id]}, id)])),
                   g.seeds.join(", ")]));
  }

  function metricTable(c, m) {
    const base = c.groups.find(g => g.label === c.baseline);
    const multi = c.groups.length > 1;
    const headers = ["group", "n", "mean", "sd", "95% CI"].concat(multi ? [`vs ${c.baseline}`, "p (Welch)"] : []);
    const rows = c.groups.map(g => {
      const s = g.metrics[m];
      const row = [g.label, el("td", {class: "num"}, s.n), el("td", {class: "num"}, num(s.mean)), el("td", {class: "num"}, num(s.sd)),
                   s.n >= 2 ? `[${num(s.ci95[0])}, ${num(s.ci95[1])}]` : "-"];
      if (multi) {
        if (g === base) row.push("", "");
        else if (s.welch) row.push(el("td", {class: "num"}, (s.welch.diff >= 0 ? "+" : "") + num(s.welch.diff, 3)),
                                   el("td", {class: "num"}, num(s.welch.p, 3)));
        else {
          const d = s.mean !== null && base.metrics[m].mean !== null ? s.mean - base.metrics[m].mean : null;
          row.push(el("td", {class: "num"}, d === null ? "-" : (d >= 0 ? "+" : "") + num(d, 3)), "-");
        }
      }
      return row;
    });
    return el("div", {class: "card"}, el("h3", {}, m), table(headers, rows));
  }

  async function drawCurves(c) {
    const holder = document.getElementById("curve");
    const ids = c.groups.flatMap(g => g.runs);
    if (!ids.length) return;
    const groupOf = new Map();
    c.groups.forEach((g, i) => g.runs.forEach(id => groupOf.set(id, i)));
    try {
      const data = await api("/api/curves", {runs: ids.join(","), key: opts.curve});
      const datasets = data.series.filter(s => s.steps.length).map(s => ({
        label: `${c.groups[groupOf.get(s.run)].label} · ${s.run} ${s.name}`, data: points(s.steps, s.values),
        borderColor: palette[groupOf.get(s.run) % palette.length], backgroundColor: palette[groupOf.get(s.run) % palette.length],
        borderWidth: 1}));
      if (chart) chart.destroy();
      const canvas = el("canvas", {id: "overlay"});
      holder.replaceChildren(el("div", {class: "chart tall"}, canvas));
      chart = lineChart(canvas, datasets, {yLabel: opts.curve});
      if (!datasets.length) holder.replaceChildren(el("p", {class: "muted"}, `No run has ${opts.curve}.`));
    } catch (err) {
      showError(holder, err);
    }
  }

  function render(c) {
    const what = sel.sweep ? `sweep ${sel.sweep}` : sel.runs ? `runs ${sel.runs}` : `runs where ${sel.where}`;
    main.replaceChildren(
      el("h1", {}, "Compare ", el("span", {class: "muted"}, what)),
      c.groups.length ? chooser(c) : el("p", {class: "muted"},
        c.any_status ? "No runs to compare." : "No COMPLETED runs to compare (tick 'include runs that did not complete')."),
      el("p", {class: "muted"}, `${c.runs} run${c.runs === 1 ? "" : "s"} in ${c.groups.length} group${c.groups.length === 1 ? "" : "s"}` +
         (c.varying.length ? ` by ${c.varying.join(", ")}` : "") + (c.mixed.length ? `; within a group runs also differ in ${c.mixed.join(", ")}` : "")),
      el("h2", {}, "Curves"), el("div", {id: "curve", class: "card"}),
      el("h2", {}, "Groups"), c.groups.length ? groupTable(c) : "",
      el("h2", {}, "Metrics (latest value of each run)"),
      el("div", {class: "cards", id: "metrics"}, c.metrics.map(m => metricTable(c, m))),
      el("p", {class: "muted"}, "p: two-sided Welch t-test against the baseline; '-' where a group has fewer than 2 runs with the metric."),
      el("details", {}, el("summary", {}, "as `jepa compare` prints it"), el("pre", {id: "text"}, c.text)));
    for (const s of main.querySelectorAll(".swatch")) s.style.background = palette[Number(s.dataset.colour) % palette.length];
  }

  async function load() {
    remember();
    if (!sel.runs && !sel.sweep && !sel.where) {
      main.replaceChildren(el("h1", {}, "Compare"),
                           el("p", {}, "Tick runs on the ", el("a", {href: "/"}, "runs page"), " and press Compare, ",
                              "or open /compare?sweep=NAME or /compare?runs=1,2,3."));
      jepa.ready();
      return;
    }
    try {
      const c = await api("/api/compare", Object.assign({}, sel, {group_by: opts.group_by.join(","), baseline: opts.baseline,
                                                                  any_status: opts.any_status ? "1" : ""}));
      render(c);
      await drawCurves(c);
    } catch (err) {
      showError(main, err);
    }
    jepa.ready();
  }

  header("");
  load();
})();
