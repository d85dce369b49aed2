// `jepa masks`: sample one batch of masks from a masking plugin, print the statistics a
// researcher checks, and draw them.
#include "cli/commands.hpp"
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "report/mask_png.hpp"
#include "report/mask_stats.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>
#include <memory>

namespace jepa::cli {

namespace {

using nlohmann::json;

struct MasksOptions {
  std::string strategy;
  std::string grid = "14";
  int batch = 8;
  uint64_t seed = 0;
  int64_t step = 0;
  std::vector<std::string> set;
  std::string output;
  bool as_json = false;
};

std::pair<int, int> parse_grid(const std::string& text) {
  int h = 0;
  int w = 0;
  char x = 0;
  char extra = 0;
  const int n = std::sscanf(text.c_str(), "%d%c%d%c", &h, &x, &w, &extra);
  if (n == 1) {
    w = h;
  } else if (!(n == 3 && (x == 'x' || x == 'X'))) {
    throw UsageError(fmt::format("--grid expects N or HxW (patches per side), got '{}'", text));
  }
  if (h < 2 || w < 2 || h > 1024 || w > 1024) {
    throw UsageError(fmt::format("--grid must be between 2 and 1024 per side, got '{}'", text));
  }
  return {h, w};
}

json indices_json(const sdk::MaskSample& s, bool context) {
  json blocks = json::array();
  const int nb = context ? s.context_blocks : s.target_blocks;
  const int len = context ? s.context_length : s.target_length;
  for (int b = 0; b < nb; ++b) {
    json images = json::array();
    for (int i = 0; i < s.batch_size; ++i) {
      const int64_t* row = context ? s.context_row(b, i) : s.target_row(b, i);
      images.push_back(std::vector<int64_t>(row, row + len));
    }
    blocks.push_back(std::move(images));
  }
  return blocks;
}

std::string bar(double fraction, int width) {
  const int n = static_cast<int>(fraction * width + 0.5);
  return std::string(n, '#') + std::string(width - n, '.');
}

int run_masks(const GlobalOptions& global, const MasksOptions& o) {
  const auto [H, W] = parse_grid(o.grid);
  if (o.batch < 1) throw UsageError("--batch must be at least 1");
  const loader::Registry reg = discover_plugins(global);
  const loader::ComponentInfo* comp = reg.find(loader::Kind::masking, o.strategy);
  if (comp == nullptr) {
    throw UsageError(
        fmt::format("unknown masking strategy '{}'; available: {}", o.strategy, reg.available(loader::Kind::masking)));
  }
  std::vector<std::pair<std::string, std::string>> overrides;
  for (const auto& s : o.set) overrides.push_back(config::split_assignment(s));
  const loader::ParamSet params = config::resolve_params(*comp, overrides);

  loader::MaskingStrategy strategy(*comp, params);
  sdk::MaskRequest req;
  req.grid_height = H;
  req.grid_width = W;
  req.batch_size = o.batch;
  req.seed = o.seed;
  req.step = o.step;
  const sdk::MaskSample sample = strategy.sample(req);
  const report::MaskStats st = report::compute_mask_stats(sample, H, W);
  if (!o.output.empty()) report::write_mask_png(sample, H, W, o.output);

  if (o.as_json) {
    json p = json::object();
    for (const auto& [k, v] : params.values) p[k] = std::visit([](const auto& x) { return json(x); }, v);
    json out{{"strategy", comp->id},
             {"version", comp->version},
             {"plugin", comp->plugin->name},
             {"params", p},
             {"grid", {H, W}},
             {"batch", o.batch},
             {"seed", o.seed},
             {"step", o.step},
             {"context", indices_json(sample, true)},
             {"target", indices_json(sample, false)},
             {"stats",
              {{"context_blocks", st.context_blocks},
               {"context_length", st.context_length},
               {"target_blocks", st.target_blocks},
               {"target_length", st.target_length},
               {"context_fraction", st.context_fraction},
               {"target_union_fraction", st.target_union_fraction},
               {"unused_fraction", st.unused_fraction},
               {"mean_overlap", st.mean_overlap},
               {"max_overlap", st.max_overlap},
               {"target_shapes", st.target_shapes},
               {"context_row_coverage", st.context_row_coverage},
               {"target_row_coverage", st.target_row_coverage}}}};
    if (!o.output.empty()) out["png"] = o.output;
    std::cout << out.dump() << "\n";
    return 0;
  }

  const int N = H * W;
  std::vector<std::string> kv;
  for (const auto& [k, v] : params.values) kv.push_back(k + "=" + loader::format_value(v));
  fmt::print("{} v{} ({}), grid {}x{}, batch {}, seed {}, step {}\n", comp->id, comp->version, comp->plugin->name, H, W,
             o.batch, o.seed, o.step);
  fmt::print("params    {}\n", fmt::join(kv, " "));
  fmt::print("context   {} block(s) x {} patches = {:.1f}% of {} (after truncation to the batch minimum)\n",
             st.context_blocks, st.context_length, 100.0 * st.context_length / N, N);
  std::vector<std::string> shapes;
  for (const auto& [shape, count] : st.target_shapes) shapes.push_back(fmt::format("{} ({})", shape, count));
  fmt::print("targets   {} block(s) x {} patches = {:.1f}% of {} each; block shapes: {}\n", st.target_blocks,
             st.target_length, 100.0 * st.target_length / N, N, fmt::join(shapes, ", "));
  fmt::print("coverage  context {:.1f}%, union of targets {:.1f}%, unused {:.1f}% (mean per image)\n",
             100 * st.context_fraction, 100 * st.target_union_fraction, 100 * st.unused_fraction);
  fmt::print("overlap   context/targets: mean {:.2f}, max {} patches per image\n", st.mean_overlap, st.max_overlap);
  fmt::print("per row   context | targets (fraction of the row's patches, mean over images)\n");
  for (int r = 0; r < H; ++r) {
    fmt::print("  {:>3}  {} {:4.2f} | {} {:4.2f}\n", r, bar(st.context_row_coverage[r], 20), st.context_row_coverage[r],
               bar(st.target_row_coverage[r], 20), st.target_row_coverage[r]);
  }
  if (!o.output.empty()) {
    std::vector<std::string> colours;
    for (int b = 0; b < st.target_blocks && b < 8; ++b) colours.emplace_back(report::target_colour_name(b));
    fmt::print("wrote {}: context blue, targets {}, unused grey\n", o.output, fmt::join(colours, "/"));
  }
  return 0;
}

}  // namespace

Command add_masks_command(CLI::App& parent, const GlobalOptions& global) {
  auto o = std::make_shared<MasksOptions>();
  auto* sub =
      parent.add_subcommand("masks", "Sample a batch of masks from a masking plugin, show statistics, draw them");
  sub->add_option("--strategy", o->strategy, "Masking component id (see `jepa plugins`), e.g. multiblock")->required();
  sub->add_option("--grid", o->grid, "Patch grid: N or HxW patches (224 px / patch 16 = 14)")->capture_default_str();
  sub->add_option("--batch", o->batch, "Images in the batch")->capture_default_str();
  sub->add_option("--seed", o->seed, "Seed (masks are deterministic given seed, step and parameters)")
      ->capture_default_str();
  sub->add_option("--step", o->step, "Training step the batch belongs to (block sizes are drawn per step)")
      ->capture_default_str();
  sub->add_option("--set", o->set, "Override a parameter of the strategy: key=value (repeatable)")
      ->type_name("KEY=VALUE");
  sub->add_option("-o,--output", o->output, "Write the masks as a PNG: one tile per image")->type_name("FILE.png");
  sub->add_flag("--json", o->as_json, "Print the sampled indices and the statistics as JSON");
  sub->footer(
      "Examples:\n"
      "  jepa masks --strategy multiblock -o masks.png\n"
      "  jepa masks --strategy multiblock --grid 16 --set position_bound=corrected --set npred=2\n"
      "  jepa masks --strategy random --set ratio=[0.7,0.8] --json | jq .stats\n"
      "Statistics: patches per context and target block, target block shapes, how much of the grid\n"
      "the context, the targets and neither cover, context/target overlap, and coverage per row\n"
      "(upstream's truncation to the batch minimum keeps the first raster-order patches, so it\n"
      "biases the context toward the top rows).");
  return {sub, [&global, o] { return run_masks(global, *o); }};
}

}  // namespace jepa::cli
