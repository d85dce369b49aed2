// Runs over every masking plugin discovered in the build's plugin folder (plus
// $JEPA_CONFORMANCE_PLUGIN_PATH, colon-separated), so a new strategy is tested without writing
// a new test.
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <future>
#include <set>
#include <sstream>

using jepa::loader::Kind;

namespace {

const jepa::loader::Registry& registry() {
  static const auto reg = [] {
    std::vector<std::filesystem::path> dirs{JEPA_PLUGIN_DIR};
    if (const char* env = std::getenv("JEPA_CONFORMANCE_PLUGIN_PATH")) {
      std::stringstream ss(env);
      std::string item;
      while (std::getline(ss, item, ':')) dirs.emplace_back(item);
    }
    return jepa::loader::Registry::discover(dirs);
  }();
  return reg;
}

std::vector<std::string> masking_ids() {
  std::vector<std::string> ids;
  for (const auto* c : registry().components(Kind::masking)) ids.push_back(c->id);
  return ids;
}

class MaskingConformance : public ::testing::TestWithParam<std::string> {
 protected:
  const jepa::loader::ComponentInfo& component() const { return *registry().find(Kind::masking, GetParam()); }

  // Strategies with an `allow_overlap` switch are tested with it off: then context and targets
  // must be disjoint. Strategies without one must always be disjoint.
  std::vector<std::pair<std::string, std::string>> disjoint_overrides() const {
    if (component().find_param("allow_overlap") != nullptr) return {{"allow_overlap", "false"}};
    return {};
  }

  jepa::loader::MaskingStrategy make() const {
    return jepa::loader::MaskingStrategy(component(), jepa::config::resolve_params(component(), disjoint_overrides()));
  }
};

TEST_P(MaskingConformance, Deterministic) {
  auto a = make();
  auto b = make();
  for (int step : {0, 1, 5, 1000}) {
    const auto x = a.sample({14, 14, 8, 3, step});
    (void)a.sample({14, 14, 8, 4, step + 1});  // state between calls must not leak
    const auto y = b.sample({14, 14, 8, 3, step});
    EXPECT_EQ(x.context, y.context) << "step " << step;
    EXPECT_EQ(x.target, y.target) << "step " << step;
  }
  // And it actually depends on its inputs.
  const auto s0 = a.sample({14, 14, 8, 3, 0});
  const auto s1 = a.sample({14, 14, 8, 9, 0});
  EXPECT_TRUE(s0.context != s1.context || s0.target != s1.target) << "seed has no effect";
}

TEST_P(MaskingConformance, ShapesAndIndexRange) {
  auto m = make();
  for (auto [h, w] : {std::pair{14, 14}, {16, 16}, {7, 7}, {8, 8}, {10, 12}}) {
    for (int batch : {1, 3, 16}) {
      const auto s = m.sample({h, w, batch, 0, 2});
      ASSERT_EQ(s.batch_size, batch);
      ASSERT_GE(s.context_blocks, 1);
      ASSERT_GE(s.target_blocks, 1);
      ASSERT_GT(s.context_length, 0) << h << "x" << w;
      ASSERT_GT(s.target_length, 0) << h << "x" << w;
      ASSERT_EQ(s.context.size(), static_cast<size_t>(s.context_blocks) * batch * s.context_length);
      ASSERT_EQ(s.target.size(), static_cast<size_t>(s.target_blocks) * batch * s.target_length);
      for (int64_t p : s.context) ASSERT_TRUE(p >= 0 && p < h * w);
      for (int64_t p : s.target) ASSERT_TRUE(p >= 0 && p < h * w);
      // No patch twice within one block.
      for (int b = 0; b < s.context_blocks; ++b) {
        for (int i = 0; i < batch; ++i) {
          std::set<int64_t> u(s.context_row(b, i), s.context_row(b, i) + s.context_length);
          ASSERT_EQ(u.size(), static_cast<size_t>(s.context_length));
        }
      }
    }
  }
}

TEST_P(MaskingConformance, ContextAndTargetsDisjointWhenConfigured) {
  auto m = make();
  for (int step = 0; step < 40; ++step) {
    const auto s = m.sample({14, 14, 8, 1, step});
    for (int i = 0; i < s.batch_size; ++i) {
      std::set<int64_t> ctx;
      for (int b = 0; b < s.context_blocks; ++b)
        ctx.insert(s.context_row(b, i), s.context_row(b, i) + s.context_length);
      for (int b = 0; b < s.target_blocks; ++b) {
        for (int k = 0; k < s.target_length; ++k) ASSERT_EQ(ctx.count(s.target_row(b, i)[k]), 0u) << "step " << step;
      }
    }
  }
}

TEST_P(MaskingConformance, TerminatesQuicklyOn7x7) {
  auto m = make();
  auto run = std::async(std::launch::async, [&m] {
    for (int step = 0; step < 500; ++step) (void)m.sample({7, 7, 16, 0, step});
  });
  if (run.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    ADD_FAILURE() << GetParam() << " did not finish 500 batches on a 7x7 grid in 10 s";
    std::_Exit(1);  // the sampler thread cannot be cancelled
  }
  run.get();
}

TEST_P(MaskingConformance, RejectsInvalidRequestsWithAnError) {
  auto m = make();
  EXPECT_THROW(m.sample({1, 1, 4, 0, 0}), jepa::loader::PluginError);
  EXPECT_THROW(m.sample({14, 14, 0, 0, 0}), jepa::loader::PluginError);
}

INSTANTIATE_TEST_SUITE_P(EveryMaskingPlugin, MaskingConformance, ::testing::ValuesIn(masking_ids()),
                         [](const auto& info) { return info.param; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(MaskingConformance);

TEST(MaskingConformanceSetup, FindsTheBuiltinStrategies) {
  const auto ids = masking_ids();
  for (const char* id : {"multiblock", "random", "block"}) {
    EXPECT_NE(std::find(ids.begin(), ids.end(), id), ids.end()) << id;
  }
}

}  // namespace
