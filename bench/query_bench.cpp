// Results-store queries at scale: a database of 1,000 runs (10 sweeps of 100) with 10,000 metric
// points each (10 million rows), then the work behind `jepa runs` and `jepa compare`, in
// process (Google Benchmark) and end to end through the `jepa` executable.
//
//   ./build/bench/query_bench [--db PATH] [--runs 1000] [--points 10000] [--regenerate]
//                             [--jepa ./build/jepa] [benchmark flags]
//
// The database is generated once (about a minute) and reused.
#include "query/compare.hpp"
#include "query/runs.hpp"
#include "store/store.hpp"

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::string g_db = "build/bench/query_bench.db";
std::string g_jepa = "build/jepa";
int g_runs = 1000;
int g_points = 10000;
bool g_regenerate = false;
constexpr int kSweepSize = 100;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// A resolved config's worth of parameters (~60 keys, like a real run's), with the swept ones
// varying: 5 learning rates x 2 predictor depths x 10 seeds per sweep.
std::map<std::string, std::string> params_of(int run_in_sweep, int sweep) {
  static const double kLr[] = {2.5e-4, 5e-4, 1e-3, 2e-3, 4e-3};
  std::map<std::string, std::string> p;
  const int seed = run_in_sweep % 10;
  const int combo = run_in_sweep / 10;
  p["run.seed"] = std::to_string(seed);
  p["run.name"] = fmt::format("sweep{}-trial{:03}", sweep, run_in_sweep);
  p["run.threads"] = "2";
  p["optimization.lr"] = fmt::format("{}", kLr[combo % 5]);
  p["predictor.params.depth"] = std::to_string(combo < 5 ? 2 : 6);
  p["masking.strategy"] = "multiblock";
  p["masking.params.npred"] = "4";
  p["encoder.plugin"] = "vit";
  p["encoder.params.embed_dim"] = "96";
  p["data.dataset"] = "fashion_mnist";
  p["data.image_size"] = "32";
  for (int i = 0; i < 50; ++i) p[fmt::format("extra.section{}.key{}", i / 10, i)] = std::to_string(i);
  return p;
}

void generate() {
  if (fs::exists(g_db) && !g_regenerate) return;
  for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(g_db + suffix);
  const auto t0 = std::chrono::steady_clock::now();
  jepa::store::Store store(g_db);
  std::mt19937 rng(0);
  std::normal_distribution<double> noise(0.0, 1.0);
  int64_t sweep = 0;
  for (int i = 0; i < g_runs; ++i) {
    if (i % kSweepSize == 0) sweep = store.create_sweep(fmt::format("sweep{}", i / kSweepSize), "{}");
    const auto params = params_of(i % kSweepSize, i / kSweepSize);
    const int64_t run = store.create_run(params.at("run.name"), "{}", "bench.toml", std::stoull(params.at("run.seed")));
    store.set_run_sweep(run, sweep);
    store.set_params(run, params);
    // Four training curves share the points; each log_metrics call is one transaction.
    const int steps = g_points / 4;
    const double lr = std::stod(params.at("optimization.lr"));
    std::vector<jepa::store::MetricPoint> batch;
    batch.reserve(4096);
    for (int s = 0; s < steps; ++s) {
      const double t = 1.8e9 + i * 1000.0 + s;
      batch.push_back({"train/loss", s, 0.5 * std::exp(-s / 800.0) + 0.05 + 0.01 * noise(rng), t});
      batch.push_back({"train/lr", s, lr * std::min(1.0, s / 250.0), t});
      batch.push_back({"train/momentum", s, 0.996 + 0.004 * s / steps, t});
      batch.push_back({"train/images_per_s", s, 200 + 5 * noise(rng), t});
      if (batch.size() >= 4000) {
        store.log_metrics(run, batch);
        batch.clear();
      }
    }
    store.log_metrics(run, batch);
    const double top1 = 70 + 2000 * lr + 0.8 * noise(rng);
    store.add_evaluation(run, {"linear_probe", "top1", top1, steps, "{}"});
    store.log_metrics(run, {{"linear_probe/top1", steps, top1, 1.9e9}});
    store.finish_run(run, jepa::store::RunStatus::completed);
    if ((i + 1) % 100 == 0)
      fmt::print(stderr, "generated {} of {} runs ({:.0f} s)\n", i + 1, g_runs, seconds_since(t0));
  }
  fmt::print(stderr, "generated {} ({} runs x {} points) in {:.1f} s\n", g_db, g_runs, g_points, seconds_since(t0));
}

void BM_list_runs_all(benchmark::State& state) {
  jepa::store::Store store(g_db);
  for (auto _ : state) {
    jepa::query::RunSelection sel;
    auto rows = jepa::query::select_runs(store, sel);
    benchmark::DoNotOptimize(rows);
  }
}
BENCHMARK(BM_list_runs_all)->Unit(benchmark::kMillisecond);

void BM_list_runs_sweep_sorted(benchmark::State& state) {
  jepa::store::Store store(g_db);
  for (auto _ : state) {
    jepa::query::RunSelection sel;
    sel.sweep = "sweep7";
    sel.sort = "-linear_probe/top1";
    sel.limit = 50;
    auto rows = jepa::query::select_runs(store, sel);
    benchmark::DoNotOptimize(rows);
  }
}
BENCHMARK(BM_list_runs_sweep_sorted)->Unit(benchmark::kMillisecond);

void BM_list_runs_where(benchmark::State& state) {
  jepa::store::Store store(g_db);
  for (auto _ : state) {
    jepa::query::RunSelection sel;
    sel.where = "linear_probe/top1 > 72 and optimization.lr >= 1e-3 and predictor.params.depth = 6";
    auto rows = jepa::query::select_runs(store, sel);
    benchmark::DoNotOptimize(rows);
  }
}
BENCHMARK(BM_list_runs_where)->Unit(benchmark::kMillisecond);

void BM_compare_sweep(benchmark::State& state) {
  jepa::store::Store store(g_db);
  for (auto _ : state) {
    jepa::query::RunSelection sel;
    sel.sweep = "sweep3";
    auto rows = jepa::query::select_runs(store, sel);
    auto c = jepa::query::compare_runs(rows, {});
    auto text = jepa::query::format_comparison(c);
    benchmark::DoNotOptimize(text);
  }
}
BENCHMARK(BM_compare_sweep)->Unit(benchmark::kMillisecond);

// The whole command, process start included: what a user waits for.
void time_command(const std::string& args) {
  const std::string cmd = fmt::format("{} {} --db {} > /dev/null", g_jepa, args, g_db);
  double best = 1e9;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    if (std::system(cmd.c_str()) != 0) {
      fmt::print(stderr, "command failed: {}\n", cmd);
      return;
    }
    best = std::min(best, seconds_since(t0));
  }
  fmt::print("end to end (best of 5): jepa {:<60} {:7.1f} ms\n", args, best * 1000);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--db") {
      g_db = value();
    } else if (a == "--runs") {
      g_runs = std::stoi(value());
    } else if (a == "--points") {
      g_points = std::stoi(value());
    } else if (a == "--regenerate") {
      g_regenerate = true;
    } else if (a == "--jepa") {
      g_jepa = value();
    } else {
      rest.push_back(argv[i]);
    }
  }
  generate();
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  if (fs::exists(g_jepa)) {
    time_command("runs");
    time_command("runs --limit 0");
    time_command("runs --sweep sweep7 --sort -linear_probe/top1");
    time_command("runs --where \"linear_probe/top1 > 72 and optimization.lr >= 1e-3\"");
    time_command("compare --sweep sweep3");
    time_command("compare --sweep sweep3 --group-by optimization.lr");
    time_command("export --sweep sweep3 --format csv");
  }
  return 0;
}
