// `multiblock`: the official I-JEPA multi-block sampler (4 target blocks, 1 large context block
// with the targets removed), faithful to upstream including its exclusive position bound and its
// truncation of every mask to the batch minimum.
#include <block_sampler.hpp>
#include <jepa/sdk/plugin.hpp>

namespace {

using jepa::masking::BlockSize;
using jepa::masking::PositionBound;
using jepa::masking::Rect;
using jepa::sdk::MaskRequest;
using jepa::sdk::MaskSample;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;

class MultiBlock final : public jepa::sdk::MaskingStrategy {
 public:
  explicit MultiBlock(const Params& p)
      : npred_(static_cast<int>(p.get_int("npred"))),
        nenc_(static_cast<int>(p.get_int("nenc"))),
        pred_scale_(jepa::masking::as_range(p.get_list("pred_scale"), "pred_scale")),
        enc_scale_(jepa::masking::as_range(p.get_list("enc_scale"), "enc_scale")),
        aspect_ratio_(jepa::masking::as_range(p.get_list("aspect_ratio"), "aspect_ratio")),
        min_keep_(static_cast<int>(p.get_int("min_keep"))),
        allow_overlap_(p.get_bool("allow_overlap")),
        bound_(jepa::masking::parse_bound(p.get_string("position_bound"))) {}

  MaskSample sample(const MaskRequest& r) override {
    jepa::masking::check_request(r);
    const int H = r.grid_height;
    const int W = r.grid_width;
    // One draw per batch for the target size, then one for the context size (upstream order).
    jepa::masking::SizeGenerator sizes(r.seed, r.step);
    const BlockSize pred = jepa::masking::block_size(sizes.uniform(), H, W, pred_scale_, aspect_ratio_);
    const BlockSize enc = jepa::masking::block_size(sizes.uniform(), H, W, enc_scale_, {1.0, 1.0});
    jepa::masking::PositionRng rng(r.seed, r.step);

    jepa::sdk::IndexLists targets(r.batch_size);
    jepa::sdk::IndexLists contexts(r.batch_size);
    const std::vector<Rect> no_constraints;
    std::vector<Rect> target_rects;
    for (int i = 0; i < r.batch_size; ++i) {
      target_rects.clear();
      for (int k = 0; k < npred_; ++k) {
        auto block = jepa::masking::place_block(pred, H, W, bound_, no_constraints, min_keep_, rng);
        target_rects.push_back(block.rect);
        targets[i].push_back(std::move(block.indices));
      }
      const std::vector<Rect>& avoid = allow_overlap_ ? no_constraints : target_rects;
      for (int k = 0; k < nenc_; ++k) {
        auto block = jepa::masking::place_block(enc, H, W, bound_, avoid, min_keep_, rng);
        contexts[i].push_back(std::move(block.indices));
      }
    }
    MaskSample s;
    s.batch_size = r.batch_size;
    jepa::sdk::collate_truncated(contexts, s.context_blocks, s.context_length, s.context);
    jepa::sdk::collate_truncated(targets, s.target_blocks, s.target_length, s.target);
    return s;
  }

 private:
  int npred_;
  int nenc_;
  std::array<double, 2> pred_scale_;
  std::array<double, 2> enc_scale_;
  std::array<double, 2> aspect_ratio_;
  int min_keep_;
  bool allow_overlap_;
  PositionBound bound_;
};

}  // namespace

JEPA_PLUGIN("masking-multiblock", "1.0.0") {
  plugin.add<MultiBlock>(
      "multiblock", 1, "Official I-JEPA multi-block masks: npred target blocks, a context block minus the targets",
      {
          ParamSpec::integer("npred", 4, "number of target blocks per image").range(1, 64),
          ParamSpec::integer("nenc", 1, "number of context blocks per image").range(1, 16),
          ParamSpec::list("pred_scale", {0.15, 0.2}, "target block scale range (fraction of patches)", 2)
              .range(0.0, 1.0),
          ParamSpec::list("enc_scale", {0.85, 1.0}, "context block scale range (fraction of patches)", 2)
              .range(0.0, 1.0),
          ParamSpec::list("aspect_ratio", {0.75, 1.5}, "target block aspect ratio (h/w) range", 2).range(0.01, 100.0),
          ParamSpec::integer("min_keep", 10, "a block must keep more than this many patches").range(0, 1 << 20),
          ParamSpec::boolean("allow_overlap", false, "keep target patches in the context"),
          ParamSpec::string("position_bound", "official",
                            "'official': blocks never touch the last row/column (upstream); "
                            "'corrected': they may",
                            {"official", "corrected"}),
      });
}
