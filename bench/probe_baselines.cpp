// The linear-probe baselines of an experiment, measured with jepa-lab itself: the same evaluator
// plugin with the same parameters, the same data split and preprocessing, on
//   (1) raw pixels (each image flattened into one token, so mean pooling is the identity), and
//   (2) the experiment's encoder at random initialisation (seeded as a run would be).
// Usage: probe_baselines EXPERIMENT.toml [--set key=value ...]
#include "config/experiment.hpp"
#include "loader/registry.hpp"
#include "process/allocator.hpp"
#include "train/evaluation.hpp"
#include "train/models.hpp"

#include <fmt/format.h>
#include <torch/torch.h>

#include <chrono>
#include <thread>

int main(int argc, char** argv) {
  jepa::process::tune_allocator();  // as jepa-engine does
  if (argc < 2) {
    fmt::print(stderr, "usage: probe_baselines EXPERIMENT.toml [--set key=value ...]\n");
    return 2;
  }
  std::vector<std::string> overrides;
  for (int i = 2; i + 1 < argc; i += 2) overrides.emplace_back(argv[i + 1]);
  try {
    const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
    const auto e = jepa::config::load_experiment(argv[1], overrides, reg);
    if (e.evaluators.empty()) throw std::runtime_error("the experiment has no [[evaluation]]");
    torch::set_num_threads(e.threads > 0 ? e.threads : static_cast<int>(std::thread::hardware_concurrency()));
    torch::manual_seed(e.seed);
    const auto train = jepa::train::open_split(e, jepa::data::Split::train);
    const auto test = jepa::train::open_split(e, jepa::data::Split::test);
    auto models = jepa::train::build_models(e, torch::kCPU);
    auto timed = [&](const char* name, const jepa::sdk::EvalInput& in) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& [key, value] : jepa::train::evaluate(e.evaluators[0], in)) {
        if (key.find("top1") != std::string::npos) fmt::print("{:<28} {:<26} {:.2f}\n", name, key, value);
      }
      fmt::print("{:<28} {:.1f} s\n", "", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    };
    // The precision a run of this experiment would evaluate in (only the encoder's forward uses it).
    const auto precision = jepa::train::choose_precision(e.precision, false, jepa::train::detect_cpu_bf16());
    fmt::print("precision: {} ({})\n", jepa::train::precision_name(precision.precision), precision.reason);
    auto pixels = jepa::train::make_eval_input(e, models.target, torch::kCPU, precision.precision, 0, train, test);
    pixels.encode = [](const torch::Tensor& images, int64_t) {
      return std::vector<torch::Tensor>{images.flatten(1).unsqueeze(1)};
    };
    timed("raw pixels", pixels);
    timed("random-init encoder",
          jepa::train::make_eval_input(e, models.target, torch::kCPU, precision.precision, 0, train, test));
    return 0;
  } catch (const std::exception& ex) {
    fmt::print(stderr, "error: {}\n", ex.what());
    return 1;
  }
}
