// The runs page: `jepa runs` with its --where language, sorting by any column, status and sweep
// facets, and a selection of runs to compare. The state lives in the address, so a view can be
// bookmarked or sent.
"use strict";
(() => {
  const {api, el, num, duration, status, header, showError} = jepa;
  const main = document.getElementById("main");
  const state = {where: "", sort: "", status: [], sweep: ""};
  const q = jepa.query();
  state.where = q.get("where") || "";
  state.sort = q.get("sort") || "";
  state.status = q.getAll("status");
  state.sweep = q.get("sweep") || "";
  const selected = new Set();

  function remember() {
    const p = new URLSearchParams();
    if (state.where) p.set("where", state.where);
    if (state.sort) p.set("sort", state.sort);
    for (const s of state.status) p.append("status", s);
    if (state.sweep) p.set("sweep", state.sweep);
    history.replaceState(null, "", p.toString() ? `/?${p}` : "/");
  }

  const input = el("input", {type: "text", name: "where", value: state.where, spellcheck: "false",
                             placeholder: "filter, e.g. linear_probe/top1 > 70 and optimization.lr <= 1e-3 and status = completed"});
  const form = el("form", {class: "filter", onsubmit: e => { e.preventDefault(); state.where = input.value.trim(); load(); }},
                  input, el("button", {type: "submit"}, "Filter"),
                  el("button", {type: "button", class: "secondary", onclick: () => { input.value = ""; state.where = ""; load(); }}, "Clear"));
  const facets = el("aside", {class: "facets"});
  const info = el("span", {class: "muted"});
  const compareButton = el("button", {type: "button", disabled: true, onclick: () => {
    location.href = `/compare?runs=${[...selected].join(",")}`;
  }}, "Compare selected");
  const results = el("div", {id: "results"});
  main.replaceChildren(el("h1", {}, "Runs"), form,
                       el("div", {class: "layout"}, facets,
                          el("section", {}, el("div", {class: "toolbar"}, compareButton, info), results)));

  function updateButton() {
    compareButton.disabled = selected.size < 1;
    compareButton.textContent = selected.size ? `Compare ${selected.size} selected` : "Compare selected";
  }

  // A first click sorts ascending, the next descending.
  function sortBy(field) {
    state.sort = state.sort === field ? `-${field}` : field;
    load();
  }

  function header_cell(text, field, cls) {
    const arrow = state.sort === field ? " ▲" : state.sort === `-${field}` ? " ▼" : "";
    return el("th", {class: `sortable ${cls || ""}`, title: `sort by ${field}`, onclick: () => sortBy(field)}, text + arrow);
  }

  function renderFacets(data) {
    const statusBox = el("div", {}, el("h3", {}, "Status"));
    for (const s of ["COMPLETED", "RUNNING", "FAILED", "KILLED", "PRUNED"]) {
      const n = data.facets.status[s] || 0;
      const box = el("input", {type: "checkbox", checked: state.status.includes(s), onchange: e => {
        state.status = e.target.checked ? [...state.status, s] : state.status.filter(x => x !== s);
        load();
      }});
      statusBox.append(el("label", {}, box, " ", status(s), el("span", {class: "count"}, n)));
    }
    const sweepBox = el("div", {}, el("h3", {}, "Sweeps"));
    sweepBox.append(el("div", {}, el("a", {href: "#", class: state.sweep ? "" : "active",
                                           onclick: e => { e.preventDefault(); state.sweep = ""; load(); }}, "all runs")));
    for (const s of data.facets.sweeps) {
      sweepBox.append(el("div", {},
        el("a", {href: "#", class: state.sweep === s.name ? "active" : "",
                 onclick: e => { e.preventDefault(); state.sweep = s.name; load(); }}, s.name),
        " ", el("a", {href: `/sweeps/${encodeURIComponent(s.name)}`, title: "sweep page"}, "↗"),
        el("span", {class: "count"}, s.runs)));
    }
    if (!data.facets.sweeps.length) sweepBox.append(el("p", {class: "muted"}, "(none)"));
    facets.replaceChildren(statusBox, sweepBox);
  }

  function render(data) {
    document.getElementById("db").textContent = data.db;
    renderFacets(data);
    const cols = data.columns;
    info.textContent = `${data.shown} shown of ${data.total} matching${data.more ? " (the first 1000; narrow the filter)" : ""}`;
    if (!data.runs.length) {
      results.replaceChildren(el("p", {class: "muted"}, "No runs match."));
      return;
    }
    const all = el("input", {type: "checkbox", title: "select all shown", onchange: e => {
      for (const r of data.runs) e.target.checked ? selected.add(r.id) : selected.delete(r.id);
      for (const b of results.querySelectorAll("input.pick")) b.checked = e.target.checked;
      updateButton();
    }});
    const head = [el("th", {}, all), header_cell("id", "id", "num"), header_cell("name", "name"),
                  header_cell("status", "status"), header_cell("steps", "steps", "num"), el("th", {class: "num"}, "time"),
                  el("th", {}, "sweep"),
                  ...cols.params.map(p => header_cell(cols.short[p] || p, p)),
                  ...cols.metrics.map(m => header_cell(m, m, "num")), el("th", {}, "reason")];
    const rows = data.runs.map(r => el("tr", {"data-run": r.id},
      el("td", {}, el("input", {type: "checkbox", class: "pick", checked: selected.has(r.id), onchange: e => {
        e.target.checked ? selected.add(r.id) : selected.delete(r.id);
        updateButton();
      }})),
      el("td", {class: "num"}, r.id),
      el("td", {}, el("a", {href: `/runs/${r.id}`, class: "run-name"}, r.name)),
      el("td", {}, status(r.status, r.stale)),
      el("td", {class: "num"}, r.steps),
      el("td", {class: "num"}, duration(r.duration_s)),
      el("td", {}, r.sweep ? el("a", {href: `/sweeps/${encodeURIComponent(r.sweep)}`}, r.sweep) : "-"),
      ...cols.params.map(p => el("td", {class: "mono"}, p in r.params ? r.params[p] : "-")),
      ...cols.metrics.map(m => el("td", {class: "num"}, m in r.metrics ? num(r.metrics[m]) : "-")),
      el("td", {class: "muted"}, r.reason || "")));
    results.replaceChildren(el("div", {class: "table-scroll"},
                                el("table", {id: "runs"}, el("thead", {}, el("tr", {}, head)), el("tbody", {}, rows))));
  }

  async function load() {
    remember();
    try {
      render(await api("/api/runs", {where: state.where, sort: state.sort, status: state.status, sweep: state.sweep}));
    } catch (err) {
      showError(results, err);
    }
    jepa.ready();
  }

  header("");
  load();
})();
