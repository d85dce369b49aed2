// Training end to end through the `jepa` executable: a tiny experiment on real Fashion-MNIST
// images, the results store, checkpoints, exact resume, kills, divergence, export, bad configs.
#include "jepa_process.hpp"
#include "store/store.hpp"
#include "tiny_experiment.hpp"

#include <gtest/gtest.h>
#include <png.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <map>
#include <thread>

namespace fs = std::filesystem;
using jepa_test::contains;
using jepa_test::run_jepa;
using jepa_test::slurp;
using jepa_test::tiny_experiment;

namespace {

fs::path write_experiment(const fs::path& dir, int epochs, const std::string& name = "tiny.toml") {
  const fs::path file = dir / name;
  std::ofstream(file) << tiny_experiment(dir, epochs);
  return file;
}

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

std::vector<double> losses(const fs::path& db, int64_t run) {
  jepa::store::Store store(db);
  std::vector<double> out;
  for (const auto& m : store.metrics(run, "train/loss")) out.push_back(m.value);
  return out;
}

// Starts `jepa run FILE --no-eval --db DB` in a child process and returns its pid once the run
// has written its first checkpoint (or -1 after 60 s).
pid_t start_until_first_checkpoint(const fs::path& file, const fs::path& db) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::execl(JEPA_BINARY, JEPA_BINARY, "run", file.c_str(), "--no-eval", "--db", db.c_str(), nullptr);
    ::_exit(127);
  }
  for (int i = 0; i < 600 && pid > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    if (!fs::exists(db)) continue;
    try {
      jepa::store::Store store(db);
      if (store.latest_artifact(1, "checkpoint").has_value()) return pid;
    } catch (const std::exception&) {
      // The child may be creating the database right now.
    }
  }
  if (pid > 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
  }
  return -1;
}

}  // namespace

TEST(Train, EndToEndRecordsEverything) {
  const auto dir = jepa_test::temp_dir("jepa_train_e2e");
  const auto file = write_experiment(dir, 2);
  const auto db = dir / "jepa.db";
  const auto r = run_jepa("run " + q(file) + " --db " + q(db));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "linear_probe/top1")) << r.out;

  jepa::store::Store store(db);
  const auto run = store.find_run("tiny");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, jepa::store::RunStatus::completed);
  EXPECT_EQ(store.metrics(run->id, "train/loss").size(), 32u);
  EXPECT_EQ(store.metrics(run->id, "train/lr").back().step, 32);
  const auto params = store.params(run->id);
  EXPECT_EQ(params.at("encoder.params.depth"), "2");
  EXPECT_EQ(params.at("optimization.epochs"), "2");
  EXPECT_EQ(store.environment(run->id).count("torch_version"), 1u);
  EXPECT_EQ(store.plugins(run->id).size(), 5u);  // masking, encoder, predictor, objective, evaluator
  EXPECT_EQ(store.metrics(run->id, "train/loss/pred").size(), 32u) << "the objective's parts are logged";
  EXPECT_EQ(store.metrics(run->id, "train/momentum").size(), 32u) << "ijepa declares an EMA target";
  bool probed = false;
  for (const auto& e : store.evaluations(run->id))
    probed = probed || (e.evaluator == "linear_probe" && e.metric == "top1");
  EXPECT_TRUE(probed);
  const auto ckpt = store.latest_artifact(run->id, "checkpoint");
  ASSERT_TRUE(ckpt);
  EXPECT_EQ(ckpt->step, 32);
  EXPECT_TRUE(fs::exists(ckpt->path));
  // The loss goes down from its first value.
  const auto l = losses(db, run->id);
  EXPECT_LT(l.back(), l.front());
  fs::remove_all(dir);
}

namespace {

// Stops a run after 5 of its 16 steps, resumes it, and checks that every loss and the final weights
// equal the uninterrupted run's, in the given precision (`env` forces what the CPU reports).
void check_exact_resume(const std::string& precision, const std::string& env, const std::string& name) {
  const auto dir = jepa_test::temp_dir("jepa_train_resume_" + name);
  const auto file = write_experiment(dir, 1);
  const auto db_a = dir / "a.db";
  const auto db_b = dir / "b.db";
  const std::string set = " --set run.precision=" + precision;
  // Each database its own checkpoint folder: both hold a run 1. (Sharing one, b's checkpoint
  // replaced a's and the weights compared were b's twice; the recorded digests caught it.)
  ASSERT_EQ(run_jepa("run " + q(file) + set + " --set 'checkpoint.dir=" + (dir / "runs_a").string() +
                         "' --no-eval --db " + q(db_a),
                     env)
                .code,
            0);
  const auto stopped = run_jepa("run " + q(file) + set + " --set 'checkpoint.dir=" + (dir / "runs_b").string() +
                                    "' --no-eval --stop-after 5 --db " + q(db_b),
                                env);
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  {
    jepa::store::Store store(db_b);
    const auto run = store.find_run(1);
    ASSERT_TRUE(run);
    EXPECT_EQ(run->status, jepa::store::RunStatus::killed);
    EXPECT_TRUE(contains(run->reason, "--stop-after")) << run->reason;
    EXPECT_EQ(store.metrics(1, "train/loss").size(), 5u);
  }
  const auto resumed = run_jepa("run --resume 1 --no-eval --db " + q(db_b), env);
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(jepa::store::Store(db_b).environment(1).at("precision"), precision);
  const auto a = losses(db_a, 1);
  const auto b = losses(db_b, 1);
  ASSERT_EQ(a.size(), 16u);
  ASSERT_EQ(b.size(), 16u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  // The weights agree too: the exports are byte-identical.
  const auto export_a = run_jepa("export 1 -o " + q(dir / "a.pt") + " --db " + q(db_a));
  ASSERT_EQ(export_a.code, 0) << export_a.err;
  const auto export_b = run_jepa("export 1 -o " + q(dir / "b.pt") + " --db " + q(db_b));
  ASSERT_EQ(export_b.code, 0) << export_b.err;
  EXPECT_EQ(slurp(dir / "a.pt"), slurp(dir / "b.pt"));
  // What Python's torch.load returns, with upstream's key names (check_export.py unpickles the
  // archive as torch.load does).
  const std::string check = "python3 '" JEPA_SOURCE_DIR "/tests/integration/check_export.py' ";
  EXPECT_EQ(std::system((check + q(dir / "a.pt")).c_str()), 0);
  ASSERT_EQ(run_jepa("export 1 --no-module-prefix -o " + q(dir / "c.pt") + " --db " + q(db_a)).code, 0);
  EXPECT_EQ(std::system((check + q(dir / "c.pt") + " --no-module-prefix").c_str()), 0);
  EXPECT_NE(std::system((check + q(dir / "c.pt")).c_str()), 0) << "the checker notices a missing prefix";
  fs::remove_all(dir);
}

}  // namespace

TEST(Train, ResumeIsExact) {
  check_exact_resume("fp32", "", "fp32");
}

// bf16 autocast on the CPU: deterministic too, so resume stays exact. JEPA_CPU_BF16=1 makes the
// test run in bf16 on any CPU (emulated where not native: slower, the same semantics).
TEST(Train, ProfileWritesAChromeTraceOfAtenOpsBesideTheCheckpoint) {
  const auto dir = jepa_test::temp_dir("jepa_train_profile");
  const auto file = write_experiment(dir, 1);  // 16 steps
  const auto db = dir / "jepa.db";
  const auto r = run_jepa("run " + q(file) + " --no-eval --profile --db " + q(db));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  jepa::store::Store store(db);
  const auto profile = store.latest_artifact(1, "profile");
  ASSERT_TRUE(profile);
  const auto ckpt = store.latest_artifact(1, "checkpoint");
  ASSERT_TRUE(ckpt);
  // Steps 6 to 10: the default window skips 5 steps of warm-up and profiles 5.
  EXPECT_EQ(profile->step, 10);
  EXPECT_EQ(fs::path(profile->path), fs::path(ckpt->path).parent_path() / "profile-steps-6-10.json");
  EXPECT_TRUE(contains(r.err, profile->path)) << r.err;
  EXPECT_EQ(profile->bytes, static_cast<int64_t>(fs::file_size(profile->path)));
  // A Chrome trace (an object with traceEvents, or a bare list of events) naming ATen operators
  // of the forward, the backward and the optimizer.
  const std::string check =
      "python3 -c \"import json, sys\n"
      "t = json.load(open(sys.argv[1]))\n"
      "events = t['traceEvents'] if isinstance(t, dict) else t\n"
      "names = [e.get('name', '') for e in events]\n"
      "aten = [n for n in names if n.startswith('aten::')]\n"
      "assert len(aten) > 100, len(aten)\n"
      "assert any('mm' in n for n in aten), 'no matmul'\n"
      "assert any('_foreach_' in n or '_fused_adamw' in n for n in aten), 'no optimizer op'\n"
      "\" ";
  EXPECT_EQ(std::system((check + q(profile->path)).c_str()), 0);
  const auto env = store.environment(1);
  EXPECT_EQ(env.at("optimizer_impl"), env.at("torch_version").rfind("1.", 0) == 0 ? "foreach" : "fused");

  const auto bad = run_jepa("run " + q(file) + " --no-eval --profile-steps 4:4 --db " + q(db));
  EXPECT_NE(bad.code, 0);
  EXPECT_TRUE(contains(bad.err, "--profile-steps expects FROM:TO")) << bad.err;
  fs::remove_all(dir);
}

TEST(Train, ResumeIsExactInBf16) {
  check_exact_resume("bf16", "JEPA_CPU_BF16=1", "bf16");
}

TEST(Train, PrecisionIsChosenRecordedAndShown) {
  const auto dir = jepa_test::temp_dir("jepa_train_precision");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const std::string args = "run " + q(file) + " --no-eval --set optimization.max_steps=2 --db " + q(db);
  // auto on a CPU without native bf16: fp32; with it: bf16.
  const auto plain = run_jepa(args, "JEPA_CPU_BF16=0");
  ASSERT_EQ(plain.code, 0) << plain.err;
  EXPECT_TRUE(contains(plain.err, "precision fp32 (auto: CPU has no native bf16")) << plain.err;
  const auto native = run_jepa(args, "JEPA_CPU_BF16=1");
  ASSERT_EQ(native.code, 0) << native.err;
  {
    jepa::store::Store store(db);
    const auto a = store.environment(1);
    EXPECT_EQ(a.at("precision"), "fp32");
    EXPECT_TRUE(contains(a.at("precision_reason"), "no native bf16")) << a.at("precision_reason");
    const auto b = store.environment(2);
    EXPECT_EQ(b.at("precision"), "bf16");
    EXPECT_TRUE(contains(b.at("precision_reason"), "auto: CPU has AVX512_BF16")) << b.at("precision_reason");
    EXPECT_EQ(store.params(2).at("run.precision"), "auto");
  }
  const auto shown = run_jepa("show 2 --db " + q(db));
  ASSERT_EQ(shown.code, 0) << shown.err;
  EXPECT_TRUE(contains(shown.out, "precision ")) << shown.out;
  EXPECT_TRUE(contains(shown.out, "bf16")) << shown.out;
  // Explicit fp32 wins over a CPU that could do bf16.
  const auto fp32 = run_jepa(args + " --set run.precision=fp32", "JEPA_CPU_BF16=1");
  ASSERT_EQ(fp32.code, 0) << fp32.err;
  EXPECT_EQ(jepa::store::Store(db).environment(3).at("precision"), "fp32");
  fs::remove_all(dir);
}

TEST(Train, Bf16WhereItIsNotNativeIsAConfigErrorAndResumeIsRefused) {
  const auto dir = jepa_test::temp_dir("jepa_train_bf16_refused");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const auto r = run_jepa("run " + q(file) + " --no-eval --set run.precision=bf16 --db " + q(db), "JEPA_CPU_BF16=0");
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_TRUE(contains(r.err, "[run] precision = \"bf16\", but this CPU has no native bf16")) << r.err;
  EXPECT_FALSE(fs::exists(db) && jepa::store::Store(db).find_run(1).has_value()) << "nothing is recorded";
  // A bf16 run stopped on a machine with bf16 is not continued in another precision elsewhere.
  ASSERT_EQ(run_jepa("run " + q(file) + " --no-eval --stop-after 2 --db " + q(db), "JEPA_CPU_BF16=1").code, 0);
  const auto resumed = run_jepa("run --resume 1 --no-eval --db " + q(db), "JEPA_CPU_BF16=0");
  EXPECT_EQ(resumed.code, 2) << resumed.err;
  EXPECT_TRUE(contains(resumed.err, "the run trained in bf16")) << resumed.err;
  jepa::store::Store store(db);
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::killed) << "not recorded as resumed";
  EXPECT_EQ(store.metrics(1, "train/loss").size(), 2u);
  fs::remove_all(dir);
}

// baselines = true: the same probe on raw pixels and on the encoder at initialisation. With lr 0
// and an EMA of 1 the trained target is still the initial encoder, so the two must agree exactly:
// that proves the baseline rebuilds the run's own initial weights.
TEST(Train, BaselinesProbeRawPixelsAndTheInitialEncoderWithTheSameReadout) {
  const auto dir = jepa_test::temp_dir("jepa_train_baselines");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const std::string probe =
      " --set evaluation.0.baselines=true --set evaluation.0.limit_train=256 "
      "--set evaluation.0.limit_test=128 --set evaluation.0.pool_grid=2";
  const auto r = run_jepa("run " + q(file) + probe +
                          " --set optimization.max_steps=1 --set optimization.lr=0 --set optimization.start_lr=0 "
                          "--set 'optimization.ema=[1,1]' --db " +
                          q(db));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.out, "linear_probe/top1@raw_pixels = ")) << r.out;
  EXPECT_TRUE(contains(r.out, "linear_probe/top1@random_init = ")) << r.out;
  EXPECT_TRUE(contains(r.out, "(+0.00), raw pixels ")) << r.out;
  jepa::store::Store store(db);
  std::map<std::string, double> top1;
  for (const auto& e : store.evaluations(1)) {
    if (e.evaluator == "linear_probe") top1[e.metric] = e.value;
  }
  ASSERT_EQ(top1.count("top1@random_init"), 1u);
  ASSERT_EQ(top1.count("top1@raw_pixels"), 1u);
  EXPECT_EQ(top1.at("top1"), top1.at("top1@random_init"));
  EXPECT_EQ(top1.at("feature_dim@raw_pixels"), 28 * 28) << "one flat vector per image";
  EXPECT_EQ(top1.at("feature_dim"), 2 * 2 * 32) << "pool_grid 2 keeps 4 regions of the last layer";
  EXPECT_EQ(store.metrics(1, "linear_probe/top1@raw_pixels").size(), 1u);
  // Trained for real, the encoder leaves its initialisation, and the baselines do not move.
  const auto trained = run_jepa("run " + q(file) + probe + " --db " + q(db));
  ASSERT_EQ(trained.code, 0) << trained.err;
  std::map<std::string, double> t;
  for (const auto& e : jepa::store::Store(db).evaluations(2)) {
    if (e.evaluator == "linear_probe") t[e.metric] = e.value;
  }
  EXPECT_NE(t.at("top1"), t.at("top1@random_init"));
  EXPECT_EQ(t.at("top1@random_init"), top1.at("top1@random_init")) << "same seed, same initial encoder";
  EXPECT_EQ(t.at("top1@raw_pixels"), top1.at("top1@raw_pixels"));
  // `jepa eval --baselines` gives a stored run the same three numbers later, for any readout.
  const auto later = run_jepa(
      "eval 2 --evaluator linear_probe --baselines --set epochs=2 --set limit_train=256 --set limit_test=128 "
      "--set pool_grid=2 --db " +
      q(db));
  ASSERT_EQ(later.code, 0) << later.err;
  EXPECT_TRUE(contains(later.out, "linear_probe/top1: trained ")) << later.out;
  std::multimap<std::string, double> all;
  for (const auto& e : jepa::store::Store(db).evaluations(2)) {
    if (e.evaluator == "linear_probe") all.emplace(e.metric, e.value);
  }
  ASSERT_EQ(all.count("top1@random_init"), 2u) << "recorded with the run, beside the first";
  for (const char* metric : {"top1", "top1@random_init", "top1@raw_pixels"}) {
    const auto [first, last] = all.equal_range(metric);
    EXPECT_EQ(first->second, std::prev(last)->second) << metric << ": same checkpoint, readout and seed";
  }
  fs::remove_all(dir);
}

// Run ids are per database: two databases in one folder (a seed each) both have a run 1, and by
// default each keeps its checkpoints in its own folder, so neither overwrites the other's.
TEST(Train, TwoDatabasesInOneFolderKeepTheirCheckpointsApart) {
  const auto dir = jepa_test::temp_dir("jepa_train_two_dbs");
  const auto file = write_experiment(dir, 1);
  const std::string common = " --no-eval --set optimization.max_steps=4 --set 'checkpoint.dir=\"\"' --db ";
  for (const char* seed : {"3", "4"}) {
    const auto db = dir / (std::string("seed") + seed + ".db");
    const auto r = run_jepa("run " + q(file) + " --set run.seed=" + seed + common + q(db));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  const auto a = jepa::store::Store(dir / "seed3.db").latest_artifact(1, "checkpoint");
  const auto b = jepa::store::Store(dir / "seed4.db").latest_artifact(1, "checkpoint");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(fs::path(a->path), fs::absolute(dir / "runs" / "seed3" / "1" / "checkpoint.pt"));
  EXPECT_NE(a->path, b->path);
  // The first one is still its own: its digest matches, so a later evaluation may use it.
  const auto eval = run_jepa(
      "eval 1 --evaluator linear_probe --set epochs=1 --set limit_train=64 "
      "--set limit_test=32 --db " +
      q(dir / "seed3.db"));
  EXPECT_EQ(eval.code, 0) << eval.err;
  fs::remove_all(dir);
}

// Without a terminal (a log file, CI, nohup, SLURM) the progress is plain lines at an interval,
// never carriage returns, and the last step is always shown.
TEST(Train, ProgressIsPrintedAsPlainLinesWithoutATerminal) {
  const auto dir = jepa_test::temp_dir("jepa_train_progress");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const auto often = run_jepa("run " + q(file) + " --no-eval --db " + q(db), "JEPA_PROGRESS_INTERVAL=0.001");
  ASSERT_EQ(often.code, 0) << often.err;
  EXPECT_FALSE(contains(often.err, "\r")) << "no redrawn line in a log";
  EXPECT_TRUE(contains(often.err, "step 16/16 (100.0%) epoch 1/1 loss ")) << often.err;
  EXPECT_TRUE(contains(often.err, " img/s elapsed ")) << often.err;
  EXPECT_TRUE(contains(often.err, " ETA ")) << often.err;
  size_t lines = 0;
  for (size_t at = often.err.find("step "); at != std::string::npos; at = often.err.find("\nstep ", at + 1)) ++lines;
  EXPECT_GE(lines, 8u) << often.err;
  // At the default interval (30 s) a run of a second shows its last step only.
  const auto quiet = run_jepa("run " + q(file) + " --no-eval --db " + q(db));
  ASSERT_EQ(quiet.code, 0) << quiet.err;
  EXPECT_TRUE(contains(quiet.err, "step 16/16 (100.0%)")) << quiet.err;
  EXPECT_FALSE(contains(quiet.err, "step 8/16")) << quiet.err;
  fs::remove_all(dir);
}

// A plugin refusing parameters that are each valid but do not fit together reads like the
// host's own configuration errors: one line, the plugin and the key, exit status 2.
TEST(Train, PluginParameterErrorIsOneLineWithExitStatus2) {
  const auto dir = jepa_test::temp_dir("jepa_train_param_error");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  for (const std::string& cmd : std::vector<std::string>{"run", "run --dry-run"}) {
    const auto r = run_jepa(cmd + " " + q(file) + " --set encoder.params.num_heads=5 --db " + q(db));
    EXPECT_EQ(r.code, 2) << r.err;
    EXPECT_TRUE(contains(r.err,
                         "error: encoder 'vit' (plugin encoder-vit) rejected its parameter 'num_heads': "
                         "width 32 is not divisible by 5 heads"))
        << r.err;
    EXPECT_FALSE(contains(r.err, "frame #")) << r.err;
    EXPECT_FALSE(contains(r.err, "Exception raised from")) << r.err;
  }
  EXPECT_FALSE(fs::exists(db) && jepa::store::Store(db).find_run(1).has_value()) << "nothing trains";
  fs::remove_all(dir);
}

namespace {

std::string sha256sum(const fs::path& file) {
  const fs::path out = file.string() + ".sum";
  if (std::system(("sha256sum " + q(file) + " > " + q(out)).c_str()) != 0) return "";
  return slurp(out).substr(0, 64);
}

}  // namespace

// Every checkpoint's digest is recorded when it is written and checked before it is used: one
// flipped byte makes resume, eval and export refuse it, naming the file, the run and both digests.
TEST(Train, DamagedCheckpointIsRefusedByResumeEvalAndExport) {
  const auto dir = jepa_test::temp_dir("jepa_train_damaged");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  ASSERT_EQ(run_jepa("run " + q(file) + " --no-eval --stop-after 5 --db " + q(db)).code, 0);
  std::string path;
  std::string recorded;
  {
    jepa::store::Store store(db);
    const auto ckpt = store.latest_artifact(1, "checkpoint");
    ASSERT_TRUE(ckpt);
    path = ckpt->path;
    recorded = ckpt->sha256;
  }
  ASSERT_EQ(recorded.size(), 64u);
  EXPECT_EQ(recorded, sha256sum(path)) << "the digest taken while writing is the file's";
  // Flip one byte in the middle of the file.
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(0, std::ios::end);
    const auto middle = static_cast<std::streamoff>(f.tellg()) / 2;
    f.seekg(middle);
    char c = 0;
    f.read(&c, 1);
    c = static_cast<char>(c ^ 0x20);
    f.seekp(middle);
    f.write(&c, 1);
  }
  const std::string found = sha256sum(path);
  ASSERT_NE(found, recorded);
  for (const std::string& cmd :
       std::vector<std::string>{"run --resume 1 --no-eval", "eval 1 --evaluator linear_probe --set epochs=1",
                                "export 1 -o " + q(dir / "out.pt")}) {
    const auto r = run_jepa(cmd + " --db " + q(db));
    EXPECT_NE(r.code, 0) << cmd;
    EXPECT_TRUE(contains(r.err, "checkpoint " + path + " of run 1 is damaged")) << cmd << ": " << r.err;
    EXPECT_TRUE(contains(r.err, found)) << r.err;
    EXPECT_TRUE(contains(r.err, recorded)) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir / "out.pt"));
  jepa::store::Store store(db);
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::killed) << "nothing is recorded as resumed";
  EXPECT_EQ(store.metrics(1, "train/loss").size(), 5u);
  EXPECT_TRUE(store.evaluations(1).empty());
  fs::remove_all(dir);
}

// A process killed between renaming a new checkpoint into place and recording its digest leaves a
// whole file newer than the record (a SLURM test met it: kill -9 of a job mid-checkpoint). Resume
// reads the file's own step, uses it with a note and records it; an older or equal step is still
// damage (above).
TEST(Train, CheckpointNewerThanItsRecordIsUsedAndRecorded) {
  const auto dir = jepa_test::temp_dir("jepa_train_newer");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const auto other = dir / "other.db";
  ASSERT_EQ(run_jepa("run " + q(file) + " --no-eval --stop-after 5 --db " + q(db)).code, 0);
  ASSERT_EQ(run_jepa("run " + q(file) + " --no-eval --stop-after 8 --db " + q(other)).code, 0);
  {
    // The same experiment and seed, and the same checkpoint folder: run 1 of the other database
    // wrote step 8 where this run wrote step 5, as this run would have before being killed.
    jepa::store::Store store(db);
    jepa::store::Store newer(other);
    ASSERT_EQ(store.latest_artifact(1, "checkpoint")->path, newer.latest_artifact(1, "checkpoint")->path);
  }
  const auto r = run_jepa("run --resume 1 --no-eval --db " + q(db));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "holds step 8, newer than the step 5 recorded for it")) << r.err;
  EXPECT_TRUE(contains(r.err, "resuming run 1 from step 8")) << r.err;
  jepa::store::Store store(db);
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::completed);
  fs::remove_all(dir);
}

TEST(Train, KilledProcessLeavesARunningRowAndResumes) {
  const auto dir = jepa_test::temp_dir("jepa_train_kill");
  const auto file = write_experiment(dir, 40);
  const auto db = dir / "jepa.db";
  const pid_t pid = start_until_first_checkpoint(file, db);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  {
    jepa::store::Store store(db);
    EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::running) << "a later command sees the zombie";
  }
  // Resuming continues from the checkpoint (stop after a few more steps to keep the test short).
  const auto r = run_jepa("run --resume 1 --no-eval --stop-after 3 --db " + q(db));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(contains(r.err, "resuming run 1 from step")) << r.err;
  fs::remove_all(dir);
}

TEST(Train, SigintStopsCleanlyAsKilled) {
  const auto dir = jepa_test::temp_dir("jepa_train_sigint");
  const auto file = write_experiment(dir, 40);
  const auto db = dir / "jepa.db";
  const pid_t pid = start_until_first_checkpoint(file, db);
  ASSERT_GT(pid, 0);
  ::kill(pid, SIGINT);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  jepa::store::Store store(db);
  const auto run = store.find_run(1);
  EXPECT_EQ(run->status, jepa::store::RunStatus::killed);
  EXPECT_TRUE(contains(run->reason, "interrupted by signal 2")) << run->reason;
  fs::remove_all(dir);
}

TEST(Train, NonFiniteLossFailsTheRunWithTheStep) {
  const auto dir = jepa_test::temp_dir("jepa_train_diverge");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const auto r = run_jepa("run " + q(file) + " --no-eval --db " + q(db) +
                          " --set optimization.lr=1e30 --set optimization.start_lr=1e30");
  EXPECT_EQ(r.code, 1);
  jepa::store::Store store(db);
  const auto run = store.find_run(1);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, jepa::store::RunStatus::failed);
  EXPECT_TRUE(contains(run->reason, "diverged at step ")) << run->reason;
  fs::remove_all(dir);
}

namespace {

// The tiny experiment with a small linear probe (1 epoch) every 2 steps and 6 steps in all.
std::string periodic(const std::string& extra = "") {
  return " --set optimization.max_steps=6 --set evaluation.0.epochs=1 --set evaluation.0.limit_train=128 "
         "--set evaluation.0.limit_test=64 --set evaluation.0.every=2" +
         extra;
}

std::vector<int64_t> evaluation_steps(jepa::store::Store& store, int64_t run, const std::string& metric) {
  std::vector<int64_t> steps;
  for (const auto& e : store.evaluations(run)) {
    if (e.evaluator == "linear_probe" && e.metric == metric) steps.push_back(e.step);
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

}  // namespace

TEST(Train, PeriodicEvaluationIsRecordedAndResumesExactly) {
  const auto dir = jepa_test::temp_dir("jepa_train_periodic");
  const auto file = write_experiment(dir, 1);
  const auto db_a = dir / "a.db";
  const auto db_b = dir / "b.db";
  // A: no evaluation at all. B: evaluation every 2 steps, stopped after 3 steps and resumed.
  ASSERT_EQ(run_jepa("run " + q(file) + " --no-eval --set optimization.max_steps=6 --db " + q(db_a)).code, 0);
  const auto stopped = run_jepa("run " + q(file) + periodic() + " --stop-after 3 --db " + q(db_b));
  ASSERT_EQ(stopped.code, 0) << stopped.err;
  EXPECT_TRUE(contains(stopped.err, "step 2: linear_probe top1=")) << stopped.err;
  EXPECT_FALSE(contains(stopped.err, "step 4: ")) << stopped.err;
  const auto resumed = run_jepa("run --resume 1 --db " + q(db_b));
  ASSERT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_TRUE(contains(resumed.err, "step 4: linear_probe top1=")) << resumed.err;
  EXPECT_FALSE(contains(resumed.err, "step 6: ")) << "the last step is evaluated once, by at_end";
  EXPECT_TRUE(contains(resumed.out, "linear_probe/top1 = ")) << resumed.out;

  jepa::store::Store store(db_b);
  EXPECT_EQ(store.find_run(1)->status, jepa::store::RunStatus::completed);
  // Every 2 steps during training, then at the end (step 6), each once.
  EXPECT_EQ(evaluation_steps(store, 1, "top1"), (std::vector<int64_t>{2, 4, 6}));
  std::vector<int64_t> metric_steps;
  for (const auto& m : store.metrics(1, "linear_probe/top1")) metric_steps.push_back(m.step);
  EXPECT_EQ(metric_steps, (std::vector<int64_t>{2, 4, 6}));
  // Evaluating draws nothing from the training's random state: the losses are those of A.
  const auto a = losses(db_a, 1);
  const auto b = losses(db_b, 1);
  ASSERT_EQ(a.size(), 6u);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], b[i]) << "step " << i + 1;
  fs::remove_all(dir);
}

TEST(Train, StopRuleThatHoldsPrunesTheRunWithACheckpoint) {
  const auto dir = jepa_test::temp_dir("jepa_train_prune");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const auto r =
      run_jepa("run " + q(file) + periodic(" --set 'evaluation.0.stop_when=top1 < 1000'") + " --db " + q(db));
  EXPECT_EQ(r.code, 0) << "a pruned run is not a failure: " << r.err;
  EXPECT_TRUE(contains(r.out, "PRUNED")) << r.out;
  jepa::store::Store store(db);
  const auto run = store.find_run(1);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, jepa::store::RunStatus::pruned);
  EXPECT_TRUE(contains(run->reason, "stop rule 'linear_probe/top1 < 1000' met at step 2 (value ")) << run->reason;
  const auto ckpt = store.latest_artifact(1, "checkpoint");
  ASSERT_TRUE(ckpt);
  EXPECT_EQ(ckpt->step, 2);
  EXPECT_TRUE(fs::exists(ckpt->path));
  EXPECT_EQ(losses(db, 1).size(), 2u) << "training stopped right away";
  EXPECT_EQ(evaluation_steps(store, 1, "top1"), (std::vector<int64_t>{2})) << "no evaluation at the end";
  fs::remove_all(dir);
}

TEST(Train, StopRuleOnAnUnknownMetricFailsTheRunNamingTheMetrics) {
  const auto dir = jepa_test::temp_dir("jepa_train_badrule");
  const auto file = write_experiment(dir, 1);
  const auto db = dir / "jepa.db";
  const auto r = run_jepa("run " + q(file) + periodic(" --set 'evaluation.0.stop_when=top5 > 50'") + " --db " + q(db));
  EXPECT_EQ(r.code, 1) << r.err;
  jepa::store::Store store(db);
  const auto run = store.find_run(1);
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, jepa::store::RunStatus::failed);
  EXPECT_TRUE(contains(run->reason,
                       "stop rule 'linear_probe/top5 > 50': linear_probe reports no metric 'top5'; "
                       "its metrics: top1, train_top1"))
      << run->reason;
  fs::remove_all(dir);
}

TEST(Train, BadConfigNamesFileLineAndKey) {
  const auto dir = jepa_test::temp_dir("jepa_train_badcfg");
  std::string text = tiny_experiment(dir, 1);
  text.replace(text.find("depth = 2"), 9, "dept = 2");
  std::ofstream(dir / "typo.toml") << text;
  const auto r = run_jepa("run " + q(dir / "typo.toml") + " --db " + q(dir / "x.db"));
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "typo.toml:17:")) << r.err;
  EXPECT_TRUE(contains(r.err, "unknown key 'dept'")) << r.err;
  EXPECT_FALSE(fs::exists(dir / "x.db")) << "nothing is recorded for a bad config";
  const auto s = run_jepa("run " + q(dir / "typo.toml") + " --set data.batch_size=0");
  EXPECT_EQ(s.code, 2);
  // A stop rule is checked for its form before anything runs.
  std::ofstream(dir / "rule.toml") << tiny_experiment(dir, 1) << "every = 2\nstop_when = \"top1 less than 3\"\n";
  const auto rule = run_jepa("run " + q(dir / "rule.toml") + " --db " + q(dir / "x.db"));
  EXPECT_EQ(rule.code, 2);
  EXPECT_TRUE(contains(rule.err, "rule.toml:41:1: [evaluation.0] stop_when: 'top1 less than 3' has no comparison"))
      << rule.err;
  EXPECT_FALSE(fs::exists(dir / "x.db"));
  fs::remove_all(dir);
}

TEST(Train, PaperRecipeValidatesAndBuildsItsModels) {
  const auto r = run_jepa("run '" JEPA_SOURCE_DIR "/experiments/ijepa_vith14_in1k.toml' --dry-run");
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.out, "630.435 M trainable parameters")) << r.out;
  EXPECT_TRUE(contains(r.out, "grid 16x16")) << r.out;
}

namespace {

// A small RGB PNG whose colour depends on its class, with per-image noise.
void write_png(const fs::path& path, int cls, int seed) {
  const int side = 24;
  std::vector<unsigned char> px(side * side * 3);
  for (int i = 0; i < side * side; ++i) {
    px[i * 3 + 0] = static_cast<unsigned char>(cls == 0 ? 200 : 40 + (i * 7 + seed) % 50);
    px[i * 3 + 1] = static_cast<unsigned char>((i * 13 + seed * 31) % 255);
    px[i * 3 + 2] = static_cast<unsigned char>(cls == 1 ? 220 : 30);
  }
  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = side;
  image.height = side;
  image.format = PNG_FORMAT_RGB;
  fs::create_directories(path.parent_path());
  ASSERT_NE(png_image_write_to_file(&image, path.c_str(), 0, px.data(), 0, nullptr), 0);
}

}  // namespace

TEST(Train, ImageFolderWithRandomCropsTrainsAndProbes) {
  const auto dir = jepa_test::temp_dir("jepa_train_folder");
  for (const char* split : {"train", "val"}) {
    for (int cls = 0; cls < 2; ++cls) {
      for (int i = 0; i < (std::string(split) == "train" ? 24 : 8); ++i) {
        write_png(dir / "images" / split / (cls == 0 ? "red" : "blue") / ("img" + std::to_string(i) + ".png"), cls, i);
      }
    }
  }
  std::ofstream(dir / "images" / "train" / "red" / "broken.png") << "not a png";
  const fs::path file = dir / "folder.toml";
  std::ofstream(file) << "[run]\nthreads = 2\n"
                         "[data]\ndataset = \"image_folder\"\npath = \""
                      << (dir / "images").string()
                      << "\"\nimage_size = 16\nbatch_size = 8\nrandom_crop = true\n"
                         "[masking]\nstrategy = \"block\"\n"
                         "[encoder]\nplugin = \"vit\"\n[encoder.params]\nsize = \"custom\"\nembed_dim = 16\ndepth = 1\n"
                         "num_heads = 2\nimg_size = 16\npatch_size = 4\n"
                         "[predictor]\nplugin = \"vit_predictor\"\n[predictor.params]\nembed_dim = 8\ndepth = 1\n"
                         "[optimization]\nepochs = 2\nwarmup = 0\n"
                         "[checkpoint]\ndir = \""
                      << (dir / "runs").string()
                      << "\"\n[logging]\nevery = 1\n"
                         "[[evaluation]]\nevaluator = \"linear_probe\"\nepochs = 200\nlr = 0.01\n";
  const auto db = dir / "jepa.db";
  const auto r = run_jepa("run " + q(file) + " --db " + q(db));
  ASSERT_EQ(r.code, 0) << r.out << r.err;
  EXPECT_TRUE(contains(r.err, "broken.png")) << "the corrupt file is named once: " << r.err;
  jepa::store::Store store(db);
  const auto run = store.find_run(1);
  EXPECT_EQ(run->status, jepa::store::RunStatus::completed);
  EXPECT_EQ(store.params(1).at("data.mean"), "[0.485, 0.456, 0.406]") << "ImageNet statistics by default";
  double top1 = -1;
  for (const auto& e : store.evaluations(1)) {
    if (e.metric == "top1") top1 = e.value;
  }
  EXPECT_GT(top1, 90.0) << "two colour classes are linearly separable: " << r.out;
  fs::remove_all(dir);
}

TEST(Train, MissingDatasetIsAClearErrorBeforeTraining) {
  const auto dir = jepa_test::temp_dir("jepa_train_nodata");
  const auto file = write_experiment(dir, 1);
  const auto r = run_jepa("run " + q(file) + " --db " + q(dir / "x.db") + " --set data.path=/nonexistent/fmnist");
  EXPECT_NE(r.code, 0);
  EXPECT_TRUE(contains(r.err, "/nonexistent/fmnist")) << r.err;
  fs::remove_all(dir);
}
