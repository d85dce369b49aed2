// `random`: random patches, as upstream's random collator (src/masks/random.py): one masking
// ratio drawn per batch, then each image keeps a random subset as context and predicts the rest.
#include <block_sampler.hpp>
#include <jepa/sdk/plugin.hpp>

#include <numeric>

namespace {

using jepa::sdk::MaskRequest;
using jepa::sdk::MaskSample;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;

class RandomPatches final : public jepa::sdk::MaskingStrategy {
 public:
  explicit RandomPatches(const Params& p) : ratio_(jepa::masking::as_range(p.get_list("ratio"), "ratio")) {}

  MaskSample sample(const MaskRequest& r) override {
    jepa::masking::check_request(r);
    const int n = r.grid_height * r.grid_width;
    jepa::masking::SizeGenerator sizes(r.seed, r.step);
    const double ratio = ratio_[0] + sizes.uniform() * (ratio_[1] - ratio_[0]);
    const int keep = std::clamp(static_cast<int>(n * (1.0 - ratio)), 1, n - 1);
    jepa::masking::PositionRng rng(r.seed, r.step);

    jepa::sdk::IndexLists targets(r.batch_size);
    jepa::sdk::IndexLists contexts(r.batch_size);
    std::vector<int64_t> perm(n);
    for (int i = 0; i < r.batch_size; ++i) {
      std::iota(perm.begin(), perm.end(), 0);
      for (int k = n - 1; k > 0; --k) std::swap(perm[k], perm[rng.below(k + 1)]);
      std::vector<int64_t> context(perm.begin(), perm.begin() + keep);
      std::vector<int64_t> target(perm.begin() + keep, perm.end());
      std::sort(context.begin(), context.end());
      std::sort(target.begin(), target.end());
      contexts[i].push_back(std::move(context));
      targets[i].push_back(std::move(target));
    }
    MaskSample s;
    s.batch_size = r.batch_size;
    jepa::sdk::collate_truncated(contexts, s.context_blocks, s.context_length, s.context);
    jepa::sdk::collate_truncated(targets, s.target_blocks, s.target_length, s.target);
    return s;
  }

 private:
  std::array<double, 2> ratio_;
};

}  // namespace

JEPA_PLUGIN("masking-random", "1.0.0") {
  plugin.add<RandomPatches>(
      "random", 1, "Random patches: a per-batch masking ratio, the rest is context (upstream random collator)",
      {
          ParamSpec::list("ratio", {0.4, 0.6}, "range of the fraction of patches to predict", 2).range(0.0, 0.99),
      });
}
