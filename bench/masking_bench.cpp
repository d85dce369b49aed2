// Multi-block mask sampling through the real plugin boundary (load, C table, copy-out), as the
// trainer will call it. Compare with the official Python collator: 3.8 ms per batch of 16 at
// grid 14 on the 2-core reference machine (see bench/RESULTS.md).
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"

#include <benchmark/benchmark.h>

namespace {

const jepa::loader::Registry& registry() {
  static const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
  return reg;
}

void sample(benchmark::State& state, const char* id) {
  const auto* c = registry().find(jepa::loader::Kind::masking, id);
  if (c == nullptr) {
    state.SkipWithError("plugin not found");
    return;
  }
  jepa::loader::MaskingStrategy strategy(*c, jepa::loader::ParamSet::defaults(*c));
  const int batch = static_cast<int>(state.range(0));
  const int grid = static_cast<int>(state.range(1));
  int64_t step = 0;
  for (auto _ : state) {
    auto s = strategy.sample({grid, grid, batch, 0, step++});
    benchmark::DoNotOptimize(s.context.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.counters["batch"] = batch;
  state.counters["grid"] = grid;
}

void BM_multiblock(benchmark::State& state) {
  sample(state, "multiblock");
}
void BM_random(benchmark::State& state) {
  sample(state, "random");
}
void BM_block(benchmark::State& state) {
  sample(state, "block");
}

}  // namespace

BENCHMARK(BM_multiblock)
    ->ArgNames({"batch", "grid"})
    ->ArgsProduct({{16, 128}, {14, 16}})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_random)->ArgNames({"batch", "grid"})->Args({16, 14})->Args({128, 14})->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_block)->ArgNames({"batch", "grid"})->Args({16, 14})->Args({128, 14})->Unit(benchmark::kMicrosecond);

BENCHMARK_MAIN();
