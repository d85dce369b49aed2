// SLURM's side of launcher = "slurm" without a cluster: what the sweep host reads from squeue,
// scontrol and sbatch, the batch script it writes, and the sbatch command line it builds.
#include "sweep/slurm.hpp"

#include <gtest/gtest.h>

namespace {

using namespace jepa::sweep;

TEST(SlurmCommands, ReadsSqueueScontrolAndSbatch) {
  const auto q = slurm::parse_squeue("12|RUNNING|None|jepa-1-t000-ab|vm\n13|PENDING|Resources|jepa-1-t001-ab|\n\n");
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].id, "12");
  EXPECT_EQ(q[0].state, "RUNNING");
  EXPECT_EQ(q[0].nodes, "vm");
  EXPECT_EQ(q[1].reason, "Resources");
  EXPECT_EQ(q[1].name, "jepa-1-t001-ab");

  const auto s = slurm::parse_scontrol(
      "JobId=7 JobName=jepa-1-t002-ab UserId=root(0) JobState=FAILED Reason=NonZeroExitCode Dependency=(null) "
      "ExitCode=139:0 NodeList=vm Command=/tmp/a folder/job.sh WorkDir=/tmp\n");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].id, "7");
  EXPECT_EQ(s[0].state, "FAILED");
  EXPECT_EQ(s[0].reason, "NonZeroExitCode");
  EXPECT_EQ(s[0].exit_code, "139:0");
  EXPECT_EQ(s[0].nodes, "vm");

  EXPECT_EQ(slurm::parse_sbatch("1234\n"), std::optional<std::string>("1234"));
  EXPECT_EQ(slurm::parse_sbatch("1234;cluster\n"), std::optional<std::string>("1234"));
  EXPECT_EQ(slurm::parse_sbatch("sbatch: error: invalid partition"), std::nullopt);

  for (const char* end : {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "CANCELLED by 0", "NODE_FAIL", "PREEMPTED",
                          "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"}) {
    EXPECT_TRUE(slurm::is_terminal(end)) << end;
  }
  for (const char* going : {"PENDING", "RUNNING", "REQUEUED", "COMPLETING", "CONFIGURING", "SUSPENDED", ""}) {
    EXPECT_FALSE(slurm::is_terminal(going)) << going;
  }
}

TEST(SlurmCommands, BatchScriptAndSbatchLine) {
  SlurmSpec spec;
  spec.cpus_per_task = 4;
  spec.signal_grace = 90;
  spec.time_limit = "2:00:00";
  spec.partition = "gpu";
  spec.sbatch_args = {"--constraint=a100"};
  const auto one = slurm::batch_script({"/opt/jepa engine", "run", "it's.toml"}, spec);
  EXPECT_NE(one.find("'/opt/jepa engine' 'run' 'it'\\''s.toml' &"), std::string::npos) << one;
  EXPECT_EQ(one.find("srun"), std::string::npos) << one;  // one rank: the trial is the job's process
  EXPECT_NE(one.find("export OMP_NUM_THREADS=4"), std::string::npos);
  EXPECT_NE(one.find("trap 'term=1;"), std::string::npos);
  spec.nodes = 2;
  spec.tasks_per_node = 4;
  const auto many = slurm::batch_script({"engine", "run"}, spec);
  EXPECT_NE(many.find("srun --kill-on-bad-exit=1 --nodes=2 --ntasks=8 --ntasks-per-node=4 --cpus-per-task=4 'engine'"),
            std::string::npos)
      << many;

  const auto line = slurm::sbatch_command(spec, "jepa-1-t000-ab", "/s/log", "/s/job.sh");
  const std::vector<std::string> want{"sbatch",
                                      "--parsable",
                                      "--job-name=jepa-1-t000-ab",
                                      "--output=/s/log",
                                      "--open-mode=append",
                                      "--signal=B:TERM@90",
                                      "--requeue",
                                      "--nodes=2",
                                      "--ntasks-per-node=4",
                                      "--cpus-per-task=4",
                                      "--partition=gpu",
                                      "--time=2:00:00",
                                      "--constraint=a100",
                                      "/s/job.sh"};
  EXPECT_EQ(line, want);
}

TEST(SlurmCommands, RunCommandCapturesOutputStatusAndTimeout) {
  const auto ok = slurm::run_command({"sh", "-c", "echo out; echo err >&2; exit 3"});
  EXPECT_EQ(ok.status, 3);
  EXPECT_EQ(ok.out, "out\n");
  EXPECT_EQ(ok.err, "err\n");
  const auto missing = slurm::run_command({"/nonexistent/sbatch"});
  EXPECT_NE(missing.status, 0);
  const auto slow = slurm::run_command({"sleep", "10"}, 0.3);
  EXPECT_EQ(slow.status, -1);
  EXPECT_NE(slow.err.find("did not answer"), std::string::npos);
}

}  // namespace
