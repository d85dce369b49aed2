// Evaluator `low_shot`: the linear probe's recipe trained on only N labelled images per class, for
// several N, each repeated over random class-balanced subsets (as the I-JEPA paper's 1%-ImageNet
// evaluation and MSN's 1/2/5-shot tables do). Label efficiency is where joint-embedding
// pretraining is meant to pay off, and with a handful of images per class the choice of images
// matters, so it reports the mean and spread over the draws rather than one number.
#include "linear_head.hpp"
#include "pooled_features.hpp"

#include <jepa/sdk/evaluator.hpp>
#include <jepa/sdk/plugin.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <string>

namespace {

using jepa::evaluators::extract_pooled;
using jepa::evaluators::PooledFeatures;
using jepa::sdk::EvalInput;
using jepa::sdk::Metric;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;
using jepa::sdk::Split;

// SplitMix64 finaliser: neighbouring (seed, shots, draw) triples get unrelated generator seeds.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::vector<int64_t> read_shots(const Params& p) {
  std::vector<int64_t> shots;
  std::set<int64_t> seen;
  for (double v : p.get_list("shots")) {
    const auto n = static_cast<int64_t>(v);
    if (static_cast<double>(n) != v) throw std::invalid_argument("low_shot: shots must be whole numbers");
    if (!seen.insert(n).second) throw std::invalid_argument("low_shot: shots lists " + std::to_string(n) + " twice");
    shots.push_back(n);
  }
  if (shots.empty()) throw std::invalid_argument("low_shot: shots must name at least one N");
  return shots;
}

class LowShot final : public jepa::sdk::Evaluator {
 public:
  explicit LowShot(const Params& p)
      : shots_(read_shots(p)),
        draws_(p.get_int("draws")),
        steps_(p.get_int("steps")),
        lr_(p.get_float("lr")),
        weight_decay_(p.get_float("weight_decay")),
        batch_size_(p.get_int("batch_size")),
        last_layers_(p.get_int("last_layers")),
        extract_batch_(p.get_int("extract_batch")),
        limit_train_(p.get_int("limit_train")),
        limit_test_(p.get_int("limit_test")) {}

  std::vector<Metric> evaluate(const EvalInput& in) override {
    // Extracted once: every draw of every N picks rows of the same pool.
    const PooledFeatures pool = extract_pooled(in, Split::train, limit_train_, {last_layers_, extract_batch_, true});
    const PooledFeatures test = extract_pooled(in, Split::test, limit_test_, {last_layers_, extract_batch_, true});
    if (pool.x.size(0) == 0 || test.x.size(0) == 0) {
      throw std::runtime_error("low_shot needs labelled train and test images");
    }
    const int64_t classes = pool.y.max().item<int64_t>() + 1;
    // Rows of each class in the pool; classes with no image at all are not part of the problem.
    std::vector<torch::Tensor> by_class;
    for (int64_t c = 0; c < classes; ++c) {
      auto rows = pool.y.eq(c).nonzero().reshape({-1});
      if (rows.numel() > 0) by_class.push_back(rows);
    }

    std::vector<Metric> out;
    for (const int64_t shots : shots_) {
      std::vector<double> top1;
      for (int64_t draw = 0; draw < draws_; ++draw) {
        // A private generator per (N, draw), so evaluating never disturbs the trainer's random
        // state and a draw does not change when other N are added to or removed from `shots`.
        auto gen = at::detail::createCPUGenerator(
            mix(mix(mix(in.seed) ^ static_cast<uint64_t>(shots)) ^ static_cast<uint64_t>(draw)));
        const auto subset = draw_subset(by_class, shots, gen);
        top1.push_back(probe(pool.x.index_select(0, subset), pool.y.index_select(0, subset), test, classes, gen));
      }
      double mean = 0.0;
      for (double v : top1) mean += v;
      mean /= static_cast<double>(top1.size());
      double var = 0.0;
      for (double v : top1) var += (v - mean) * (v - mean);
      // Sample standard deviation across draws; a single draw has no spread to estimate.
      const double spread = top1.size() > 1 ? std::sqrt(var / static_cast<double>(top1.size() - 1)) : 0.0;
      const std::string prefix = std::to_string(shots) + "shot/";
      out.push_back({prefix + "top1_mean", mean});
      out.push_back({prefix + "top1_std", spread});
      out.push_back({prefix + "draws", static_cast<double>(top1.size())});
    }
    out.push_back({"train_pool_images", static_cast<double>(pool.x.size(0))});
    out.push_back({"test_images", static_cast<double>(test.x.size(0))});
    return out;
  }

 private:
  // `shots` rows of every class, uniformly without replacement.
  static torch::Tensor draw_subset(const std::vector<torch::Tensor>& by_class, int64_t shots, at::Generator& gen) {
    std::vector<torch::Tensor> picked;
    for (const auto& rows : by_class) {
      if (rows.numel() < shots) {
        throw std::runtime_error("low_shot: a class has only " + std::to_string(rows.numel()) +
                                 " images in the training pool, fewer than " + std::to_string(shots) +
                                 " shots (raise limit_train or lower shots)");
      }
      picked.push_back(rows.index_select(0, torch::randperm(rows.numel(), gen, torch::kLong).slice(0, 0, shots)));
    }
    return torch::cat(picked, 0);
  }

  // The linear probe's recipe on one subset, with a fixed number of steps: epochs over a
  // 10-image subset would be a handful of updates.
  double probe(const torch::Tensor& x, const torch::Tensor& y, const PooledFeatures& test, int64_t classes,
               at::Generator& gen) const {
    const jepa::evaluators::Standardizer standardize(x);
    const auto xtr = standardize(x);
    jepa::evaluators::LinearHead head(xtr.size(1), classes, lr_, weight_decay_, gen);
    const int64_t n = xtr.size(0);
    torch::Tensor order;
    int64_t next = n;  // forces a shuffle on the first step
    for (int64_t step = 0; step < steps_; ++step) {
      torch::Tensor idx;
      if (n <= batch_size_) {
        idx = torch::arange(n, torch::kLong);  // the whole subset is one batch
      } else {
        if (next + batch_size_ > n) {
          order = torch::randperm(n, gen, torch::kLong);
          next = 0;
        }
        idx = order.slice(0, next, next + batch_size_);
        next += batch_size_;
      }
      head.step(xtr, y, idx);
    }
    return head.accuracy(standardize(test.x), test.y);
  }

  std::vector<int64_t> shots_;
  int64_t draws_;
  int64_t steps_;
  double lr_;
  double weight_decay_;
  int64_t batch_size_;
  int64_t last_layers_;
  int64_t extract_batch_;
  int64_t limit_train_;
  int64_t limit_test_;
};

}  // namespace

JEPA_PLUGIN("evaluator-low-shot", "1.0.0") {
  plugin.add<LowShot>(
      "low_shot", 1,
      "Linear probe trained on N labelled images per class, mean/std of top-1 % over random class-balanced draws",
      {
          ParamSpec::list("shots", {1, 5, 10}, "labelled images per class, one evaluation per entry (whole numbers)")
              .range(1, 1 << 20),
          ParamSpec::integer("draws", 3, "random class-balanced subsets per N (mean and std over them)").range(1, 1000),
          ParamSpec::integer("steps", 500, "Adam steps per probe, the same for every subset size").range(1, 1000000),
          ParamSpec::real("lr", 1e-3, "Adam learning rate").range(0.0, 10.0),
          ParamSpec::real("weight_decay", 1e-4, "Adam weight decay (L2)").range(0.0, 1.0),
          ParamSpec::integer("batch_size", 256, "probe batch size (a smaller subset is one full batch)")
              .range(1, 1 << 20),
          ParamSpec::integer("last_layers", 1, "pool and concatenate the last N blocks").range(1, 64),
          ParamSpec::integer("extract_batch", 256, "images per feature-extraction batch").range(1, 1 << 16),
          ParamSpec::integer("limit_train", 0, "draw the subsets from the first N training images only (0 = all)")
              .at_least(0),
          ParamSpec::integer("limit_test", 0, "score on the first N test images only (0 = all)").at_least(0),
      });
}
