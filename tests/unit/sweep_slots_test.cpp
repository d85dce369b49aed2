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

// GPU_REVIEW F3: a sweep host limited to GPUs 4-7 (a shared machine, or SLURM exporting global ids)
// must give its trials GPUs 4-7, never "0" (physical GPU 0, someone else's).
TEST(SweepSlots, TrialGpusAreNamedAsTheHostsOwnVisibleDevices) {
  SweepSpec spec;
  spec.devices = "auto";
  const auto slots = plan_slots(spec, 4, 16, "4,5,6,7");
  ASSERT_EQ(slots.size(), 4u);
  for (size_t i = 0; i < slots.size(); ++i) {
    EXPECT_EQ(slots[i].cuda_visible_devices, std::to_string(4 + i));
    EXPECT_EQ(slots[i].label, "gpu " + std::to_string(4 + i));
  }
  spec.gpus_per_trial = 2;
  const auto pairs = plan_slots(spec, 4, 16, "4, 5,6 ,7");
  ASSERT_EQ(pairs.size(), 2u);
  EXPECT_EQ(pairs[0].cuda_visible_devices, "4,5");
  EXPECT_EQ(pairs[1].cuda_visible_devices, "6,7");
}

TEST(SweepSlots, ChosenGpusAreOrdinalsAmongTheVisibleOnes) {
  SweepSpec spec;
  spec.devices = "1,3";
  const auto slots = plan_slots(spec, 4, 16, "4,5,6,7");
  ASSERT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots[0].cuda_visible_devices, "5");
  EXPECT_EQ(slots[1].cuda_visible_devices, "7");
}

TEST(SweepSlots, UuidAndMigEntriesPassOnUnchanged) {
  SweepSpec spec;
  spec.devices = "auto";
  const auto slots = plan_slots(spec, 2, 16, "GPU-8f2a1c3e-0000-1111-2222-333344445555,MIG-5b7d/1/0");
  ASSERT_EQ(slots.size(), 2u);
  EXPECT_EQ(slots[0].cuda_visible_devices, "GPU-8f2a1c3e-0000-1111-2222-333344445555");
  EXPECT_EQ(slots[1].cuda_visible_devices, "MIG-5b7d/1/0");
}

TEST(SweepSlots, VisibleDeviceIdsKeepOnlyWhatCudaShows) {
  using jepa::sweep::visible_device_ids;
  EXPECT_EQ(visible_device_ids(nullptr, 3), (std::vector<std::string>{"0", "1", "2"}));
  // CUDA stops at the first invalid entry: it shows 2 devices for "2,3,99".
  EXPECT_EQ(visible_device_ids("2,3,99", 2), (std::vector<std::string>{"2", "3"}));
  EXPECT_THROW(visible_device_ids("2", 2), jepa::sweep::SweepError);
}
