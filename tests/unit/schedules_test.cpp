// The official schedules at the reference values (shared/IJEPA_REFERENCE.md: ipe 625, 300 epochs).
#include "train/schedules.hpp"

#include <gtest/gtest.h>

using jepa::train::ScheduleConfig;
using jepa::train::Schedules;

namespace {
Schedules reference() {
  ScheduleConfig c;
  c.iterations_per_epoch = 625;
  c.epochs = 300;
  return Schedules(c);
}
}  // namespace

TEST(Schedules, ReferenceLearningRates) {
  const auto s = reference();
  EXPECT_EQ(s.warmup_steps(), 25000);
  EXPECT_EQ(s.total_steps(), 187500);
  EXPECT_NEAR(s.lr_at(1), 2.00032e-4, 1e-12);
  EXPECT_NEAR(s.lr_at(25000), 1e-3, 1e-15);
  EXPECT_NEAR(s.lr_at(187500), 1e-6, 1e-15);
  // Cosine half-way through the decay: (1e-3 + 1e-6) / 2.
  EXPECT_NEAR(s.lr_at(25000 + 81250), (1e-3 + 1e-6) / 2, 1e-12);
  EXPECT_GT(s.lr_at(24999), s.lr_at(1));
  EXPECT_GE(s.lr_at(200000), 1e-6) << "never below final_lr";
}

TEST(Schedules, ReferenceWeightDecay) {
  const auto s = reference();
  EXPECT_NEAR(s.weight_decay_at(1), 0.04, 1e-8);
  EXPECT_NEAR(s.weight_decay_at(25000), 0.055562, 1e-6);
  EXPECT_NEAR(s.weight_decay_at(187500), 0.4, 1e-12);
  EXPECT_LT(s.weight_decay_at(1000), s.weight_decay_at(2000)) << "a cosine-shaped increase";
}

TEST(Schedules, MomentumIsLinearFrom0996) {
  const auto s = reference();
  EXPECT_DOUBLE_EQ(s.momentum_at(0), 0.996);
  EXPECT_NEAR(s.momentum_at(93750), 0.998, 1e-12);
  EXPECT_NEAR(s.momentum_at(187500), 1.0, 1e-12);
}

TEST(Schedules, IpeScaleStretchesTheHorizon) {
  ScheduleConfig c;
  c.iterations_per_epoch = 100;
  c.epochs = 10;
  c.ipe_scale = 1.25;
  c.warmup_epochs = 1;
  const Schedules s(c);
  EXPECT_EQ(s.total_steps(), 1250);
  EXPECT_NEAR(s.lr_at(1250), 1e-6, 1e-15);
  EXPECT_GT(s.lr_at(1000), 1e-6) << "training stops at step 1000 before the cosine ends, as upstream";
}
