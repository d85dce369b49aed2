// Evaluator `linear_probe`: a linear classifier on frozen, average-pooled patch tokens of the
// target encoder (standardised with the training split's statistics), trained on the train
// split and scored on the test split. Recipe: Adam, lr 1e-3, weight decay 1e-4, batch 256,
// 30 epochs (the calibration recipe of shared/IJEPA_REFERENCE.md). `last_layers = 4`
// concatenates the pooled outputs of the last 4 blocks, as the paper does for transfer;
// `pool_grid = G` pools G x G regions of the token grid instead of the whole image.
// `lr_schedule = "cosine"` decays the lr to 0 over the probe's steps: at a constant 1e-3 the last
// epoch's weights still bounce, and the score with them (measured: 1-2 points between probes of
// one encoder that differ only in lr), which hides small differences between encoders.
#include "linear_head.hpp"
#include "pooled_features.hpp"

#include <jepa/sdk/evaluator.hpp>
#include <jepa/sdk/plugin.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace {

using jepa::sdk::EvalInput;
using jepa::sdk::Metric;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;
using jepa::sdk::Split;
using Features = jepa::evaluators::PooledFeatures;

class LinearProbe final : public jepa::sdk::Evaluator {
 public:
  explicit LinearProbe(const Params& p)
      : epochs_(p.get_int("epochs")),
        lr_(p.get_float("lr")),
        weight_decay_(p.get_float("weight_decay")),
        batch_size_(p.get_int("batch_size")),
        last_layers_(p.get_int("last_layers")),
        extract_batch_(p.get_int("extract_batch")),
        pool_grid_(p.get_int("pool_grid")),
        cosine_(p.get_string("lr_schedule") == "cosine"),
        limit_train_(p.get_int("limit_train")),
        limit_test_(p.get_int("limit_test")) {}

  std::vector<Metric> evaluate(const EvalInput& in) override {
    const Features train = extract(in, Split::train, limit_train_);
    const Features test = extract(in, Split::test, limit_test_);
    if (train.x.size(0) == 0 || test.x.size(0) == 0) {
      throw std::runtime_error("linear_probe needs labelled train and test images");
    }
    // Standardise with the training split's statistics.
    const jepa::evaluators::Standardizer standardize(train.x);
    const auto xtr = standardize(train.x);
    const auto xte = standardize(test.x);
    const int64_t classes = train.y.max().item<int64_t>() + 1;
    const int64_t dim = xtr.size(1);

    // A private generator, so evaluating never disturbs the trainer's random state.
    auto gen = at::detail::createCPUGenerator(in.seed);
    jepa::evaluators::LinearHead head(dim, classes, lr_, weight_decay_, gen);
    const int64_t n = xtr.size(0);
    const int64_t steps = epochs_ * ((n + batch_size_ - 1) / batch_size_);
    int64_t step = 0;
    for (int64_t epoch = 0; epoch < epochs_; ++epoch) {
      const auto order = torch::randperm(n, gen, torch::kLong);
      for (int64_t b = 0; b < n; b += batch_size_, ++step) {
        if (cosine_) head.set_lr(lr_ * 0.5 * (1.0 + std::cos(M_PI * static_cast<double>(step) / steps)));
        head.step(xtr, train.y, order.slice(0, b, std::min(n, b + batch_size_)));
      }
    }
    auto accuracy = [&](const torch::Tensor& x, const torch::Tensor& y) { return head.accuracy(x, y); };
    return {{"top1", accuracy(xte, test.y)},
            {"train_top1", accuracy(xtr, train.y)},
            {"feature_dim", static_cast<double>(dim)},
            {"train_images", static_cast<double>(n)},
            {"test_images", static_cast<double>(xte.size(0))}};
  }

 private:
  Features extract(const EvalInput& in, Split split, int64_t limit) const {
    return jepa::evaluators::extract_pooled(in, split, limit,
                                            {last_layers_, extract_batch_, /*labels=*/true, pool_grid_});
  }

  int64_t epochs_;
  double lr_;
  double weight_decay_;
  int64_t batch_size_;
  int64_t last_layers_;
  int64_t extract_batch_;
  int64_t pool_grid_;
  bool cosine_;
  int64_t limit_train_;
  int64_t limit_test_;
};

}  // namespace

JEPA_PLUGIN("evaluator-linear-probe", "1.0.0") {
  plugin.add<LinearProbe>(
      "linear_probe", 1, "Linear probe on frozen, average-pooled target-encoder tokens (top-1 %)",
      {
          ParamSpec::integer("epochs", 30, "training epochs of the linear head").range(1, 10000),
          ParamSpec::real("lr", 1e-3, "Adam learning rate").range(0.0, 10.0),
          ParamSpec::string("lr_schedule", "constant",
                            "constant (the calibration recipe) or cosine (decays to 0 over the probe's steps)",
                            {"constant", "cosine"}),
          ParamSpec::real("weight_decay", 1e-4, "Adam weight decay (L2)").range(0.0, 1.0),
          ParamSpec::integer("batch_size", 256, "probe batch size").range(1, 1 << 20),
          ParamSpec::integer("last_layers", 1, "pool and concatenate the last N blocks (paper: 4 for transfer)")
              .range(1, 64),
          ParamSpec::integer("pool_grid", 1,
                             "1: mean over all patch tokens (paper); G: mean over each of G x G regions of the "
                             "token grid, concatenated (keeps the layout)")
              .range(1, 64),
          ParamSpec::integer("extract_batch", 256, "images per feature-extraction batch").range(1, 1 << 16),
          ParamSpec::integer("limit_train", 0, "use only the first N training images (0 = all)").at_least(0),
          ParamSpec::integer("limit_test", 0, "use only the first N test images (0 = all)").at_least(0),
      });
}
