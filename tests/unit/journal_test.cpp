// Journals (launcher = "slurm"): a trial records through JournalRecorder into an append-only
// file, and the sweep host takes it into the database exactly once, across torn last lines,
// resumed hosts (the offset is stored with the records) and resumed trials.
#include "store/journal.hpp"
#include "store/store.hpp"

#include "temp_dir.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <limits>

namespace fs = std::filesystem;
using namespace jepa::store;

namespace {

class JournalTest : public ::testing::Test {
 protected:
  JournalTest() : dir_("jepa_journal_test"), trial_(dir_.path() / "trials" / "000") {
    fs::create_directories(trial_);
    Store store(db());
    sweep_ = store.create_sweep("s", R"({"pruning": {"rule": "median", "metric": "train/loss"}})");
    store.add_sweep_trials(sweep_, {{0, "[]"}, {1, "[]"}});
    // As the sweep host does before it submits the trial's job.
    run_ = store.create_run("s-t000", "{}", "x.toml", 0, std::nullopt, TrialRef{sweep_, 0});
    std::ofstream(trial_ / "trial.json") << nlohmann::json{{"run_id", run_}, {"pruning", snapshot().string()}}.dump();
  }
  fs::path db() const { return dir_.path() / "results.db"; }
  fs::path journal() const { return trial_ / "journal.jsonl"; }
  fs::path snapshot() const { return dir_.path() / "pruning.json"; }
  int64_t offset(Store& store) const { return store.sweep_trials(sweep_).at(0).journal_offset; }
  Intake take_in(Store& store) {
    return take_in_journal(store, journal(), run_, offset(store),
                           [&](int64_t o) { store.set_trial_journal_offset(sweep_, 0, o); });
  }

  jepa_test::TempDir dir_;
  fs::path trial_;
  int64_t sweep_ = 0;
  int64_t run_ = 0;
};

TEST_F(JournalTest, EverythingATrialRecordsReachesTheDatabaseOnce) {
  {
    JournalRecorder rec(trial_);
    EXPECT_FALSE(rec.created().has_value());
    EXPECT_EQ(rec.create_run("s-t000", R"({"a": 1})", "/shared/x.toml", 7), run_);
    rec.set_params(run_, {{"optimization.lr", "0.001"}});
    rec.set_environment(run_, {{"host", "node7"}, {"precision", "fp32"}});
    rec.add_plugins(run_, {{"encoder", "vit", 1, "vit", "1.0", "/p/vit.so", "abc", "fp"}});
    rec.log_metrics(run_,
                    {{"train/loss", 2, 0.5, 1.0}, {"train/loss", 4, std::numeric_limits<double>::quiet_NaN(), 2.0}});
    rec.add_evaluation(run_, {"knn", "top1", 61.5, 4, "{}"});
    rec.add_artifact(run_, {"checkpoint", "/shared/ckpt.pt", 4, 100, "deadbeef", ""});
    rec.heartbeat(run_, 4);
    EXPECT_TRUE(rec.created().has_value());
    // What resuming reads back comes from the journal itself.
    EXPECT_EQ(rec.environment(run_).at("host"), "node7");
    EXPECT_EQ(rec.latest_artifact(run_, "checkpoint")->sha256, "deadbeef");
    EXPECT_EQ(rec.metrics(run_, "train/loss").size(), 2u);
    EXPECT_EQ(rec.run_folder(run_), trial_ / "run");
    EXPECT_THROW(rec.heartbeat(run_ + 1, 0), StoreError);
  }
  // A torn last line (a trial killed mid-write) waits for its newline.
  std::ofstream(journal(), std::ios::app) << R"({"op":"finish_run","status":"COMPLETED","reason":""})";
  Store store(db());
  auto in = take_in(store);
  EXPECT_EQ(in.records, 8u);
  EXPECT_TRUE(in.metrics);
  EXPECT_FALSE(in.ended);
  const auto run = store.find_run(run_);
  EXPECT_EQ(run->config_json, R"({"a": 1})");
  EXPECT_EQ(run->config_path, "/shared/x.toml");
  EXPECT_EQ(run->seed, 7u);
  EXPECT_EQ(run->status, RunStatus::running);
  EXPECT_EQ(store.params(run_).at("optimization.lr"), "0.001");
  EXPECT_EQ(store.environment(run_).at("host"), "node7");
  EXPECT_EQ(store.plugins(run_).size(), 1u);
  const auto loss = store.metrics(run_, "train/loss");
  ASSERT_EQ(loss.size(), 2u);
  EXPECT_TRUE(std::isnan(loss[1].value));
  EXPECT_EQ(store.evaluations(run_).size(), 1u);
  EXPECT_EQ(store.latest_artifact(run_, "checkpoint")->path, "/shared/ckpt.pt");
  // Nothing new: nothing applied twice.
  EXPECT_EQ(take_in(store).records, 0u);
  EXPECT_EQ(store.metrics(run_, "train/loss").size(), 2u);

  std::ofstream(journal(), std::ios::app) << "\n";
  in = take_in(store);
  EXPECT_EQ(in.records, 1u);
  EXPECT_TRUE(in.ended);
  EXPECT_EQ(store.find_run(run_)->status, RunStatus::completed);
  EXPECT_EQ(offset(store), static_cast<int64_t>(fs::file_size(journal())));
}

TEST_F(JournalTest, AResumedHostContinuesFromTheStoredOffsetAndAResumedTrialDropsWhatFollowedItsCheckpoint) {
  {
    JournalRecorder rec(trial_);
    rec.create_run("s-t000", "{}", "x.toml", 0);
    rec.log_metrics(run_, {{"train/loss", 2, 1.0, 1.0}, {"train/loss", 4, 0.9, 1.0}, {"train/loss", 6, 0.8, 1.0}});
  }
  {
    Store store(db());
    take_in(store);
  }
  {
    // The job is requeued: it continues from its checkpoint at step 4.
    JournalRecorder rec(trial_);
    ASSERT_TRUE(rec.created().has_value());
    rec.reopen_run(run_, 4);
    EXPECT_EQ(rec.metrics(run_, "train/loss").size(), 2u);  // as the store will have it
    rec.log_metrics(run_, {{"train/loss", 6, 0.7, 2.0}});
  }
  Store store(db());  // another host process: it reads the offset from the database
  take_in(store);
  const auto loss = store.metrics(run_, "train/loss");
  ASSERT_EQ(loss.size(), 3u);
  EXPECT_EQ(loss[2].step, 6);
  EXPECT_DOUBLE_EQ(loss[2].value, 0.7);
}

TEST_F(JournalTest, TrialsPruneAgainstTheHostsSnapshot) {
  JournalRecorder rec(trial_);
  EXPECT_EQ(rec.sweep_spec_json(run_), "");  // no snapshot yet
  write_pruning_snapshot(snapshot(), R"({"pruning": {"rule": "median", "metric": "train/loss"}})",
                         {{run_, {{2, 1.0}}}, {run_ + 5, {{2, 0.5}, {4, std::numeric_limits<double>::quiet_NaN()}}}});
  EXPECT_NE(rec.sweep_spec_json(run_).find("median"), std::string::npos);
  const auto others = rec.other_trials(run_, "train/loss");
  ASSERT_EQ(others.size(), 1u);  // not its own history
  EXPECT_DOUBLE_EQ(others.at(run_ + 5).at(2), 0.5);
  EXPECT_TRUE(std::isnan(others.at(run_ + 5).at(4)));
  EXPECT_TRUE(rec.other_trials(run_, "knn/top1").empty());
  EXPECT_FALSE(fs::exists(snapshot().string() + ".tmp"));
}

TEST_F(JournalTest, ATrialFolderWithoutTrialJsonIsAClearError) {
  fs::remove(trial_ / "trial.json");
  try {
    JournalRecorder rec(trial_);
    FAIL() << "no error";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("trial.json"), std::string::npos) << e.what();
  }
}

}  // namespace
