// Masks: one batch from a masking plugin for chosen parameters and grid, drawn by `jepa masks`
// itself (the server runs jepa-engine), with the statistics it prints.
"use strict";
(() => {
  const {api, el, num, header, showError, table} = jepa;
  const main = document.getElementById("main");
  const q = jepa.query();
  let strategies = [];

  function paramInputs(strategy, holder) {
    holder.replaceChildren();
    for (const p of strategy.params) {
      const given = q.getAll("set").map(s => s.split("=")).find(([k]) => k === p.name);
      const value = given ? given.slice(1).join("=") : typeof p.default === "object" ? JSON.stringify(p.default) : String(p.default);
      holder.append(el("label", {title: p.doc}, el("span", {}, p.name),
                       el("input", {type: "text", class: "param", name: p.name, value, "data-default": typeof p.default === "object" ? JSON.stringify(p.default) : String(p.default)}),
                       " ", el("span", {class: "muted"}, `${p.type}${p.choices ? " {" + p.choices.join(", ") + "}" : ""} ${p.doc || ""}`)));
    }
  }

  function statsTable(st, grid) {
    const n = grid[0] * grid[1];
    const shapes = Object.entries(st.target_shapes || {}).map(([k, v]) => `${k} (${v})`).join(", ");
    return table(["", ""], [
      ["context", `${st.context_blocks} block(s) x ${st.context_length} patches = ${num((100 * st.context_length) / n, 3)}% of ${n}`],
      ["targets", `${st.target_blocks} block(s) x ${st.target_length} patches = ${num((100 * st.target_length) / n, 3)}% each; shapes ${shapes}`],
      ["coverage", `context ${num(100 * st.context_fraction, 3)}%, union of targets ${num(100 * st.target_union_fraction, 3)}%, unused ${num(100 * st.unused_fraction, 3)}%`],
      ["overlap", `context/targets: mean ${num(st.mean_overlap, 3)}, max ${st.max_overlap} patches per image`]]);
  }

  async function draw(form, out) {
    const data = new FormData(form);
    const sets = [];
    for (const input of form.querySelectorAll("input.param")) {
      if (input.value !== input.dataset.default) sets.push(`${input.name}=${input.value}`);
    }
    const params = {strategy: data.get("strategy"), grid: data.get("grid"), batch: data.get("batch"), seed: data.get("seed"),
                    step: data.get("step"), set: sets};
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) for (const x of [].concat(v)) if (x) p.append(k, x);
    history.replaceState(null, "", `/masks?${p}`);
    out.replaceChildren(el("p", {class: "muted"}, "Sampling…"));
    try {
      const r = await api("/api/masks", params);
      const m = r.masks;
      out.replaceChildren(
        el("p", {}, `${m.strategy} v${m.version} (${m.plugin}), grid ${m.grid[0]}x${m.grid[1]}, batch ${m.batch}, seed ${m.seed}, step ${m.step}`),
        el("img", {class: "masks", id: "masks-png", src: r.png, alt: "masks: context blue, targets coloured, unused grey"}),
        el("p", {class: "muted"}, "One tile per image: context blue, targets in colours, unused grey."),
        statsTable(m.stats, m.grid),
        el("details", {}, el("summary", {}, "parameters used"), el("pre", {}, JSON.stringify(m.params, null, 2))));
    } catch (err) {
      showError(out, err);
    }
    jepa.ready();
  }

  async function load() {
    header("");
    try {
      strategies = (await api("/api/masking")).strategies;
    } catch (err) {
      showError(main, err);
      jepa.ready();
      return;
    }
    if (!strategies.length) {
      main.replaceChildren(el("p", {class: "muted"}, "No masking plugin found (see `jepa plugins`)."));
      jepa.ready();
      return;
    }
    const chosen = q.get("strategy") || (strategies.find(s => s.id === "multiblock") || strategies[0]).id;
    const paramsBox = el("div", {class: "params"});
    const select = el("select", {name: "strategy", onchange: e => paramInputs(strategies.find(s => s.id === e.target.value), paramsBox)},
                      strategies.map(s => el("option", {value: s.id, selected: s.id === chosen}, `${s.id} (${s.plugin})`)));
    const field = (label, name, value) => el("label", {}, el("span", {}, label), el("input", {type: "text", name, value}));
    const out = el("div", {id: "masks"});
    const form = el("form", {onsubmit: e => { e.preventDefault(); draw(form, out); }},
                    el("div", {class: "params"}, el("label", {}, el("span", {}, "strategy"), select),
                       field("grid (N or HxW)", "grid", q.get("grid") || "14"), field("batch", "batch", q.get("batch") || "8"),
                       field("seed", "seed", q.get("seed") || "0"), field("step", "step", q.get("step") || "0")),
                    el("h2", {}, "Parameters"), paramsBox, el("p", {}, el("button", {type: "submit"}, "Draw")));
    main.replaceChildren(el("h1", {}, "Masks"), form, out);
    paramInputs(strategies.find(s => s.id === chosen) || strategies[0], paramsBox);
    draw(form, out);
  }

  load();
})();
