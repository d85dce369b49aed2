// Horizontal stripes: the context is every `period`-th row, the targets the rows in between.
#include <jepa/sdk/plugin.hpp>

namespace {

class Stripes final : public jepa::sdk::MaskingStrategy {
 public:
  explicit Stripes(const jepa::sdk::Params& p) : period_(static_cast<int>(p.get_int("period"))) {}

  jepa::sdk::MaskSample sample(const jepa::sdk::MaskRequest& r) override {
    if (r.grid_height < period_ || r.grid_width < 2 || r.batch_size < 1) {
      throw std::invalid_argument("grid too small for the stripe period");
    }
    std::vector<int64_t> ctx;
    std::vector<int64_t> tgt;
    for (int row = 0; row < r.grid_height; ++row) {
      for (int col = 0; col < r.grid_width; ++col) {
        (row % period_ == static_cast<int>((r.seed + r.step) % period_) ? ctx : tgt)
            .push_back(row * r.grid_width + col);
      }
    }
    jepa::sdk::IndexLists contexts(r.batch_size, {ctx});
    jepa::sdk::IndexLists targets(r.batch_size, {tgt});
    jepa::sdk::MaskSample s;
    s.batch_size = r.batch_size;
    jepa::sdk::collate_truncated(contexts, s.context_blocks, s.context_length, s.context);
    jepa::sdk::collate_truncated(targets, s.target_blocks, s.target_length, s.target);
    return s;
  }

 private:
  int period_;
};

}  // namespace

JEPA_PLUGIN("stripes", "0.1.0") {
  plugin.add<Stripes>("stripes", 1, "Every period-th row is context, the rest are targets",
                      {jepa::sdk::ParamSpec::integer("period", 2, "stripe period in rows").range(2, 16)});
}
