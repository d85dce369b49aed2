// The built-in objectives against independent computations: SIGReg's Epps-Pulley statistic in
// double precision, its Gaussian floor and its collapse value, VICReg's terms, both over two ranks
// (Gloo on loopback, two threads) against one process holding both batches; and every discovered
// objective trains the encoder through a real TrainStep.
#include "config/experiment.hpp"
#include "distributed/group.hpp"
#include "loader/cxx_component.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "train/collective.hpp"
#include "train/models.hpp"
#include "train/schedules.hpp"
#include "train/step.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "loopback_group.hpp"
#include "temp_dir.hpp"

#include <cmath>
#include <complex>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace {

namespace fs = std::filesystem;
using jepa::loader::Kind;

// The build's plugins, plus $JEPA_CONFORMANCE_PLUGIN_PATH (colon-separated) for the conformance test.
const jepa::loader::Registry& registry() {
  static const auto reg = [] {
    std::vector<fs::path> dirs{JEPA_PLUGIN_DIR};
    if (const char* env = std::getenv("JEPA_CONFORMANCE_PLUGIN_PATH")) {
      std::stringstream ss(env);
      for (std::string item; std::getline(ss, item, ':');) {
        if (!item.empty()) dirs.emplace_back(item);
      }
    }
    return jepa::loader::Registry::discover(dirs);
  }();
  return reg;
}

// An objective from the built plugin, bound to an encoder of width `dim`.
std::shared_ptr<jepa::sdk::Objective> objective(const std::string& id, int64_t dim,
                                                const std::map<std::string, jepa::loader::ParamValue>& given = {}) {
  const auto* c = registry().find(Kind::objective, id);
  EXPECT_NE(c, nullptr) << id;
  auto params = jepa::loader::ParamSet::defaults(*c);
  for (auto& [name, value] : params.values) {
    if (const auto it = given.find(name); it != given.end()) value = it->second;
  }
  auto o = jepa::loader::create_component<jepa::sdk::Objective>(*c, params);
  o->bind({dim, 1, 1, 1});
  return o;
}

// Inputs whose only content is the per-image embedding z [B, D], given as the whole-image target
// tokens (one token per image) and as the context tokens: what SIGReg and VICReg look at.
jepa::sdk::ObjectiveInputs inputs_of(const torch::Tensor& z) {
  const auto B = z.size(0);
  jepa::sdk::ObjectiveInputs in;
  in.batch_size = B;
  in.target_tokens = z.unsqueeze(1);
  in.context_tokens = z.unsqueeze(1);
  in.predictions = torch::zeros({B, 1, z.size(1)});
  in.context_masks = {torch::zeros({B, 1}, torch::kLong)};
  in.target_masks = {torch::zeros({B, 1}, torch::kLong)};
  return in;
}

double part(const jepa::sdk::ObjectiveOutput& out, const std::string& name) {
  for (const auto& [n, v] : out.parts) {
    if (n == name) return v.item<double>();
  }
  ADD_FAILURE() << "no part " << name;
  return NAN;
}

// N * integral over [-t_max, t_max] of |ecf(t) - exp(-t^2/2)|^2 exp(-t^2/2) dt by the trapezoid rule
// on `points` evenly spaced knots, in double precision, with std::complex.
double epps_pulley(const std::vector<double>& x, double t_max, int points) {
  const double dt = 2 * t_max / (points - 1);
  double sum = 0;
  for (int i = 0; i < points; ++i) {
    const double t = -t_max + dt * i;
    std::complex<double> ecf = 0;
    for (double v : x) ecf += std::exp(std::complex<double>(0, t * v));
    ecf /= static_cast<double>(x.size());
    const double phi = std::exp(-t * t / 2);
    const double f = std::norm(ecf - phi) * phi;
    sum += (i == 0 || i == points - 1 ? 0.5 : 1.0) * f * dt;
  }
  return sum * static_cast<double>(x.size());
}

TEST(Sigreg, StatisticMatchesADoublePrecisionComputationInBothConventions) {
  // In one dimension every unit direction is +1 or -1, and the statistic is the same for both (the
  // characteristic function of -X is the conjugate of X's): the whole mean is one known number.
  torch::manual_seed(1);
  const auto z = torch::randn({64, 1}) * 1.7 + 0.3;
  std::vector<double> x(z.data_ptr<float>(), z.data_ptr<float>() + 64);
  jepa::train::RankCollective single(nullptr);
  jepa::sdk::StepInfo step;
  step.seed = 5;
  step.step = 11;
  using jepa::loader::ParamValue;
  const std::map<std::string, ParamValue> common{{"lambda", ParamValue{1.0}},
                                                 {"projector", ParamValue{std::vector<double>{}}},
                                                 {"slices", ParamValue{int64_t{8}}}};
  // Folded (the library): 17 knots on [0, 3] are the trapezoid rule with 33 knots on [-3, 3].
  auto folded = objective("sigreg", 1, common);
  const auto a = folded->forward(inputs_of(z), step, single);
  const double expected_folded = epps_pulley(x, 3.0, 33);
  EXPECT_NEAR(part(a, "sigreg"), expected_folded, 1e-4 * expected_folded);
  EXPECT_NEAR(a.loss.item<double>(), expected_folded, 1e-4 * expected_folded) << "lambda = 1: the loss is SIGReg";
  // Symmetric (the paper's Algorithm 1): 17 knots on [-5, 5].
  auto given = common;
  given["integration"] = ParamValue{std::string("symmetric")};
  given["t_max"] = ParamValue{5.0};
  auto symmetric = objective("sigreg", 1, given);
  const double expected_symmetric = epps_pulley(x, 5.0, 17);
  EXPECT_NEAR(part(symmetric->forward(inputs_of(z), step, single), "sigreg"), expected_symmetric,
              1e-4 * expected_symmetric);
  // Without the factor N (eb_jepa's convention).
  given["scale_by_batch"] = ParamValue{false};
  auto unscaled = objective("sigreg", 1, given);
  EXPECT_NEAR(part(unscaled->forward(inputs_of(z), step, single), "sigreg"), expected_symmetric / 64,
              1e-4 * expected_symmetric / 64);
}

TEST(Sigreg, GaussianSampleSitsAtTheFloorAndACollapsedOneFarAbove) {
  torch::manual_seed(2);
  jepa::train::RankCollective single(nullptr);
  jepa::sdk::StepInfo step;
  using jepa::loader::ParamValue;
  auto o = objective("sigreg", 16, {{"projector", ParamValue{std::vector<double>{}}}, {"lambda", ParamValue{1.0}}});
  // The expected statistic of an N(0, I) sample is the bias term, whatever N: the integral of
  // w (1 - |phi|^2) = 1.0525 with the library's quadrature (sqrt(2 pi) - sqrt(2 pi / 3) = 1.0594 exactly).
  double mean = 0;
  for (int s = 0; s < 8; ++s) {
    step.step = s;
    mean += part(o->forward(inputs_of(torch::randn({1024, 16})), step, single), "sigreg") / 8;
  }
  EXPECT_NEAR(mean, 1.0525, 0.1);
  // Every embedding the same: about 0.40 N per slice.
  const double collapsed = part(o->forward(inputs_of(torch::zeros({1024, 16})), step, single), "sigreg");
  EXPECT_NEAR(collapsed, 0.40 * 1024, 0.05 * 1024);
  // Directions are drawn afresh at every step, from the run's seed: equal for equal (seed, step).
  const auto z = torch::randn({256, 16}) * 0.5;
  step.step = 3;
  const double at3 = part(o->forward(inputs_of(z), step, single), "sigreg");
  EXPECT_EQ(part(o->forward(inputs_of(z), step, single), "sigreg"), at3);
  step.step = 4;
  EXPECT_NE(part(o->forward(inputs_of(z), step, single), "sigreg"), at3);
}

TEST(Vicreg, TermsMatchADirectComputation) {
  torch::manual_seed(3);
  const auto z = torch::randn({32, 6}) * torch::tensor({0.2, 0.5, 1.0, 2.0, 0.1, 3.0});
  jepa::train::RankCollective single(nullptr);
  auto o = objective("vicreg", 6);
  const auto out = o->forward(inputs_of(z), {}, single);
  const auto zd = z.to(torch::kFloat64);
  const auto c = zd - zd.mean(0);
  const auto cov = torch::matmul(c.t(), c) / 31.0;
  const double var = torch::relu(1 - torch::sqrt(cov.diagonal() + 1e-4)).mean().item<double>();
  const double off = (cov.square().sum() - cov.diagonal().square().sum()).item<double>() / 6;
  EXPECT_NEAR(part(out, "var"), var, 1e-5);
  EXPECT_NEAR(part(out, "cov"), off, 1e-4 * off);
  EXPECT_NEAR(out.loss.item<double>(), 25 * part(out, "pred") + 25 * var + off, 1e-3);
}

// The statistic (and its gradient) of one process over 2B samples, and of two ranks over B each.
struct Computed {
  double value = 0;
  torch::Tensor grad;  // d loss / d z for the samples computed on
};

Computed compute(const std::string& id, const std::string& part_name, const torch::Tensor& z,
                 jepa::sdk::Collective& collective) {
  using jepa::loader::ParamValue;
  auto o = objective(id, z.size(1), {{"projector", ParamValue{std::vector<double>{}}}});
  auto leaf = z.clone().requires_grad_(true);
  jepa::sdk::StepInfo step;
  step.seed = 9;
  step.step = 2;
  step.world_size = collective.world_size();
  const auto out = o->forward(inputs_of(leaf), step, collective);
  out.loss.backward();
  return {part(out, part_name), leaf.grad().clone()};
}

TEST(ObjectiveRanks, TwoRanksOfBGiveTheStatisticsOfOneProcessOf2B) {
  torch::manual_seed(4);
  const auto all = torch::randn({64, 8}) * 0.7;
  for (const auto& [id, name] : {std::pair<std::string, std::string>{"sigreg", "sigreg"}, {"vicreg", "cov"}}) {
    jepa::train::RankCollective single(nullptr);
    const Computed one = compute(id, name, all, single);
    const int port = jepa_test::free_loopback_port();
    Computed ranks[2];
    std::string failures[2];
    std::vector<std::thread> threads;
    for (int rank = 0; rank < 2; ++rank) {
      threads.emplace_back([&, rank] {
        try {
          const auto group = jepa_test::loopback_group(rank, 2, port);
          jepa::train::RankCollective collective(group.get());
          // Rank r holds rows r, r + 2, ...: the split the loader deals out.
          ranks[rank] = compute(id, name, all.slice(0, rank, 64, 2), collective);
        } catch (const std::exception& e) {
          failures[rank] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    ASSERT_EQ(failures[0], "");
    ASSERT_EQ(failures[1], "");
    for (int rank = 0; rank < 2; ++rank) {
      EXPECT_NEAR(ranks[rank].value, one.value, 1e-4 * std::abs(one.value)) << id << " rank " << rank;
      // Each rank's gradient is world_size x the single process's for its rows: the reducer's
      // averaging over ranks then gives the single-process gradient of every parameter. (The
      // prediction term is per rank: zero here, as predictions equal their layer-normed targets.)
      const auto expected = one.grad.slice(0, rank, 64, 2) * 2;
      EXPECT_TRUE(torch::allclose(ranks[rank].grad, expected, 1e-4, 1e-6))
          << id << " rank " << rank << ": max difference " << (ranks[rank].grad - expected).abs().max().item<double>();
    }
  }
}

// The collective's backward averages the incoming gradients over ranks: with a loss that differs
// between ranks (here rank r weighs the global mean by r + 1), each rank's sample gets the mean of
// the ranks' weights, so that the reducer's average of parameter gradients is the gradient of the
// ranks' mean loss. Passing each rank's own gradient through would give r + 1 instead.
TEST(ObjectiveRanks, CollectiveBackwardAveragesTheRanksGradients) {
  const int port = jepa_test::free_loopback_port();
  torch::Tensor grads[2];
  std::string failures[2];
  std::vector<std::thread> threads;
  for (int rank = 0; rank < 2; ++rank) {
    threads.emplace_back([&, rank] {
      try {
        const auto group = jepa_test::loopback_group(rank, 2, port);
        jepa::train::RankCollective collective(group.get());
        auto x = torch::full({4}, static_cast<double>(rank)).requires_grad_(true);
        const auto global = collective.mean(x.mean());
        EXPECT_DOUBLE_EQ(global.item<double>(), 0.5) << "forward: the mean over ranks";
        (global * (rank + 1)).backward();
        grads[rank] = x.grad().clone();
      } catch (const std::exception& e) {
        failures[rank] = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_EQ(failures[0], "");
  ASSERT_EQ(failures[1], "");
  for (int rank = 0; rank < 2; ++rank) {
    EXPECT_TRUE(torch::allclose(grads[rank], torch::full({4}, 1.5 / 4))) << "rank " << rank << ": " << grads[rank];
  }
}

// Every objective the plugin folder offers: one real step of the host's TrainStep on a tiny ViT
// gives a finite loss, finite named parts, and gradients in every trainable encoder parameter (and
// in the objective's own), with an EMA target built only when declared.
TEST(ObjectiveConformance, EveryDiscoveredObjectiveTrainsTheEncoder) {
  const auto objectives = registry().components(Kind::objective);
  ASSERT_GE(objectives.size(), 3u);
  jepa_test::TempDir dir("jepa_objective_conformance");
  for (const auto* c : objectives) {
    SCOPED_TRACE(c->id);
    const auto file = dir.path() / "tiny.toml";
    std::ofstream(file) << "[masking]\nstrategy = \"multiblock\"\n"
                           "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 32\n"
                           "depth = 2\nnum_heads = 2\nimg_size = 28\npatch_size = 4\nin_chans = 1\n"
                           "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 16\ndepth = 1\n"
                           "[objective]\nplugin = \""
                        << c->id << "\"\n";
    const auto e = jepa::config::load_experiment(file, {}, registry());
    torch::manual_seed(0);
    auto m = jepa::train::build_models(e, torch::kCPU);
    EXPECT_EQ(m.target.get() == m.encoder.get(), !m.has_ema_target()) << "a target encoder only when declared";
    auto opt = jepa::train::make_optimizer(m, e.lr, e.weight_decay);
    jepa::loader::MaskingStrategy masking(*e.masking.component, e.masking.params);
    const jepa::train::Schedules sched(jepa::train::ScheduleConfig{});
    jepa::train::TrainStep step(m, *opt, masking, sched, 0, torch::kCPU);
    auto r = step.run(torch::randn({16, 1, 28, 28}), 0);
    step.read(r);
    EXPECT_TRUE(std::isfinite(r.loss));
    EXPECT_FALSE(r.parts.empty()) << "parts are what users compare objectives by";
    for (const auto& [name, value] : r.parts) EXPECT_TRUE(std::isfinite(value)) << name;
    for (const auto& p : m.encoder->named_parameters()) {
      if (!p.value().requires_grad()) continue;
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0) << p.key() << " got no gradient";
    }
    for (const auto& p : m.objective->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
    }
  }
}

}  // namespace
