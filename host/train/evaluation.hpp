// The data and evaluation plumbing shared by training, `jepa eval`-style evaluation of stored
// runs, and the probe baselines benchmark.
#pragma once

#include "config/experiment.hpp"
#include "data/dataset.hpp"
#include "store/store.hpp"
#include "train/precision.hpp"

#include <jepa/sdk/encoder.hpp>
#include <jepa/sdk/evaluator.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace jepa::train {

// Channels of the experiment's images without opening the data: 1 for Fashion-MNIST, 3 for
// image folders (which decode to RGB).
int dataset_channels(const config::Experiment& e);
std::shared_ptr<const data::ImageSource> open_split(const config::Experiment& e, data::Split split);
data::Transform make_transform(const config::Experiment& e, bool train);
// A [B, C, H, W] view of a batch's floats; it shares (and keeps alive) the batch's pooled block.
torch::Tensor images_tensor(data::Batch& batch);

// Evaluator input over the experiment's data (no random crops) and a frozen encoder. The encoder
// runs in the run's precision (bf16: under autocast) and its features come back as fp32, so every
// evaluator's own classifier trains in fp32.
sdk::EvalInput make_eval_input(const config::Experiment& e, std::shared_ptr<sdk::Encoder> encoder, torch::Device device,
                               Precision precision, int64_t step, const std::shared_ptr<const data::ImageSource>& train,
                               const std::shared_ptr<const data::ImageSource>& test);

// Runs one evaluator and returns "<evaluator>/<metric>" -> value.
std::vector<std::pair<std::string, double>> evaluate(const config::ComponentChoice& evaluator,
                                                     const sdk::EvalInput& input);

// Runs one evaluator and records its results (evaluations table and metrics) at `step`.
std::vector<std::pair<std::string, double>> evaluate_and_record(const config::ComponentChoice& evaluator,
                                                                const sdk::EvalInput& input, store::Recorder& store,
                                                                int64_t run_id, int64_t step);

// The baselines of `evaluation` at `step`: the same evaluator, parameters, data and precision on
// raw pixels (each image one flat token) and on `initial` (the encoder at its initialisation).
// Recorded like evaluate_and_record's results, as "<id>/<metric>@raw_pixels" and
// "<id>/<metric>@random_init"; returned in that order.
std::vector<std::pair<std::string, double>> evaluate_baselines(const config::Experiment& e,
                                                               const config::ComponentChoice& evaluation,
                                                               std::shared_ptr<sdk::Encoder> initial,
                                                               torch::Device device, Precision precision, int64_t step,
                                                               const sdk::EvalInput& trained, store::Recorder& store,
                                                               int64_t run_id);

// Evaluation during training must leave training exactly as it was, or a run with periodic
// evaluation would not resume to the same losses: this puts the encoder in eval mode and keeps
// the global random generators (CPU, and the device's) from changing, restoring both on exit.
class TrainingPause {
 public:
  TrainingPause(torch::nn::Module& encoder, torch::Device device);
  ~TrainingPause();
  TrainingPause(const TrainingPause&) = delete;
  TrainingPause& operator=(const TrainingPause&) = delete;

 private:
  torch::nn::Module& encoder_;
  bool was_training_;
  std::vector<std::pair<at::Generator, torch::Tensor>> generators_;  // with their saved states
};

// The reason to stop the run when `evaluation`'s stop rule holds for `results` ("<id>/<metric>"
// -> value, as evaluate() returns), std::nullopt otherwise. A rule naming a metric the evaluator
// did not report throws std::runtime_error listing the metrics it did.
std::optional<std::string> check_stop_rule(const config::EvaluationChoice& evaluation,
                                           const std::vector<std::pair<std::string, double>>& results, int64_t step);

}  // namespace jepa::train
