// Where sweep trials run: CPU slots, GPU slots, and data-parallel trials over several GPUs.
#include "sweep/scheduler.hpp"

#include <gtest/gtest.h>

using jepa::sweep::plan_slots;
using jepa::sweep::SweepSpec;

TEST(SweepSlots, CpuSlotsShareTheCores) {
  SweepSpec spec;
  spec.devices = "cpu";
  spec.threads_per_trial = 2;
  const auto slots = plan_slots(spec, 4, 8);
  ASSERT_EQ(slots.size(), 4u);
  for (const auto& s : slots) {
    EXPECT_EQ(s.cuda_visible_devices, "");
    EXPECT_EQ(s.threads, 2);
    EXPECT_EQ(s.ranks, 1);
  }
}

TEST(SweepSlots, SeveralGpusPerTrialMakeOneRankPerGpu) {
  SweepSpec spec;
  spec.devices = "auto";
  spec.gpus_per_trial = 2;
  const auto slots = plan_slots(spec, 5, 16);  // the fifth GPU is left over
  ASSERT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots[0].cuda_visible_devices, "0,1");
  EXPECT_EQ(slots[1].cuda_visible_devices, "2,3");
  EXPECT_EQ(slots[0].ranks, 2);
  EXPECT_EQ(slots[1].ranks, 2);
}

TEST(SweepSlots, OneGpuPerTrialIsOneRank) {
  SweepSpec spec;
  spec.devices = "1,3";
  spec.trials_per_gpu = 2;
  const auto slots = plan_slots(spec, 4, 16);
  ASSERT_EQ(slots.size(), 4u);
  EXPECT_EQ(slots[0].cuda_visible_devices, "1");
  EXPECT_EQ(slots[3].cuda_visible_devices, "3");
  for (const auto& s : slots) EXPECT_EQ(s.ranks, 1);
}
