// Experiment files: defaults, every kind of error (with its file:line prefix), --set overrides,
// the resolved JSON round trip and flatten(). Runs against the real masking plugins, the
// tiny_encoder fixture and the config_components fixture (a predictor and two evaluators).
#include "config/experiment.hpp"
#include "data/dataset.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <functional>
#include <limits>

namespace fs = std::filesystem;
using jepa::config::ConfigError;
using jepa::config::Experiment;
using jepa::config::experiment_from_json;
using jepa::config::flatten;
using jepa::config::load_experiment;
using jepa::loader::Kind;
using jepa::loader::ParamValue;

namespace {

const jepa::loader::Registry& registry() {
  static const auto reg =
      jepa::loader::Registry::discover({fs::path(JEPA_PLUGIN_DIR), fs::path(JEPA_FIXTURE_DIR) / "tiny_encoder",
                                        fs::path(JEPA_FIXTURE_DIR) / "config_components"});
  return reg;
}

// A fresh folder per test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() /
            ("jepa_experiment_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  fs::path write(const std::string& name, const std::string& text) const {
    const fs::path file = path_ / name;
    std::ofstream(file) << text;
    return file;
  }

 private:
  fs::path path_;
};

// The three required choices, on lines 1-6.
const std::string kRequired = R"([masking]
strategy = "multiblock"
[encoder]
plugin = "tiny_encoder"
[predictor]
plugin = "fixture_predictor"
)";

class ExperimentTest : public testing::Test {
 protected:
  void SetUp() override {
    for (auto [kind, id] : {std::pair{Kind::masking, "multiblock"}, std::pair{Kind::masking, "random"},
                            std::pair{Kind::encoder, "tiny_encoder"}, std::pair{Kind::predictor, "fixture_predictor"},
                            std::pair{Kind::evaluator, "fixture_evaluator"}}) {
      ASSERT_NE(registry().find(kind, id), nullptr) << id << " not loaded";
    }
  }

  Experiment load(const std::string& text, const std::vector<std::string>& overrides = {}) {
    file_ = dir_.write("exp.toml", text);
    return load_experiment(file_, overrides, registry());
  }

  // The ConfigError's message, or "(no error)".
  std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    try {
      load(text, overrides);
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "(no error)";
  }

  // "<file>:<line>:" as errors start.
  std::string at(int line) const { return file_.string() + ":" + std::to_string(line) + ":"; }

  TempDir dir_;
  fs::path file_;
};

testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.compare(0, prefix.size(), prefix) == 0) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << text << "' does not start with '" << prefix << "'";
}

testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

template <class T>
T param(const jepa::config::ComponentChoice& c, const std::string& name) {
  const ParamValue* v = c.params.find(name);
  if (v == nullptr) throw std::runtime_error("no parameter " + name);
  return std::get<T>(*v);
}

// ---------------------------------------------------------------- valid files

TEST_F(ExperimentTest, MinimalFileFillsEveryDefault) {
  const Experiment e = load(kRequired);
  const Experiment d;
  EXPECT_EQ(e.source, file_);
  EXPECT_EQ(e.name, "exp");  // the file's stem
  EXPECT_EQ(e.seed, d.seed);
  EXPECT_EQ(e.device, "auto");
  EXPECT_EQ(e.precision, "auto");
  EXPECT_EQ(e.dataset, "fashion_mnist");
  EXPECT_EQ(e.path, jepa::data::fashion_mnist_default_path());  // the Debian folder unless JEPA_FASHION_MNIST
  EXPECT_EQ(e.batch_size, 128);
  EXPECT_EQ(e.mean, (std::vector<double>{0.2860}));
  EXPECT_EQ(e.crop_scale, d.crop_scale);
  EXPECT_DOUBLE_EQ(e.lr, 1e-3);
  EXPECT_EQ(e.ema, d.ema);
  EXPECT_EQ(e.checkpoint_dir, "");  // runs/ next to the results database
  EXPECT_EQ(e.log_every, 10);
  EXPECT_TRUE(e.evaluators.empty());

  EXPECT_EQ(e.masking.id, "multiblock");
  EXPECT_EQ(e.masking.component, registry().find(Kind::masking, "multiblock"));
  EXPECT_EQ(param<int64_t>(e.masking, "npred"), 4);
  EXPECT_EQ(e.encoder.params.values.size(), 3u);
  EXPECT_EQ(param<int64_t>(e.encoder, "dim"), 8);
  EXPECT_EQ(param<int64_t>(e.predictor, "depth"), 6);

  // Every section, every key, defaults included.
  const auto& r = e.resolved;
  EXPECT_EQ(r["run"].size(), 6u);
  EXPECT_EQ(r["data"].size(), 13u);
  EXPECT_EQ(r["data"]["workers"], -1);  // auto
  EXPECT_EQ(r["data"]["prefetch"], 3);
  EXPECT_EQ(r["data"]["eval_transform"], "auto");
  EXPECT_EQ(r["optimization"].size(), 10u);
  EXPECT_EQ(r["checkpoint"].size(), 2u);
  EXPECT_EQ(r["logging"].size(), 1u);
  EXPECT_EQ(r["run"]["name"], "exp");
  EXPECT_EQ(r["data"]["path"], e.path);
  EXPECT_DOUBLE_EQ(r["optimization"]["final_lr"].get<double>(), 1e-6);
  EXPECT_EQ(r["optimization"]["epochs"], 300);
  EXPECT_EQ(r["masking"]["strategy"], "multiblock");
  EXPECT_EQ(r["masking"]["version"], e.masking.component->version);
  EXPECT_EQ(r["masking"]["params"].size(), e.masking.component->params.size());
  EXPECT_EQ(r["encoder"]["plugin"], "tiny_encoder");
  EXPECT_EQ(r["predictor"]["version"], 2);
  EXPECT_EQ(r["predictor"]["params"]["norm"], true);
  EXPECT_TRUE(r["evaluation"].is_array());
}

const std::string kFull = R"([run]
name = "full"
seed = 7
threads = 3
device = "cpu"

[data]
dataset = "fashion_mnist"
path = "/data/fm"
image_size = 32
batch_size = 64
workers = 0
random_crop = true
crop_scale = [0.5, 1]
mean = [0.5]
std = [0.25]
limit_train = 1000

[masking]
strategy = "multiblock"
[masking.params]
npred = 2
pred_scale = [0.1, 0.3]
allow_overlap = true

[encoder]
plugin = "tiny_encoder"
[encoder.params]
dim = 16

[predictor]
plugin = "fixture_predictor"
[predictor.params]
depth = 3
dropout = 0      # an integer is a valid float

[optimization]
epochs = 10
max_steps = 500
ipe_scale = 2
start_lr = 1e-4
lr = 1
final_lr = 0.0
warmup = 2.5
weight_decay = 0.01
final_weight_decay = 0.1
ema = [0.99, 1]

[checkpoint]
every = 100
dir = "out"

[logging]
every = 5

[[evaluation]]
evaluator = "fixture_evaluator"
epochs = 3
mode = "mlp"
betas = [0.5, 0.6]
every = 50
at_end = false
stop_when = "top1 < 20"

[[evaluation]]
evaluator = "fixture_monitor"
params = { every = 5 }
)";

// JEPA_FASHION_MNIST moves the default dataset folder (the offline GPU check unpacks the dataset
// under .deps/); an explicit path still wins, and unset or empty means Debian's folder.
TEST_F(ExperimentTest, FashionMnistDefaultFollowsTheEnvironment) {
  const char* before = std::getenv("JEPA_FASHION_MNIST");
  const std::string saved = before != nullptr ? before : "";
  ::setenv("JEPA_FASHION_MNIST", "/carried/fashion-mnist", 1);
  EXPECT_EQ(load(kRequired).path, "/carried/fashion-mnist");
  EXPECT_EQ(load(kRequired).resolved["data"]["path"], "/carried/fashion-mnist");
  EXPECT_EQ(load(kRequired + "[data]\npath = \"/mine\"\n").path, "/mine");
  ::setenv("JEPA_FASHION_MNIST", "", 1);
  EXPECT_EQ(load(kRequired).path, "/usr/share/datasets/fashion-mnist");
  ::unsetenv("JEPA_FASHION_MNIST");
  EXPECT_EQ(load(kRequired).path, "/usr/share/datasets/fashion-mnist");
  if (before != nullptr) ::setenv("JEPA_FASHION_MNIST", saved.c_str(), 1);
}

TEST_F(ExperimentTest, FullFileSetsEveryKey) {
  const Experiment e = load(kFull);
  EXPECT_EQ(e.name, "full");
  EXPECT_EQ(e.seed, 7u);
  EXPECT_EQ(e.threads, 3);
  EXPECT_EQ(e.device, "cpu");
  EXPECT_EQ(e.path, "/data/fm");
  EXPECT_EQ(e.image_size, 32);
  EXPECT_EQ(e.batch_size, 64);
  EXPECT_EQ(e.workers, 0);
  EXPECT_TRUE(e.random_crop);
  EXPECT_EQ(e.crop_scale, (std::array<double, 2>{0.5, 1.0}));
  EXPECT_EQ(e.mean, (std::vector<double>{0.5}));
  EXPECT_EQ(e.std, (std::vector<double>{0.25}));
  EXPECT_EQ(e.limit_train, 1000);
  EXPECT_EQ(param<int64_t>(e.masking, "npred"), 2);
  EXPECT_EQ(param<std::vector<double>>(e.masking, "pred_scale"), (std::vector<double>{0.1, 0.3}));
  EXPECT_TRUE(param<bool>(e.masking, "allow_overlap"));
  EXPECT_EQ(param<int64_t>(e.masking, "nenc"), 1);  // untouched keys keep the plugin's default
  EXPECT_EQ(param<int64_t>(e.encoder, "dim"), 16);
  EXPECT_EQ(param<int64_t>(e.predictor, "depth"), 3);
  EXPECT_EQ(param<double>(e.predictor, "dropout"), 0.0);
  EXPECT_EQ(e.epochs, 10);
  EXPECT_EQ(e.max_steps, 500);
  EXPECT_DOUBLE_EQ(e.ipe_scale, 2.0);
  EXPECT_DOUBLE_EQ(e.start_lr, 1e-4);
  EXPECT_DOUBLE_EQ(e.lr, 1.0);
  EXPECT_DOUBLE_EQ(e.final_lr, 0.0);
  EXPECT_DOUBLE_EQ(e.warmup, 2.5);
  EXPECT_DOUBLE_EQ(e.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(e.final_weight_decay, 0.1);
  EXPECT_EQ(e.ema, (std::array<double, 2>{0.99, 1.0}));
  EXPECT_EQ(e.checkpoint_every, 100);
  EXPECT_EQ(e.checkpoint_dir, "out");
  EXPECT_EQ(e.log_every, 5);
  ASSERT_EQ(e.evaluators.size(), 2u);
  EXPECT_EQ(e.evaluators[0].id, "fixture_evaluator");
  EXPECT_EQ(param<int64_t>(e.evaluators[0], "epochs"), 3);
  EXPECT_DOUBLE_EQ(param<double>(e.evaluators[0], "lr"), 0.1);
  EXPECT_EQ(param<std::string>(e.evaluators[0], "mode"), "mlp");
  EXPECT_EQ(param<std::vector<double>>(e.evaluators[0], "betas"), (std::vector<double>{0.5, 0.6}));
  EXPECT_EQ(e.evaluators[1].id, "fixture_monitor");
  EXPECT_EQ(e.evaluators[1].component, registry().find(Kind::evaluator, "fixture_monitor"));
  EXPECT_EQ(e.evaluators[0].every, 50);
  EXPECT_FALSE(e.evaluators[0].at_end);
  EXPECT_EQ(e.evaluators[0].stop_when, "top1 < 20");
  ASSERT_TRUE(e.evaluators[0].stop_rule);
  EXPECT_EQ(e.evaluators[0].stop_rule->text(), "top1 < 20");
  EXPECT_EQ(param<int64_t>(e.evaluators[1], "every"), 5);  // the monitor's own `every`, via params
  EXPECT_EQ(e.evaluators[1].every, 0);
  EXPECT_TRUE(e.evaluators[1].at_end);
  EXPECT_FALSE(e.evaluators[1].stop_rule);
  EXPECT_EQ(e.resolved["evaluation"][0]["params"]["epochs"], 3);
  EXPECT_EQ(e.resolved["evaluation"][0]["every"], 50);
  EXPECT_EQ(e.resolved["evaluation"][0]["at_end"], false);
  EXPECT_EQ(e.resolved["evaluation"][0]["stop_when"], "top1 < 20");
  EXPECT_EQ(e.resolved["evaluation"][0]["params"].count("every"), 0u);
  EXPECT_EQ(e.resolved["evaluation"][1]["params"]["every"], 5);
  EXPECT_EQ(e.resolved["evaluation"][1]["evaluator"], "fixture_monitor");
}

TEST_F(ExperimentTest, ImageFolderSwitchesNormalisationAndNeedsAPath) {
  const Experiment e = load(kRequired + "[data]\ndataset = \"image_folder\"\npath = \"/photos\"\n");
  EXPECT_EQ(e.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(e.std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(e.path, "/photos");
  // A mean the user chose is kept (one value serves every channel).
  const Experiment chosen = load(kRequired + "[data]\ndataset = \"image_folder\"\npath = \"/p\"\nmean = [0.5]\n");
  EXPECT_EQ(chosen.mean, (std::vector<double>{0.5}));
  EXPECT_EQ(chosen.std, (std::vector<double>{0.229, 0.224, 0.225}));

  // No path: the error points at the [data] table (line 7).
  const std::string no_path = error_of(kRequired + "[data]\ndataset = \"image_folder\"\n");
  EXPECT_TRUE(starts_with(no_path, at(7)));
  EXPECT_TRUE(contains(no_path, "[data] path: required when dataset = \"image_folder\""));
  // Channel count: 3 means for 1-channel Fashion-MNIST, 2 for RGB.
  const std::string three = error_of(kRequired + "[data]\nmean = [0.1, 0.2, 0.3]\n");
  EXPECT_TRUE(starts_with(three, at(8)));
  EXPECT_TRUE(contains(three, "[data] mean: has 3 values; fashion_mnist images have 1 channel"));
  const std::string two = error_of(kRequired + "[data]\ndataset = \"image_folder\"\npath = \"/p\"\nstd = [0.2, 0.2]\n");
  EXPECT_TRUE(starts_with(two, at(10)));
  EXPECT_TRUE(contains(two, "[data] std: has 2 values; image_folder images have 3 channels"));
}

// ---------------------------------------------------------------- errors in files

TEST_F(ExperimentTest, UnknownSection) {
  const std::string err = error_of(kRequired + "[optimisation]\nlr = 1\n");
  EXPECT_TRUE(starts_with(err, at(7)));
  EXPECT_TRUE(contains(err,
                       "unknown section [optimisation]; valid sections: run, data, masking, encoder, "
                       "predictor, objective, optimization, checkpoint, logging, evaluation"));
  const std::string loose = error_of("seed = 1\n" + kRequired);
  EXPECT_TRUE(starts_with(loose, at(1) + "1: "));
  EXPECT_TRUE(contains(loose, "key 'seed' is outside any section ('seed' belongs in [run])"));
  const std::string single = error_of(kRequired + "[evaluation]\nevaluator = \"fixture_evaluator\"\n");
  EXPECT_TRUE(starts_with(single, at(7)));
  EXPECT_TRUE(contains(single, "write each as [[evaluation]]"));
}

TEST_F(ExperimentTest, SweepTableIsLeftToTheSweepReader) {
  // A sweep file is its base experiment plus [sweep] (with keys the experiment knows nothing of).
  const Experiment e = load(kRequired +
                            "[optimization]\nlr = 0.002\n[sweep]\nmethod = \"grid\"\nseeds = [0, 1]\n"
                            "[sweep.params]\n\"optimization.lr\" = [1e-3, 2e-3]\n[sweep.pruning]\nrule = \"asha\"\n");
  EXPECT_DOUBLE_EQ(e.lr, 0.002);
  EXPECT_EQ(e.seed, 0);
  EXPECT_EQ(e.resolved.count("sweep"), 0u);
  // Only the table, and only in files.
  const std::string loose = error_of("sweep = 1\n" + kRequired);
  EXPECT_TRUE(starts_with(loose, at(1) + "1: "));
  EXPECT_TRUE(contains(loose, "key 'sweep' is outside any section"));
  EXPECT_TRUE(contains(error_of(kRequired + "[sweep]\n", {"sweep.method=grid"}), "unknown section [sweep]"));
  nlohmann::json stored = e.resolved;
  stored["sweep"] = nlohmann::json::object();
  try {
    experiment_from_json(stored, registry());
    ADD_FAILURE() << "a stored config with [sweep] loaded";
  } catch (const ConfigError& x) {
    EXPECT_TRUE(starts_with(x.what(), "stored config: unknown section [sweep]"));
  }
}

TEST_F(ExperimentTest, UnknownKeysInHostAndPluginSections) {
  const std::string host = error_of(kRequired + "[data]\nbatch_size = 4\nbatchsize = 4\n");
  EXPECT_TRUE(starts_with(host, at(9) + "1: "));
  EXPECT_TRUE(contains(host,
                       "[data] unknown key 'batchsize'; valid keys: dataset, path, image_size, batch_size, "
                       "workers, prefetch, random_crop, crop_scale, horizontal_flip, eval_transform, mean, std, "
                       "limit_train"));

  const std::string param = error_of(kRequired + "[encoder.params]\ndim = 4\ndimm = 4\n");
  EXPECT_TRUE(starts_with(param, at(9) + "1: "));
  EXPECT_TRUE(contains(param,
                       "[encoder.params] unknown key 'dimm' for encoder 'tiny_encoder' (plugin "
                       "fixture-tiny-encoder); valid keys: dim, patch, image"));

  // A parameter written next to the plugin id instead of in [encoder.params].
  const std::string misplaced = error_of(R"([encoder]
plugin = "tiny_encoder"
dim = 4
[masking]
strategy = "multiblock"
[predictor]
plugin = "fixture_predictor"
)");
  EXPECT_TRUE(starts_with(misplaced, at(3)));
  EXPECT_TRUE(contains(misplaced,
                       "[encoder] unknown key 'dim'; valid keys: plugin, params (parameters go in "
                       "[encoder.params])"));

  const std::string eval = error_of(kRequired + "[[evaluation]]\nevaluator = \"fixture_evaluator\"\nepoch = 3\n");
  EXPECT_TRUE(starts_with(eval, at(9)));
  EXPECT_TRUE(contains(
      eval,
      "[evaluation.0] unknown key 'epoch' for evaluator 'fixture_evaluator' (plugin "
      "fixture-config-components); valid keys: evaluator, every, at_end, stop_when, baselines, params, epochs, "
      "lr, mode, betas"));
}

TEST_F(ExperimentTest, WrongTypes) {
  const std::string lr = error_of(kRequired + "[optimization]\nlr = \"fast\"\n");
  EXPECT_TRUE(starts_with(lr, at(8) + "1: "));
  EXPECT_TRUE(contains(lr, "[optimization] lr: expects a value of type float"));
  // A float is never an integer, even a whole one.
  const std::string epochs = error_of(kRequired + "[optimization]\nepochs = 3.0\n");
  EXPECT_TRUE(starts_with(epochs, at(8)));
  EXPECT_TRUE(contains(epochs, "[optimization] epochs: expects a value of type int"));
  const std::string list = error_of(kRequired + "[data]\ncrop_scale = [\"a\", 1]\n");
  EXPECT_TRUE(starts_with(list, at(8)));
  EXPECT_TRUE(contains(list, "[data] crop_scale: expects a value of type list"));
  const std::string flag = error_of(kRequired + "[data]\nrandom_crop = 1\n");
  EXPECT_TRUE(contains(flag, "[data] random_crop: expects a value of type bool"));
  const std::string param = error_of(kRequired + "[encoder.params]\ndim = 2.0\n");
  EXPECT_TRUE(starts_with(param, at(8)));
  EXPECT_TRUE(contains(param, "[encoder.params] dim: expects a value of type int"));
  const std::string id = error_of("[masking]\nstrategy = 3\n" + kRequired.substr(kRequired.find("[encoder]")));
  EXPECT_TRUE(starts_with(id, at(2)));
  EXPECT_TRUE(contains(id, "[masking] strategy: expects a value of type string"));
}

TEST_F(ExperimentTest, OutOfRange) {
  const std::string batch = error_of(kRequired + "[data]\nbatch_size = 0\n");
  EXPECT_TRUE(starts_with(batch, at(8) + "1: "));
  EXPECT_TRUE(contains(batch, "[data] batch_size: 0 is outside the allowed range [1, inf]"));
  const std::string param = error_of(kRequired + "[encoder.params]\ndim = 100\n");
  EXPECT_TRUE(starts_with(param, at(8)));
  EXPECT_TRUE(contains(param, "[encoder.params] dim: 100 is outside the allowed range [1, 64]"));
  // Exclusive bounds: ipe_scale > 0, crop_scale in (0, 1].
  EXPECT_TRUE(contains(error_of(kRequired + "[optimization]\nipe_scale = 0\n"),
                       "[optimization] ipe_scale: 0 is outside the allowed range (0, inf]"));
  EXPECT_TRUE(contains(error_of(kRequired + "[data]\ncrop_scale = [0, 1]\n"),
                       "[data] crop_scale: 0 is outside the allowed range (0, 1]"));
  EXPECT_TRUE(
      contains(error_of(kRequired + "[run]\ndevice = \"tpu\"\n"), "[run] device: 'tpu' is not one of auto, cpu, cuda"));
  EXPECT_TRUE(contains(error_of(kRequired + "[run]\nprecision = \"fp16\"\n"),
                       "[run] precision: 'fp16' is not one of auto, fp32, bf16"));
  EXPECT_TRUE(
      contains(error_of(kRequired + "[optimization]\nema = [0.9]\n"), "[optimization] ema: expects 2 numbers, got 1"));
  EXPECT_TRUE(contains(error_of(kRequired + "[logging]\nevery = 0\n"), "[logging] every: 0 is outside"));
  EXPECT_TRUE(contains(error_of(kRequired + "[run]\nseed = -1\n"), "[run] seed: -1 is outside"));
  const std::string eval = error_of(kRequired + "[[evaluation]]\nevaluator = \"fixture_evaluator\"\nmode = \"x\"\n");
  EXPECT_TRUE(starts_with(eval, at(9)));
  EXPECT_TRUE(contains(eval, "[evaluation.0] mode: 'x' is not one of linear, mlp"));
}

TEST_F(ExperimentTest, UnknownPluginId) {
  const std::string err = error_of(kRequired.substr(0, kRequired.find("[encoder]")) +
                                   "[encoder]\nplugin = \"vitt\"\n[predictor]\nplugin = \"fixture_predictor\"\n");
  EXPECT_TRUE(starts_with(err, at(4) + "1: "));
  EXPECT_TRUE(contains(err, "[encoder] plugin: unknown encoder 'vitt'; available: "));
  EXPECT_TRUE(contains(err, "tiny_encoder"));
  const std::string eval = error_of(kRequired + "[[evaluation]]\nevaluator = \"probe\"\n");
  EXPECT_TRUE(starts_with(eval, at(8)));
  EXPECT_TRUE(contains(eval, "[evaluation.0] evaluator: unknown evaluator 'probe'; available: "));
  EXPECT_TRUE(contains(eval, "fixture_evaluator"));
}

TEST_F(ExperimentTest, MissingRequiredKeys) {
  // The table is there without its id: the error points at the table.
  const std::string in_table =
      error_of(kRequired.substr(0, kRequired.find("[predictor]")) + "\n[predictor]\n[predictor.params]\ndepth = 2\n");
  EXPECT_TRUE(starts_with(in_table, at(6)));
  EXPECT_TRUE(contains(in_table, "[predictor] missing required key 'plugin'; available: "));
  EXPECT_TRUE(contains(in_table, "fixture_predictor"));
  // No table at all: the start of the file.
  const std::string absent = error_of(kRequired.substr(kRequired.find("[encoder]")));
  EXPECT_TRUE(starts_with(absent, at(1) + "1: "));
  EXPECT_TRUE(contains(absent, "[masking] missing required key 'strategy'; available: "));
  EXPECT_TRUE(contains(absent, "multiblock"));
  const std::string eval = error_of(kRequired + "[[evaluation]]\nepochs = 3\n");
  EXPECT_TRUE(starts_with(eval, at(7)));
  EXPECT_TRUE(contains(eval, "[evaluation.0] missing required key 'evaluator'"));
}

TEST_F(ExperimentTest, SyntaxErrorAndMissingFile) {
  const std::string err = error_of(kRequired + "[data]\nbatch_size = = 3\n");
  EXPECT_TRUE(starts_with(err, at(8)));
  EXPECT_TRUE(contains(err, ": TOML syntax error: "));
  const fs::path missing = file_.parent_path() / "nope.toml";
  try {
    load_experiment(missing, {}, registry());
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), missing.string() + ": cannot open experiment file");
  }
}

// ---------------------------------------------------------------- --set

TEST_F(ExperimentTest, OverridesOfHostKeys) {
  // --set replaces the file's value before it is checked, so a bad file value can be fixed.
  const Experiment e = load(kRequired + "[data]\nbatch_size = 0\n",
                            {"optimization.lr=5e-4", "data.batch_size=32", "data.crop_scale=[0.5, 1]",
                             "data.random_crop=true", "run.name=\"sweep-1\"", "run.seed=3", "optimization.lr=2e-4"});
  EXPECT_DOUBLE_EQ(e.lr, 2e-4);  // the last one wins
  EXPECT_EQ(e.batch_size, 32);
  EXPECT_EQ(e.crop_scale, (std::array<double, 2>{0.5, 1.0}));
  EXPECT_TRUE(e.random_crop);
  EXPECT_EQ(e.name, "sweep-1");
  EXPECT_EQ(e.seed, 3u);
  EXPECT_DOUBLE_EQ(e.resolved["optimization"]["lr"].get<double>(), 2e-4);
  // An explicit mean by --set is kept for image folders.
  const Experiment folder = load(kRequired, {"data.dataset=image_folder", "data.path=/p", "data.mean=[0.1,0.2,0.3]"});
  EXPECT_EQ(folder.mean, (std::vector<double>{0.1, 0.2, 0.3}));
  EXPECT_EQ(folder.std, (std::vector<double>{0.229, 0.224, 0.225}));
}

TEST_F(ExperimentTest, OverridesOfPluginParamsAndIds) {
  const Experiment e = load(kRequired + "[encoder.params]\ndim = 16\n",
                            {"encoder.params.dim=32", "masking.params.npred=2", "predictor.params.norm=false"});
  EXPECT_EQ(param<int64_t>(e.encoder, "dim"), 32);
  EXPECT_EQ(param<int64_t>(e.masking, "npred"), 2);
  EXPECT_FALSE(param<bool>(e.predictor, "norm"));

  // A strategy switch; its parameter may come first: ids are applied before parameters.
  const Experiment r = load(kRequired, {"masking.params.ratio=[0.7,0.8]", "masking.strategy=random"});
  EXPECT_EQ(r.masking.id, "random");
  EXPECT_EQ(r.masking.component, registry().find(Kind::masking, "random"));
  EXPECT_EQ(param<std::vector<double>>(r.masking, "ratio"), (std::vector<double>{0.7, 0.8}));
  EXPECT_EQ(r.resolved["masking"]["strategy"], "random");

  // The file's parameters are checked against the new plugin: a stale one is an error in the file.
  const std::string stale = error_of(kRequired + "[masking.params]\nnpred = 2\n", {"masking.strategy=random"});
  EXPECT_TRUE(starts_with(stale, at(8)));
  EXPECT_TRUE(contains(stale, "[masking.params] unknown key 'npred' for masking 'random'"));
}

TEST_F(ExperimentTest, OverridesOfEvaluations) {
  const std::string evals = kRequired +
                            "[[evaluation]]\nevaluator = \"fixture_evaluator\"\n"
                            "[[evaluation]]\nevaluator = \"fixture_evaluator\"\n";
  const Experiment e = load(evals, {"evaluation.0.epochs=5", "evaluation.1.params.lr=0.5", "evaluation.1.mode=mlp"});
  ASSERT_EQ(e.evaluators.size(), 2u);
  EXPECT_EQ(param<int64_t>(e.evaluators[0], "epochs"), 5);
  EXPECT_EQ(param<int64_t>(e.evaluators[1], "epochs"), 30);
  EXPECT_DOUBLE_EQ(param<double>(e.evaluators[1], "lr"), 0.5);
  EXPECT_EQ(param<std::string>(e.evaluators[1], "mode"), "mlp");
  // `every` is the host's key; the monitor's own parameter of that name is reached through params.
  const Experiment swapped =
      load(evals, {"evaluation.1.evaluator=fixture_monitor", "evaluation.1.every=7", "evaluation.1.params.every=9"});
  EXPECT_EQ(swapped.evaluators[1].id, "fixture_monitor");
  EXPECT_EQ(swapped.evaluators[1].every, 7);
  EXPECT_EQ(param<int64_t>(swapped.evaluators[1], "every"), 9);

  const std::string beyond = error_of(evals, {"evaluation.2.epochs=5"});
  EXPECT_EQ(beyond,
            "--set evaluation.2.epochs=5: expects evaluation.<index>.<key>; the experiment has 2 "
            "[[evaluation]] (indices 0..1)");
}

TEST_F(ExperimentTest, BadOverrides) {
  const auto err = [&](const std::string& set) { return error_of(kRequired, {set}); };
  EXPECT_TRUE(starts_with(err("nonsense"), "--set nonsense: 'nonsense' is not of the form key=value"));
  EXPECT_TRUE(starts_with(err("lr=1"), "--set lr=1: 'lr' is not a key like section.key"));
  EXPECT_EQ(err("optimization.lrr=1"),
            "--set optimization.lrr=1: [optimization] unknown key 'lrr'; valid keys: epochs, max_steps, ipe_scale, "
            "start_lr, lr, final_lr, warmup, weight_decay, final_weight_decay, ema");
  EXPECT_TRUE(starts_with(err("foo.bar=1"), "--set foo.bar=1: unknown section [foo]; valid sections: run, data,"));
  EXPECT_TRUE(starts_with(err("data.batch_size=0"),
                          "--set data.batch_size=0: [data]: parameter 'batch_size': 0 is outside the allowed range"));
  EXPECT_TRUE(starts_with(err("data.batch_size=abc"),
                          "--set data.batch_size=abc: [data]: parameter 'batch_size' expects an integer (got 'abc')"));
  EXPECT_TRUE(
      starts_with(err("optimization.ipe_scale=0"),
                  "--set optimization.ipe_scale=0: [optimization] ipe_scale: 0 is outside the allowed range (0"));
  EXPECT_TRUE(starts_with(err("encoder.params.dimm=3"),
                          "--set encoder.params.dimm=3: [encoder.params] unknown key 'dimm' for encoder "
                          "'tiny_encoder' (plugin fixture-tiny-encoder); valid keys: dim, patch, image"));
  EXPECT_TRUE(starts_with(err("encoder.params.dim=0"), "--set encoder.params.dim=0: encoder 'tiny_encoder'"));
  EXPECT_EQ(err("encoder.dim=4"),
            "--set encoder.dim=4: [encoder] unknown key 'dim'; valid keys: plugin, params.dim, params.patch, "
            "params.image (did you mean encoder.params.dim?)");
  EXPECT_TRUE(starts_with(err("encoder.plugin=vitt"),
                          "--set encoder.plugin=vitt: [encoder] plugin: unknown encoder 'vitt'; available: "));
  EXPECT_TRUE(starts_with(err("evaluation.0.epochs=5"),
                          "--set evaluation.0.epochs=5: expects evaluation.<index>.<key>; the experiment has no "
                          "[[evaluation]]"));
  EXPECT_TRUE(starts_with(err("data.mean=[0.1,0.2]"),
                          "--set data.mean=[0.1,0.2]: [data] mean: has 2 values; fashion_mnist images have 1"));
}

// ---------------------------------------------------------------- when evaluators run

const std::string kEvaluation = kRequired + "[[evaluation]]\nevaluator = \"fixture_evaluator\"\n";  // line 7-8

TEST_F(ExperimentTest, EvaluationScheduleDefaults) {
  const Experiment e = load(kEvaluation);
  ASSERT_EQ(e.evaluators.size(), 1u);
  EXPECT_EQ(e.evaluators[0].every, 0);
  EXPECT_TRUE(e.evaluators[0].at_end);
  EXPECT_EQ(e.evaluators[0].stop_when, "");
  EXPECT_FALSE(e.evaluators[0].stop_rule);
  const auto& r = e.resolved["evaluation"][0];
  EXPECT_EQ(r["every"], 0);
  EXPECT_EQ(r["at_end"], true);
  EXPECT_EQ(r["stop_when"], "");
  EXPECT_EQ(r["baselines"], false);
  EXPECT_FALSE(e.evaluators[0].baselines);
  EXPECT_EQ(r["params"].count("every"), 0u);
  EXPECT_TRUE(load(kEvaluation + "baselines = true\n").evaluators[0].baselines);
  EXPECT_TRUE(contains(error_of(kEvaluation + "baselines = 1\n"), "baselines"));
}

TEST_F(ExperimentTest, EvaluationScheduleKeys) {
  const Experiment e = load(kEvaluation + "every = 25\nat_end = false\nstop_when = \"top1<=12.5\"\nepochs = 2\n");
  const auto& ev = e.evaluators[0];
  EXPECT_EQ(ev.every, 25);
  EXPECT_FALSE(ev.at_end);
  EXPECT_EQ(ev.stop_when, "top1<=12.5");  // stored as written
  ASSERT_TRUE(ev.stop_rule);
  EXPECT_EQ(ev.stop_rule->metric, "top1");
  EXPECT_EQ(ev.stop_rule->op, "<=");
  EXPECT_DOUBLE_EQ(ev.stop_rule->threshold, 12.5);
  EXPECT_EQ(ev.stop_rule->text(), "top1 <= 12.5");
  EXPECT_EQ(param<int64_t>(ev, "epochs"), 2);  // parameters still sit beside the host keys
  EXPECT_EQ(e.resolved["evaluation"][0]["stop_when"], "top1<=12.5");
}

TEST_F(ExperimentTest, EvaluationScheduleErrorsNameFileLineAndKey) {
  // kEvaluation ends on line 8; the key at fault is on line 9 or 10.
  const std::string negative = error_of(kEvaluation + "every = -5\n");
  EXPECT_TRUE(starts_with(negative, at(9) + "1: "));
  EXPECT_TRUE(contains(negative, "[evaluation.0] every: -5 is outside the allowed range [0, inf]"));
  const std::string real = error_of(kEvaluation + "every = 2.5\n");
  EXPECT_TRUE(starts_with(real, at(9)));
  EXPECT_TRUE(contains(real, "[evaluation.0] every: expects a value of type int"));
  const std::string flag = error_of(kEvaluation + "at_end = \"yes\"\n");
  EXPECT_TRUE(starts_with(flag, at(9)));
  EXPECT_TRUE(contains(flag, "[evaluation.0] at_end: expects a value of type bool"));
  const std::string number = error_of(kEvaluation + "every = 1\nstop_when = 3\n");
  EXPECT_TRUE(starts_with(number, at(10)));
  EXPECT_TRUE(contains(number, "[evaluation.0] stop_when: expects a value of type string"));

  const std::string form = "expects \"<metric> <op> <number>\" with <op> one of <, <=, >, >= (e.g. \"top1 < 20\")";
  for (const auto& [rule, why] :
       std::vector<std::pair<std::string, std::string>>{{"top1 = 20", "has the unknown comparison '='"},
                                                        {"top1 << 20", "has the unknown comparison '<<'"},
                                                        {"top1 20", "has no comparison"},
                                                        {"< 20", "has no metric name"},
                                                        {"top1 <", "has no number"},
                                                        {"top1 < twenty", "has 'twenty' where a finite number belongs"},
                                                        {"top1 < 20 %", "has '20 %' where a finite number belongs"},
                                                        {"top1 < nan", "has 'nan' where a finite number belongs"}}) {
    const std::string err = error_of(kEvaluation + "every = 1\nstop_when = \"" + rule + "\"\n");
    EXPECT_TRUE(starts_with(err, at(10) + "1: ")) << rule;
    EXPECT_TRUE(contains(err, "[evaluation.0] stop_when: '" + rule + "' " + why + "; " + form)) << err;
  }

  // A rule is checked after periodic evaluations only, so one without them is a mistake.
  const std::string inert = error_of(kEvaluation + "stop_when = \"top1 < 20\"\n");
  EXPECT_TRUE(starts_with(inert, at(9)));
  EXPECT_TRUE(contains(inert, "[evaluation.0] stop_when: needs every > 0"));

  // A `params` that is not a table.
  const std::string params = error_of(kEvaluation + "params = 3\n");
  EXPECT_TRUE(starts_with(params, at(9)));
  EXPECT_TRUE(contains(params, "[evaluation.0] params: expects a table"));
  // The same parameter beside the id and in params.
  const std::string twice = error_of(kEvaluation + "epochs = 2\nparams = { epochs = 3 }\n");
  EXPECT_TRUE(starts_with(twice, at(10)));
  EXPECT_TRUE(contains(twice, "[evaluation.0.params] epochs: given twice"));
}

TEST_F(ExperimentTest, EvaluationScheduleOverrides) {
  const Experiment e =
      load(kEvaluation + "every = 5\nstop_when = \"top1 < 1\"\n",
           {"evaluation.0.every=50", "evaluation.0.at_end=false", "evaluation.0.stop_when=train_top1 >= 99"});
  EXPECT_EQ(e.evaluators[0].every, 50);
  EXPECT_FALSE(e.evaluators[0].at_end);
  EXPECT_EQ(e.evaluators[0].stop_when, "train_top1 >= 99");
  EXPECT_EQ(e.evaluators[0].stop_rule->metric, "train_top1");
  EXPECT_EQ(e.resolved["evaluation"][0]["every"], 50);
  // Overrides may also clear a rule.
  EXPECT_FALSE(
      load(kEvaluation + "every = 5\nstop_when = \"top1 < 1\"\n", {"evaluation.0.stop_when="}).evaluators[0].stop_rule);

  EXPECT_TRUE(starts_with(error_of(kEvaluation, {"evaluation.0.every=-1"}),
                          "--set evaluation.0.every=-1: [evaluation.0]: parameter 'every': -1 is outside"));
  EXPECT_TRUE(starts_with(error_of(kEvaluation, {"evaluation.0.at_end=maybe"}),
                          "--set evaluation.0.at_end=maybe: [evaluation.0]: parameter 'at_end' expects true or false"));
  EXPECT_TRUE(starts_with(error_of(kEvaluation, {"evaluation.0.every=1", "evaluation.0.stop_when=top1 ! 3"}),
                          "--set evaluation.0.stop_when=top1 ! 3: [evaluation.0] stop_when: 'top1 ! 3' has no "
                          "comparison; expects \"<metric> <op> <number>\""));
  EXPECT_TRUE(starts_with(error_of(kEvaluation, {"evaluation.0.stop_when=top1 < 3"}),
                          "--set evaluation.0.stop_when=top1 < 3: [evaluation.0] stop_when: needs every > 0"));
}

TEST_F(ExperimentTest, StoredRunsFromBeforeTheScheduleKeysStillLoad) {
  nlohmann::json stored = load(kEvaluation).resolved;
  for (const char* key : {"every", "at_end", "stop_when"}) stored["evaluation"][0].erase(key);
  const Experiment back = experiment_from_json(stored, registry());
  EXPECT_EQ(back.evaluators[0].every, 0);
  EXPECT_TRUE(back.evaluators[0].at_end);
  EXPECT_FALSE(back.evaluators[0].stop_rule);
  EXPECT_EQ(back.resolved["evaluation"][0]["at_end"], true);  // filled in
}

TEST_F(ExperimentTest, ObjectiveDefaultsToIjepaAndIsChosenLikeAnyPlugin) {
  const Experiment plain = load(kRequired);
  EXPECT_EQ(plain.objective.id, "ijepa");
  EXPECT_EQ(plain.resolved["objective"]["plugin"], "ijepa");
  const Experiment s = load(kRequired, {"objective.plugin=sigreg", "objective.params.lambda=0.1"});
  EXPECT_EQ(s.objective.id, "sigreg");
  EXPECT_EQ(flatten(s.resolved).at("objective.params.lambda"), "0.1");
  EXPECT_EQ(flatten(s.resolved).at("objective.params.integration"), "folded");  // the convention, recorded
  const Experiment file = load(kRequired + "[objective]\nplugin = \"vicreg\"\n[objective.params]\ncov_weight = 2\n");
  EXPECT_EQ(file.objective.id, "vicreg");

  const std::string unknown = error_of(kRequired + "[objective]\nplugin = \"lejepa\"\n");
  EXPECT_TRUE(starts_with(unknown, at(8)));
  EXPECT_TRUE(contains(unknown, "[objective] plugin: unknown objective 'lejepa'; available: ijepa, sigreg, vicreg"));
  const std::string bad = error_of(kRequired + "[objective]\nplugin = \"sigreg\"\n[objective.params]\nslices = 0\n");
  EXPECT_TRUE(starts_with(bad, at(10)));
  EXPECT_TRUE(contains(bad, "slices"));
  // A parameter of another objective is an error naming it, not silently dropped.
  EXPECT_TRUE(contains(error_of(kRequired, {"objective.params.lambda=0.1"}), "lambda"));
}

TEST_F(ExperimentTest, StoredRunsFromBeforeObjectivesLoadAsIjepa) {
  nlohmann::json stored = load(kRequired).resolved;
  stored.erase("objective");
  const Experiment back = experiment_from_json(stored, registry());
  EXPECT_EQ(back.objective.id, "ijepa");
  EXPECT_EQ(back.resolved["objective"]["plugin"], "ijepa");
  // Once stored with one, its version is checked as every plugin's.
  nlohmann::json now = load(kRequired).resolved;
  now["objective"]["version"] = 99;
  try {
    experiment_from_json(now, registry());
    ADD_FAILURE() << "a stored objective of another behaviour version loaded";
  } catch (const ConfigError& x) {
    EXPECT_TRUE(contains(x.what(), "the run used version 99"));
  }
}

TEST(StopRule, ComparesAndNeverHoldsForNaN) {
  using jepa::config::parse_stop_rule;
  EXPECT_FALSE(parse_stop_rule(""));
  EXPECT_FALSE(parse_stop_rule("   "));
  const auto lt = parse_stop_rule("effective_rank < 8");
  ASSERT_TRUE(lt);
  EXPECT_TRUE(lt->holds(3.21));
  EXPECT_FALSE(lt->holds(8.0));
  EXPECT_TRUE(parse_stop_rule("x <= 8")->holds(8.0));
  EXPECT_TRUE(parse_stop_rule("x > -1e3")->holds(0.0));
  EXPECT_FALSE(parse_stop_rule("x >= 2")->holds(1.5));
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const char* rule : {"x < 1", "x <= 1", "x > 1", "x >= 1"}) EXPECT_FALSE(parse_stop_rule(rule)->holds(nan));
  EXPECT_THROW(parse_stop_rule("x < inf"), ConfigError);
}

// ---------------------------------------------------------------- stored form

TEST_F(ExperimentTest, ResolvedJsonRoundTrip) {
  const Experiment e = load(kFull);
  // Through text, as the store keeps it.
  const nlohmann::json stored = nlohmann::json::parse(e.resolved.dump());
  const Experiment back = experiment_from_json(stored, registry());
  EXPECT_EQ(back.resolved, e.resolved);
  EXPECT_EQ(flatten(back.resolved), flatten(e.resolved));
  EXPECT_EQ(back.name, "full");
  EXPECT_EQ(back.seed, e.seed);
  EXPECT_EQ(back.crop_scale, e.crop_scale);
  EXPECT_EQ(back.ema, e.ema);
  EXPECT_DOUBLE_EQ(back.lr, e.lr);
  EXPECT_EQ(back.checkpoint_every, e.checkpoint_every);
  EXPECT_EQ(back.masking.component, e.masking.component);
  EXPECT_EQ(back.masking.params.values, e.masking.params.values);
  EXPECT_EQ(back.encoder.params.values, e.encoder.params.values);
  EXPECT_EQ(back.predictor.params.values, e.predictor.params.values);
  ASSERT_EQ(back.evaluators.size(), 2u);
  EXPECT_EQ(back.evaluators[1].id, "fixture_monitor");
  EXPECT_EQ(back.evaluators[0].params.values, e.evaluators[0].params.values);
  EXPECT_EQ(back.evaluators[1].params.values, e.evaluators[1].params.values);
  EXPECT_EQ(back.evaluators[0].every, 50);
  EXPECT_FALSE(back.evaluators[0].at_end);
  ASSERT_TRUE(back.evaluators[0].stop_rule);
  EXPECT_EQ(back.evaluators[0].stop_rule->metric, "top1");
  EXPECT_EQ(back.evaluators[0].stop_rule->op, "<");
  EXPECT_DOUBLE_EQ(back.evaluators[0].stop_rule->threshold, 20.0);

  // An image-folder run keeps its (defaulted) ImageNet statistics.
  const Experiment folder = load(kRequired, {"data.dataset=image_folder", "data.path=/p"});
  EXPECT_EQ(experiment_from_json(folder.resolved, registry()).mean, (std::vector<double>{0.485, 0.456, 0.406}));
}

TEST_F(ExperimentTest, StoredConfigIsCheckedAgain) {
  const Experiment e = load(kFull);
  const auto err = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = e.resolved;
    edit(j);
    try {
      experiment_from_json(j, registry());
    } catch (const ConfigError& x) {
      return std::string(x.what());
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(err([](auto& j) { j["data"]["batch_size"] = 0; }),
            "stored config: [data] batch_size: 0 is outside the allowed range [1, inf]");
  EXPECT_EQ(err([](auto& j) { j["optimization"]["lr"] = "x"; }),
            "stored config: [optimization] lr: expects a value of type float");
  EXPECT_TRUE(starts_with(err([](auto& j) { j["encoder"]["params"]["dimm"] = 3; }),
                          "stored config: [encoder.params] unknown key 'dimm'"));
  EXPECT_TRUE(starts_with(err([](auto& j) { j["evaluation"][0]["params"]["epochs"] = 0; }),
                          "stored config: [evaluation.0.params] epochs: 0 is outside"));
  EXPECT_TRUE(starts_with(err([](auto& j) { j["encoder"]["plugin"] = "gone"; }),
                          "stored config: [encoder] plugin: unknown encoder 'gone'"));
  EXPECT_EQ(err([](auto& j) { j["predictor"]["version"] = 1; }),
            "stored config: [predictor] version: the run used version 1 of predictor 'fixture_predictor' (plugin "
            "fixture-config-components), which now has version 2");
  EXPECT_TRUE(starts_with(err([](auto& j) { j["evaluation"][1].erase("version"); }),
                          "stored config: [evaluation.1] missing required key 'version'"));
  EXPECT_TRUE(starts_with(err([](auto& j) { j["extra"] = nlohmann::json::object(); }),
                          "stored config: unknown section [extra]"));
  EXPECT_TRUE(starts_with(err([](auto& j) { j["run"]["name"] = nullptr; }), "stored config: run.name: null"));
  EXPECT_TRUE(starts_with(err([](auto& j) { j["evaluation"][0]["stop_when"] = "top1 ~ 3"; }),
                          "stored config: [evaluation.0] stop_when: 'top1 ~ 3' "));
  EXPECT_EQ(err([](auto& j) { j["evaluation"][0]["every"] = -1; }),
            "stored config: [evaluation.0] every: -1 is outside the allowed range [0, inf]");
  EXPECT_TRUE(starts_with(err([](auto& j) { j["evaluation"][0]["evry"] = 1; }),
                          "stored config: [evaluation.0] unknown key 'evry'; valid keys: evaluator, every, at_end, "
                          "stop_when, baselines, params"));
  EXPECT_EQ(err([](auto&) {}), "(no error)");
}

TEST_F(ExperimentTest, FlattenNamesEveryKey) {
  const Experiment e = load(kRequired + "[[evaluation]]\nevaluator = \"fixture_evaluator\"\n");
  const auto flat = flatten(e.resolved);
  EXPECT_EQ(flat.at("optimization.lr"), "0.001");
  EXPECT_EQ(flat.at("optimization.epochs"), "300");
  EXPECT_EQ(flat.at("encoder.params.dim"), "8");
  EXPECT_EQ(flat.at("encoder.plugin"), "tiny_encoder");
  EXPECT_EQ(flat.at("masking.strategy"), "multiblock");
  EXPECT_EQ(flat.at("masking.params.pred_scale"), "[0.15, 0.2]");
  EXPECT_EQ(flat.at("data.crop_scale"), "[0.3, 1]");
  EXPECT_EQ(flat.at("data.random_crop"), "false");
  EXPECT_EQ(flat.at("run.name"), "exp");  // strings raw, unquoted
  EXPECT_EQ(flat.at("evaluation.0.evaluator"), "fixture_evaluator");
  EXPECT_EQ(flat.at("evaluation.0.params.epochs"), "30");
  EXPECT_EQ(flat.at("evaluation.0.params.mode"), "linear");
  EXPECT_EQ(flat.count("optimization"), 0u);  // only leaves
  EXPECT_EQ(flat.at("evaluation.0.every"), "0");
  EXPECT_EQ(flat.at("evaluation.0.at_end"), "true");
  EXPECT_EQ(flat.at("evaluation.0.stop_when"), "");
  EXPECT_EQ(flat.at("distributed.masks"), "per_rank");
  EXPECT_EQ(flat.at("distributed.timeout"), "300");
  EXPECT_EQ(flat.at("distributed.peer_timeout"), "20");
  EXPECT_EQ(flat.at("run.tf32"), "true");
  EXPECT_EQ(flat.at("objective.plugin"), "ijepa");  // the default, recorded
  // One entry per leaf: 38 host keys, 4 plugin sections of id + version + params, one evaluation
  // (id, 4 params, version, every, at_end, stop_when, baselines).
  size_t leaves = 38 + 1 + 4 + 1 + 4;
  for (const char* s : {"masking", "encoder", "predictor", "objective"}) leaves += 2 + e.resolved[s]["params"].size();
  EXPECT_EQ(flat.size(), leaves);
}

}  // namespace
