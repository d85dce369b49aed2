// The multiblock plugin against the official sampler's numbers (see shared/IJEPA_REFERENCE.md).
#include "config/params.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"
#include "report/mask_stats.hpp"

#include <gtest/gtest.h>
#include <block_sampler.hpp>

#include <set>

using jepa::loader::Kind;

namespace {

const jepa::loader::Registry& registry() {
  static const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
  return reg;
}

jepa::loader::MaskingStrategy make(const std::vector<std::pair<std::string, std::string>>& overrides = {}) {
  const auto* c = registry().find(Kind::masking, "multiblock");
  if (c == nullptr) throw std::runtime_error("multiblock not loaded");
  return jepa::loader::MaskingStrategy(*c, jepa::config::resolve_params(*c, overrides));
}

struct Box {
  int top, left, height, width;
};

Box bounding_box(const int64_t* idx, int n, int W) {
  int r0 = 1 << 30, r1 = -1, c0 = 1 << 30, c1 = -1;
  for (int k = 0; k < n; ++k) {
    r0 = std::min<int>(r0, idx[k] / W);
    r1 = std::max<int>(r1, idx[k] / W);
    c0 = std::min<int>(c0, idx[k] % W);
    c1 = std::max<int>(c1, idx[k] % W);
  }
  return {r0, c0, r1 - r0 + 1, c1 - c0 + 1};
}

}  // namespace

TEST(MultiBlock, TargetShapesAt224Patch16) {
  auto mb = make();
  const std::set<std::string> allowed{"5x6", "6x5", "6x6", "7x5", "8x5"};
  std::set<std::string> seen;
  for (int step = 0; step < 300; ++step) {
    const auto s = mb.sample({14, 14, 8, 0, step});
    ASSERT_EQ(s.target_blocks, 4);
    // Every target block is a full rectangle of one of the official sizes.
    for (int b = 0; b < s.target_blocks; ++b) {
      for (int i = 0; i < s.batch_size; ++i) {
        const Box box = bounding_box(s.target_row(b, i), s.target_length, 14);
        EXPECT_EQ(box.height * box.width, s.target_length);
        const std::string shape = std::to_string(box.height) + "x" + std::to_string(box.width);
        EXPECT_TRUE(allowed.count(shape)) << shape << " at step " << step;
        seen.insert(shape);
      }
    }
  }
  EXPECT_EQ(seen, allowed) << "300 steps should draw every official size";
}

TEST(MultiBlock, ContextIsThe13x13BlockAtOriginMinusTargets) {
  auto mb = make();
  for (int step = 0; step < 50; ++step) {
    const auto s = mb.sample({14, 14, 16, 7, step});
    ASSERT_EQ(s.context_blocks, 1);
    int longest = -1;
    for (int i = 0; i < s.batch_size; ++i) {
      std::set<int64_t> targets;
      for (int b = 0; b < s.target_blocks; ++b)
        targets.insert(s.target_row(b, i), s.target_row(b, i) + s.target_length);
      const int64_t* ctx = s.context_row(0, i);
      for (int k = 0; k < s.context_length; ++k) {
        EXPECT_LT(ctx[k] / 14, 13);
        EXPECT_LT(ctx[k] % 14, 13);
        EXPECT_EQ(targets.count(ctx[k]), 0u);
        if (k > 0) EXPECT_LT(ctx[k - 1], ctx[k]);
      }
      // The context is truncated to the batch minimum: the image whose 13x13 block minus its
      // targets is shortest keeps all of it.
      int untruncated = 0;
      for (int p = 0; p < 196; ++p) untruncated += (p / 14 < 13 && p % 14 < 13 && !targets.count(p));
      if (longest < 0 || untruncated < longest) longest = untruncated;
    }
    EXPECT_EQ(s.context_length, longest) << "context length is the batch minimum";
  }
}

TEST(MultiBlock, Patch14ContextIs15x15AtOrigin) {
  auto mb = make({{"allow_overlap", "true"}});
  for (int step = 0; step < 20; ++step) {
    const auto s = mb.sample({16, 16, 4, 0, step});
    const Box box = bounding_box(s.context_row(0, 0), s.context_length, 16);
    EXPECT_EQ(s.context_length, 225);
    EXPECT_EQ(box.top, 0);
    EXPECT_EQ(box.left, 0);
    EXPECT_EQ(box.height, 15);
    EXPECT_EQ(box.width, 15);
  }
}

TEST(MultiBlock, OfficialBoundNeverTouchesLastRowOrColumnCorrectedDoes) {
  auto official = make();
  auto corrected = make({{"position_bound", "corrected"}});
  bool corrected_touches = false;
  for (int step = 0; step < 100; ++step) {
    const auto a = official.sample({14, 14, 8, 3, step});
    const auto b = corrected.sample({14, 14, 8, 3, step});
    for (int64_t p : a.target) EXPECT_TRUE(p / 14 < 13 && p % 14 < 13);
    for (int64_t p : b.target) corrected_touches = corrected_touches || p / 14 == 13 || p % 14 == 13;
  }
  EXPECT_TRUE(corrected_touches);
}

TEST(MultiBlock, SizesReplayTheOfficialGeneratorPerStep) {
  // Sizes depend on the step alone (seed 0): the same step gives the same block size whatever
  // else happened before, so sizes replay after a resume.
  auto mb = make();
  const auto later = mb.sample({14, 14, 2, 0, 42});
  auto fresh = make();
  const auto again = fresh.sample({14, 14, 2, 0, 42});
  EXPECT_EQ(later.target, again.target);
  EXPECT_EQ(later.context, again.context);
  // And the size is what the official formula gives for torch.Generator(seed=42)'s first draw.
  jepa::masking::SizeGenerator g(0, 42);
  const auto size = jepa::masking::block_size(g.uniform(), 14, 14, {0.15, 0.2}, {0.75, 1.5});
  EXPECT_EQ(later.target_length, size.height * size.width);
}

TEST(MultiBlock, TerminatesOnSmallGrids) {
  for (const char* bound : {"official", "corrected"}) {
    auto mb = make({{"position_bound", bound}});
    for (int grid : {7, 8}) {
      for (int step = 0; step < 200; ++step) {
        const auto s = mb.sample({grid, grid, 16, 1, step});
        EXPECT_GT(s.context_length, 0);
        EXPECT_GT(s.target_length, 0);
      }
    }
  }
}

TEST(MultiBlock, BlockSizeFormula) {
  // u = 0: scale 0.15 -> max_keep int(196 * 0.15) = 29, ar 0.75 -> h = round(sqrt(21.75)) = 5,
  // w = round(sqrt(38.67)) = 6.
  auto lo = jepa::masking::block_size(0.0, 14, 14, {0.15, 0.2}, {0.75, 1.5});
  EXPECT_EQ(lo.height, 5);
  EXPECT_EQ(lo.width, 6);
  // Context: scale 1.0, ar 1 -> 14x14 clamped to 13x13.
  auto ctx = jepa::masking::block_size(0.999, 14, 14, {0.85, 1.0}, {1.0, 1.0});
  EXPECT_EQ(ctx.height, 13);
  EXPECT_EQ(ctx.width, 13);
}
