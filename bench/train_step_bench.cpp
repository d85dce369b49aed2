// One I-JEPA train step (TrainStep: the code the trainer runs) for the configuration in
// bench/vit_tiny_224.toml, on synthetic images, in fp32 and in bf16 (autocast, where native). Reports time per step,
// the step's matmul FLOPs counted from the model shapes and the masks (and what upstream's step does for the same
// masks), the achieved GFLOP/s, and peak resident memory.
#include "config/experiment.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "process/allocator.hpp"
#include "train/models.hpp"
#include "train/precision.hpp"
#include "train/schedules.hpp"
#include "train/step.hpp"

#include <benchmark/benchmark.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <fstream>
#include <string>

namespace {

double peak_rss_mib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

// Matmul FLOPs of one pre-norm block over n tokens of width d with MLP hidden h (forward).
double block_flops(double n, double d, double h) {
  return 2 * n * d * (3 * d + d) + 4 * n * n * d + 4 * n * d * h;
}

// The same block when only the last t of its n tokens' outputs are computed (every token is still
// a key and a value): what the predictor's last block does.
double tail_block_flops(double n, double t, double d, double h) {
  return 2 * t * d * d + 2 * n * d * 2 * d + 2 * t * d * d + 4 * t * n * d + 4 * t * d * h;
}

void BM_train_step(benchmark::State& state) {
  const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
  const auto e = jepa::config::load_experiment(JEPA_BENCH_DIR "/vit_tiny_224.toml", {}, reg);
  torch::set_num_threads(e.threads);
  torch::manual_seed(0);
  auto models = jepa::train::build_models(e, torch::kCPU);
  auto optimizer = jepa::train::make_optimizer(models, e.start_lr, e.weight_decay);
  jepa::loader::MaskingStrategy masking(*e.masking.component, e.masking.params);
  jepa::train::ScheduleConfig sc;
  sc.iterations_per_epoch = 1000;
  sc.epochs = 10;
  const jepa::train::Schedules sched(sc);
  const auto precision = state.range(0) == 1 ? jepa::train::Precision::bf16 : jepa::train::Precision::fp32;
  if (precision == jepa::train::Precision::bf16 && !jepa::train::detect_cpu_bf16().native()) {
    state.SkipWithError("this CPU has no native bf16");
    return;
  }
  jepa::train::TrainStep step(models, *optimizer, masking, sched, 0, torch::kCPU, precision);
  const auto images = torch::randn({e.batch_size, 3, e.image_size, e.image_size});

  const double d = static_cast<double>(models.encoder->embed_dim());
  const double depth = static_cast<double>(models.encoder->depth());
  const double n = 196;
  const double dp = 384;
  const double pred_depth = 6;
  const double B = static_cast<double>(e.batch_size);
  double flops = 0;
  double upstream_flops = 0;
  int64_t it = 0;
  for (auto _ : state) {
    const auto r = step.run(images, it++);
    const double nc = r.context_length;
    const double nt = r.target_length;
    const double patch = 2 * n * (3 * 16 * 16) * d;
    const double target_fwd = B * (patch + depth * block_flops(n, d, 4 * d));
    const double context_fwd = B * (patch + depth * block_flops(nc, d, 4 * d));
    const double pred_io = B * (2 * nc * d * dp) + 4 * B * 2 * nt * dp * d;
    const double pred_fwd =
        pred_io +
        4 * B * ((pred_depth - 1) * block_flops(nc + nt, dp, 4 * dp) + tail_block_flops(nc + nt, nt, dp, 4 * dp));
    // Upstream's predictor runs its last block over the context tokens too, then drops them.
    const double upstream_pred_fwd = pred_io + 4 * B * pred_depth * block_flops(nc + nt, dp, 4 * dp);
    flops += target_fwd + 3 * (context_fwd + pred_fwd);  // backward costs about twice the forward
    upstream_flops += target_fwd + 3 * (context_fwd + upstream_pred_fwd);
  }
  // JEPA_PROFILE_TRACE=FILE: one more step under LibTorch's profiler, as a Chrome trace
  // (bench/trace_summary.py sums it per operator).
  if (const char* trace = std::getenv("JEPA_PROFILE_TRACE"); trace != nullptr && *trace != '\0') {
    std::ofstream out(trace);
    torch::autograd::profiler::RecordProfile profile(out);
    step.run(images, it++);
  }
  state.counters["GFLOP_per_step"] = flops / state.iterations() / 1e9;
  state.counters["upstream_GFLOP_per_step"] = upstream_flops / state.iterations() / 1e9;
  state.counters["GFLOPs"] = benchmark::Counter(flops / 1e9, benchmark::Counter::kIsRate);
  state.counters["peak_rss_MiB"] = peak_rss_mib();
}

}  // namespace

// bf16:0 is fp32, bf16:1 runs the forward passes under bf16 autocast ([run] precision = "bf16").
BENCHMARK(BM_train_step)->ArgName("bf16")->Arg(0)->Arg(1)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(20.0);

int main(int argc, char** argv) {
  jepa::process::tune_allocator();  // as jepa-engine does
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
