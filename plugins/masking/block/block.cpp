// `block`: the paper's single-block ablation: one target block per image, the context is every
// other patch.
#include <block_sampler.hpp>
#include <jepa/sdk/plugin.hpp>

namespace {

using jepa::sdk::MaskRequest;
using jepa::sdk::MaskSample;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;

class SingleBlock final : public jepa::sdk::MaskingStrategy {
 public:
  explicit SingleBlock(const Params& p)
      : scale_(jepa::masking::as_range(p.get_list("scale"), "scale")),
        aspect_ratio_(jepa::masking::as_range(p.get_list("aspect_ratio"), "aspect_ratio")),
        bound_(jepa::masking::parse_bound(p.get_string("position_bound"))) {}

  MaskSample sample(const MaskRequest& r) override {
    jepa::masking::check_request(r);
    const int H = r.grid_height;
    const int W = r.grid_width;
    jepa::masking::SizeGenerator sizes(r.seed, r.step);
    const auto size = jepa::masking::block_size(sizes.uniform(), H, W, scale_, aspect_ratio_);
    jepa::masking::PositionRng rng(r.seed, r.step);

    jepa::sdk::IndexLists targets(r.batch_size);
    jepa::sdk::IndexLists contexts(r.batch_size);
    for (int i = 0; i < r.batch_size; ++i) {
      auto block = jepa::masking::place_block(size, H, W, bound_, {}, 0, rng);
      std::vector<int64_t> context;
      context.reserve(static_cast<size_t>(H) * W - block.indices.size());
      for (int row = 0; row < H; ++row) {
        for (int col = 0; col < W; ++col) {
          if (!block.rect.contains(row, col)) context.push_back(static_cast<int64_t>(row) * W + col);
        }
      }
      targets[i].push_back(std::move(block.indices));
      contexts[i].push_back(std::move(context));
    }
    MaskSample s;
    s.batch_size = r.batch_size;
    jepa::sdk::collate_truncated(contexts, s.context_blocks, s.context_length, s.context);
    jepa::sdk::collate_truncated(targets, s.target_blocks, s.target_length, s.target);
    return s;
  }

 private:
  std::array<double, 2> scale_;
  std::array<double, 2> aspect_ratio_;
  jepa::masking::PositionBound bound_;
};

}  // namespace

JEPA_PLUGIN("masking-block", "1.0.0") {
  plugin.add<SingleBlock>(
      "block", 1, "Paper ablation: a single target block, the context is its complement",
      {
          ParamSpec::list("scale", {0.6, 0.6}, "target block scale range (fraction of patches)", 2).range(0.0, 0.95),
          ParamSpec::list("aspect_ratio", {0.75, 1.5}, "target block aspect ratio (h/w) range", 2).range(0.01, 100.0),
          ParamSpec::string("position_bound", "official",
                            "'official': the block never touches the last row/column; 'corrected': it may",
                            {"official", "corrected"}),
      });
}
