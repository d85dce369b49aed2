// Evaluator `rankme`: a label-free collapse monitor, cheap enough to run every few hundred steps.
// On the average-pooled last-block embeddings of the first `images` training images it reports
// RankMe (Garrido et al. 2023, "RankMe: Assessing the downstream performance of pretrained
// self-supervised representations by their rank"): the exponential of the entropy of the
// singular-value distribution, a smooth count of the directions the embeddings actually use.
// It adds the per-dimension spread of the L2-normalised embeddings (SimSiam's collapse check):
// for embeddings spread over the sphere each dimension has std ~ 1/sqrt(D), and it falls to 0
// when every image maps to the same vector, the failure mode of a JEPA whose EMA target drifts
// to a constant.
#include "pooled_features.hpp"

#include <jepa/sdk/evaluator.hpp>
#include <jepa/sdk/plugin.hpp>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace {

using jepa::evaluators::extract_pooled;
using jepa::sdk::EvalInput;
using jepa::sdk::Metric;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;
using jepa::sdk::Split;

// The paper's epsilon, added to each normalised singular value so that log() stays finite.
constexpr double kRankEps = 1e-7;
// A dimension counts as collapsed when its std is below this fraction of the healthy 1/sqrt(D).
constexpr double kCollapsedFraction = 0.1;

class RankMe final : public jepa::sdk::Evaluator {
 public:
  explicit RankMe(const Params& p) : images_(p.get_int("images")), extract_batch_(p.get_int("extract_batch")) {}

  std::vector<Metric> evaluate(const EvalInput& in) override {
    // Labels are never read: the monitor must work on unlabelled data.
    const auto z = extract_pooled(in, Split::train, images_, {/*last_layers=*/1, extract_batch_, /*labels=*/false})
                       .x.to(torch::kFloat64);
    const int64_t n = z.size(0);
    if (n < 2) throw std::runtime_error("rankme needs at least 2 training images");
    const int64_t dim = z.size(1);
    torch::NoGradGuard no_grad;

    // Uncentred, as in the paper: a shared offset is one of the directions the embedding spends.
    // Double precision, so the tail of tiny singular values of a collapsed encoder is not noise.
    const auto sv = at::linalg_svdvals(z);
    const auto p = sv / sv.sum().clamp_min(1e-300) + kRankEps;
    const double effective_rank = std::exp(-(p * p.log()).sum().item<double>());

    const auto unit = torch::nn::functional::normalize(z, torch::nn::functional::NormalizeFuncOptions().dim(1));
    const auto spread = unit.std(0, /*unbiased=*/false);  // [D]
    const double healthy = 1.0 / std::sqrt(static_cast<double>(dim));
    return {{"effective_rank", effective_rank},
            {"rank_ratio", effective_rank / static_cast<double>(std::min(n, dim))},
            {"feature_std", spread.mean().item<double>()},
            {"feature_std_ratio", spread.mean().item<double>() / healthy},
            {"min_std", spread.min().item<double>()},
            {"collapsed_fraction", spread.lt(kCollapsedFraction * healthy).to(torch::kFloat64).mean().item<double>()},
            {"feature_dim", static_cast<double>(dim)},
            {"images", static_cast<double>(n)}};
  }

 private:
  int64_t images_;
  int64_t extract_batch_;
};

}  // namespace

JEPA_PLUGIN("evaluator-rankme", "1.0.0") {
  plugin.add<RankMe>(
      "rankme", 1, "Label-free collapse monitor: RankMe effective rank and per-dimension spread of pooled embeddings",
      {
          ParamSpec::integer("images", 1024,
                             "embed the first N training images (the rank is at most min(N, D), so N >= D)")
              .range(2, 1 << 20),
          ParamSpec::integer("extract_batch", 256, "images per feature-extraction batch").range(1, 1 << 16),
      });
}
