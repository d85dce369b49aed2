// Reading torchrun's and SLURM's variables into a rank, world size and rendezvous address.
#include "distributed/env.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

using jepa::dist::EnvError;
using jepa::dist::read_env;

namespace {

struct FakeEnv {
  std::map<std::string, std::string> vars;
  jepa::dist::GetEnv get() const {
    return [this](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

}  // namespace

TEST(DistEnv, NothingSetIsASingleProcess) {
  FakeEnv env;
  EXPECT_FALSE(read_env(env.get()).has_value());
}

TEST(DistEnv, TorchrunVariables) {
  FakeEnv env{{{"RANK", "3"},
               {"WORLD_SIZE", "8"},
               {"LOCAL_RANK", "1"},
               {"LOCAL_WORLD_SIZE", "2"},
               {"MASTER_ADDR", "10.0.0.1"},
               {"MASTER_PORT", "29500"},
               {"TORCHELASTIC_USE_AGENT_STORE", "True"}}};
  const auto e = read_env(env.get());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 3);
  EXPECT_EQ(e->world_size, 8);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->local_world_size, 2);
  EXPECT_EQ(e->master_addr, "10.0.0.1");
  EXPECT_EQ(e->master_port, 29500);
  EXPECT_TRUE(e->agent_store);
  EXPECT_EQ(e->launcher, "torchrun");
}

TEST(DistEnv, WorldOfOneIsASingleProcess) {
  FakeEnv env{{{"RANK", "0"}, {"WORLD_SIZE", "1"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "4"}}};
  // torchrun's one process inside a 4-task SLURM job is still one process.
  EXPECT_FALSE(read_env(env.get()).has_value());
}

TEST(DistEnv, IncompleteTorchrunVariablesAreErrorsNamingWhatIsMissing) {
  try {
    read_env(FakeEnv{{{"RANK", "1"}}}.get());
    FAIL() << "expected EnvError";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("WORLD_SIZE"), std::string::npos) << e.what();
  }
  try {
    read_env(FakeEnv{{{"RANK", "1"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "1234"}}}.get());
    FAIL() << "expected EnvError";
  } catch (const EnvError& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_ADDR"), std::string::npos) << e.what();
  }
  EXPECT_THROW(
      read_env(FakeEnv{{{"RANK", "2"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}}.get()),
      EnvError);
  EXPECT_THROW(
      read_env(FakeEnv{{{"RANK", "x"}, {"WORLD_SIZE", "2"}, {"MASTER_ADDR", "h"}, {"MASTER_PORT", "1"}}}.get()),
      EnvError);
}

TEST(DistEnv, SlurmVariablesWithNodeListAndJobPort) {
  FakeEnv env{{{"SLURM_PROCID", "5"},
               {"SLURM_NTASKS", "16"},
               {"SLURM_LOCALID", "1"},
               {"SLURM_TASKS_PER_NODE", "4(x4)"},
               {"SLURM_JOB_NODELIST", "gpu[07-10],cpu1"},
               {"SLURM_JOB_ID", "123456"}}};
  const auto e = read_env(env.get());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->rank, 5);
  EXPECT_EQ(e->world_size, 16);
  EXPECT_EQ(e->local_rank, 1);
  EXPECT_EQ(e->local_world_size, 4);
  EXPECT_EQ(e->master_addr, "gpu07");
  EXPECT_EQ(e->master_port, 15000 + 123456 % 20000);
  EXPECT_FALSE(e->agent_store);
  EXPECT_EQ(e->launcher, "slurm");
}

TEST(DistEnv, SlurmMasterVariablesWin) {
  FakeEnv env{{{"SLURM_PROCID", "0"},
               {"SLURM_NTASKS", "2"},
               {"SLURM_JOB_NODELIST", "n[1-2]"},
               {"SLURM_JOB_ID", "7"},
               {"MASTER_ADDR", "head"},
               {"MASTER_PORT", "4242"}}};
  const auto e = read_env(env.get());
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->master_addr, "head");
  EXPECT_EQ(e->master_port, 4242);
}

TEST(DistEnv, SlurmWithoutAWayToFindRankZeroIsAnError) {
  EXPECT_THROW(read_env(FakeEnv{{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_JOB_ID", "7"}}}.get()),
               EnvError);
  EXPECT_THROW(read_env(FakeEnv{{{"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "2"}, {"SLURM_NODELIST", "a"}}}.get()),
               EnvError);
}

TEST(DistEnv, FirstHostOfSlurmNodeLists) {
  using jepa::dist::first_slurm_host;
  EXPECT_EQ(first_slurm_host("node1"), "node1");
  EXPECT_EQ(first_slurm_host("node1,node2"), "node1");
  EXPECT_EQ(first_slurm_host("node[03-05,07],gpu1"), "node03");
  EXPECT_EQ(first_slurm_host("rack[2,4]-n[1-3]"), "rack2-n1");
  EXPECT_EQ(first_slurm_host("a[010-012]"), "a010");
  EXPECT_THROW(first_slurm_host("bad[1-2"), EnvError);
}

TEST(DistEnv, SlurmPortIsStableAndInRange) {
  using jepa::dist::slurm_port;
  EXPECT_EQ(slurm_port("42"), 15042);
  EXPECT_EQ(slurm_port("42"), slurm_port("42"));
  EXPECT_EQ(slurm_port("1234_7"), 15000 + 1234);  // array jobs: the job part
  for (const char* id : {"0", "19999", "20000", "99999999"}) {
    EXPECT_GE(slurm_port(id), 15000);
    EXPECT_LT(slurm_port(id), 35000);
  }
}

// Which GPU a rank trains on (GPU_REVIEW F2): SLURM's --gpus-per-task shows each task its own GPU
// as device 0, whatever its SLURM_LOCALID; torchrun and --nproc show every GPU and index by rank.
TEST(CudaDeviceForRank, OneVisibleDeviceIsEveryRanksOwn) {
  using jepa::dist::cuda_device_for_rank;
  for (int local = 0; local < 8; ++local) EXPECT_EQ(cuda_device_for_rank(local, 1, "GPU-5f2c"), 0) << local;
  EXPECT_EQ(cuda_device_for_rank(3, 1, "3"), 0);
}

TEST(CudaDeviceForRank, SeveralVisibleDevicesAreIndexedByLocalRank) {
  using jepa::dist::cuda_device_for_rank;
  for (int local = 0; local < 8; ++local) EXPECT_EQ(cuda_device_for_rank(local, 8, nullptr), local);
  EXPECT_EQ(cuda_device_for_rank(1, 2, "4,5"), 1);
}

TEST(CudaDeviceForRank, MoreRanksThanDevicesIsAClearError) {
  using jepa::dist::cuda_device_for_rank;
  try {
    cuda_device_for_rank(3, 2, "0,1");
    FAIL() << "no error for local rank 3 on 2 devices";
  } catch (const EnvError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("local rank 3"), std::string::npos) << what;
    EXPECT_NE(what.find("CUDA_VISIBLE_DEVICES \"0,1\""), std::string::npos) << what;
    EXPECT_NE(what.find("2 CUDA devices"), std::string::npos) << what;
  }
  EXPECT_THROW(cuda_device_for_rank(0, 0, ""), EnvError);
}
