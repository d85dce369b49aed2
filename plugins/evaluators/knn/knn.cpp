// Evaluator `knn`: weighted k-nearest-neighbour classification on frozen, average-pooled and
// L2-normalised target-encoder features, the protocol of InstDisc (Wu et al. 2018) and DINO
// (Caron et al. 2021): cosine similarity to every training image, the k most similar vote for
// their label with weight exp(similarity / temperature). No training, so it is deterministic and
// cheap enough to track during a run; it rewards a representation whose neighbourhoods are
// semantic even where the classes are not linearly separable (and vice versa for the probe).
#include "pooled_features.hpp"

#include <jepa/sdk/evaluator.hpp>
#include <jepa/sdk/plugin.hpp>

#include <torch/torch.h>

#include <algorithm>

namespace {

using jepa::evaluators::extract_pooled;
using jepa::evaluators::PooledFeatures;
using jepa::sdk::EvalInput;
using jepa::sdk::Metric;
using jepa::sdk::Params;
using jepa::sdk::ParamSpec;
using jepa::sdk::Split;

class Knn final : public jepa::sdk::Evaluator {
 public:
  explicit Knn(const Params& p)
      : k_(p.get_int("k")),
        temperature_(p.get_float("temperature")),
        last_layers_(p.get_int("last_layers")),
        extract_batch_(p.get_int("extract_batch")),
        chunk_(p.get_int("chunk")),
        limit_train_(p.get_int("limit_train")),
        limit_test_(p.get_int("limit_test")) {
    // The schema allows 0 only so that a range can be written; a zero temperature divides by zero.
    if (!(temperature_ > 0.0)) throw std::invalid_argument("knn: temperature must be > 0");
  }

  std::vector<Metric> evaluate(const EvalInput& in) override {
    const PooledFeatures train = extract_pooled(in, Split::train, limit_train_, {last_layers_, extract_batch_, true});
    const PooledFeatures test = extract_pooled(in, Split::test, limit_test_, {last_layers_, extract_batch_, true});
    if (train.x.size(0) == 0 || test.x.size(0) == 0) {
      throw std::runtime_error("knn needs labelled train and test images");
    }
    torch::NoGradGuard no_grad;
    // The similarity matrix is the expensive part, so it runs where the encoder does; the bank of
    // normalised training features is moved there once.
    const auto bank =
        torch::nn::functional::normalize(train.x.to(in.device), torch::nn::functional::NormalizeFuncOptions().dim(1));
    const auto bank_labels = train.y.to(in.device);
    const int64_t classes = train.y.max().item<int64_t>() + 1;
    const int64_t k = std::min(k_, bank.size(0));
    const int64_t n_test = test.x.size(0);
    int64_t correct = 0;
    for (int64_t begin = 0; begin < n_test; begin += chunk_) {
      const int64_t end = std::min(n_test, begin + chunk_);
      const auto query = torch::nn::functional::normalize(test.x.slice(0, begin, end).to(in.device),
                                                          torch::nn::functional::NormalizeFuncOptions().dim(1));
      const auto [sim, index] = query.matmul(bank.t()).topk(k, /*dim=*/1);  // [chunk, k] each
      const auto neighbour_labels = bank_labels.index_select(0, index.reshape({-1})).view_as(index);
      // topk sorts, so column 0 is each row's largest similarity; shifting by it leaves the vote
      // ratios as they are but keeps exp() finite at small temperatures.
      const auto weights = ((sim - sim.slice(1, 0, 1)) / temperature_).exp();
      const auto votes = torch::zeros({end - begin, classes}, sim.options()).scatter_add_(1, neighbour_labels, weights);
      correct += votes.argmax(1).eq(test.y.slice(0, begin, end).to(in.device)).sum().item<int64_t>();
    }
    return {{"top1", 100.0 * static_cast<double>(correct) / static_cast<double>(n_test)},
            {"k", static_cast<double>(k)},
            {"train_images", static_cast<double>(bank.size(0))},
            {"test_images", static_cast<double>(n_test)}};
  }

 private:
  int64_t k_;
  double temperature_;
  int64_t last_layers_;
  int64_t extract_batch_;
  int64_t chunk_;
  int64_t limit_train_;
  int64_t limit_test_;
};

}  // namespace

JEPA_PLUGIN("evaluator-knn", "1.0.0") {
  plugin.add<Knn>(
      "knn", 1, "Weighted k-NN (cosine, exp(sim / T) votes) on frozen, average-pooled target-encoder tokens (top-1 %)",
      {
          ParamSpec::integer("k", 20, "neighbours that vote (DINO: 20; capped at the number of training images)")
              .range(1, 1 << 20),
          ParamSpec::real("temperature", 0.07, "vote weight exp(similarity / temperature); must be > 0 (DINO: 0.07)")
              .range(0.0, 100.0),
          ParamSpec::integer("last_layers", 1, "pool and concatenate the last N blocks").range(1, 64),
          ParamSpec::integer("extract_batch", 256, "images per feature-extraction batch").range(1, 1 << 16),
          ParamSpec::integer("chunk", 1024,
                             "test images compared at once; memory is chunk x training images similarities")
              .range(1, 1 << 20),
          ParamSpec::integer("limit_train", 0, "use only the first N training images as neighbours (0 = all)")
              .at_least(0),
          ParamSpec::integer("limit_test", 0, "classify only the first N test images (0 = all)").at_least(0),
      });
}
