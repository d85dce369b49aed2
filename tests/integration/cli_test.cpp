// The `jepa` executable as a user runs it: exit statuses, messages, JSON, pictures.
#include "jepa_process.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <set>

namespace fs = std::filesystem;

using jepa_test::contains;
using jepa_test::run_jepa;
using jepa_test::slurp;

TEST(Cli, HelpTeachesAndExitsZero) {
  const auto r = run_jepa("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_TRUE(contains(r.out, "plugins")) << r.out;
  EXPECT_TRUE(contains(r.out, "Examples:")) << r.out;
  const auto m = run_jepa("masks --help");
  EXPECT_EQ(m.code, 0);
  EXPECT_TRUE(contains(m.out, "--strategy")) << m.out;
}

TEST(Cli, UsageErrorsExitTwo) {
  EXPECT_EQ(run_jepa("").code, 2);
  EXPECT_EQ(run_jepa("no-such-command").code, 2);
  EXPECT_EQ(run_jepa("masks").code, 2) << "--strategy is required";
  EXPECT_EQ(run_jepa("masks --strategy multiblock --batch notanumber").code, 2);
  const auto g = run_jepa("masks --strategy multiblock --grid 1");
  EXPECT_EQ(g.code, 2);
  EXPECT_TRUE(contains(g.err, "--grid")) << g.err;
}

// A typo in a script must fail: `jepa nosuchcmd --help` would otherwise print the main help, 0.
TEST(Cli, UnknownCommandExitsTwoAndListsTheCommands) {
  for (const char* args : {"nosuchcmd --help", "nosuchcmd", "--plugin-path /tmp runz"}) {
    const auto r = run_jepa(args);
    EXPECT_EQ(r.code, 2) << args;
    EXPECT_TRUE(contains(r.err, "error: unknown command '")) << r.err;
    EXPECT_TRUE(contains(r.err, "run, eval, export, sweep")) << r.err;
  }
  EXPECT_EQ(run_jepa("sweep --help").code, 0);
}

TEST(Cli, UnknownStrategyListsAvailable) {
  const auto r = run_jepa("masks --strategy multiblok");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "unknown masking strategy 'multiblok'; available: block, multiblock, random")) << r.err;
}

TEST(Cli, BadSetKeyNamesPluginAndValidKeys) {
  const auto r = run_jepa("masks --strategy multiblock --set npredd=3");
  EXPECT_EQ(r.code, 2);
  EXPECT_TRUE(contains(r.err, "masking 'multiblock' (plugin masking-multiblock): unknown parameter 'npredd'")) << r.err;
  EXPECT_TRUE(contains(r.err,
                       "valid keys: npred, nenc, pred_scale, enc_scale, aspect_ratio, min_keep, allow_overlap, "
                       "position_bound"))
      << r.err;
  const auto t = run_jepa("masks --strategy multiblock --set npred=many");
  EXPECT_EQ(t.code, 2);
  EXPECT_TRUE(contains(t.err, "parameter 'npred' expects an integer")) << t.err;
  EXPECT_EQ(run_jepa("masks --strategy multiblock --set npred").code, 2);
}

TEST(Cli, PluginsJsonListsEverything) {
  const auto r = run_jepa("plugins --json");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["rejected"].empty());
  std::set<std::string> components;
  for (const auto& p : j["plugins"]) {
    EXPECT_EQ(p["sha256"].get<std::string>().size(), 64u);
    EXPECT_FALSE(p["components"].empty());
    for (const auto& c : p["components"]) {
      components.insert(c["kind"].get<std::string>() + "/" + c["id"].get<std::string>());
      EXPECT_EQ(c["interface"], c["kind"] == "masking" ? "c" : "c++");
    }
  }
  EXPECT_EQ(components, (std::set<std::string>{"masking/multiblock", "masking/random", "masking/block", "encoder/vit",
                                               "predictor/vit_predictor", "evaluator/linear_probe", "evaluator/knn",
                                               "evaluator/low_shot", "evaluator/rankme", "objective/ijepa",
                                               "objective/sigreg", "objective/vicreg"}));
  bool schema = false;  // parameters travel with each component (ijepa has none, sigreg a dozen)
  for (const auto& p : j["plugins"]) {
    for (const auto& c : p["components"]) schema = schema || (c["id"] == "sigreg" && c["params"].size() > 5);
  }
  EXPECT_TRUE(schema);
  const auto text = run_jepa("plugins");
  EXPECT_EQ(text.code, 0);
  EXPECT_TRUE(contains(text.out, "multiblock")) << text.out;
}

TEST(Cli, PluginPathAddsAndRejectsWithoutAborting) {
  const std::string fixtures = JEPA_FIXTURE_DIR;
  const auto r =
      run_jepa("plugins --json --plugin-path " + fixtures + "/abi_major --plugin-path " + fixtures + "/good");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  const auto builtin = nlohmann::json::parse(run_jepa("plugins --json").out)["plugins"].size();
  EXPECT_EQ(j["plugins"].size(), builtin + 1);
  ASSERT_EQ(j["rejected"].size(), 1u);
  EXPECT_TRUE(contains(j["rejected"][0]["reason"], "SDK ABI major 2 (plugin) != 1 (host)"));
  // $JEPA_PLUGIN_PATH (colon-separated) works the same way.
  const fs::path out = fs::temp_directory_path() / ("jepa_env_" + std::to_string(::getpid()) + ".json");
  const std::string cmd = "JEPA_PLUGIN_PATH=/nonexistent:" + fixtures + "/good '" + JEPA_BINARY +
                          "' plugins --json > '" + out.string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const auto env = nlohmann::json::parse(slurp(out));
  EXPECT_EQ(env["plugins"].size(), builtin + 1);
  EXPECT_EQ(env["rejected"].size(), 1u) << "the missing folder is reported";
  fs::remove(out);
}

TEST(Cli, MasksWritesPngAndJson) {
  const fs::path png = fs::temp_directory_path() / ("jepa_masks_" + std::to_string(::getpid()) + ".png");
  fs::remove(png);
  const auto r =
      run_jepa("masks --strategy multiblock --grid 14 --batch 8 --seed 0 --step 0 --json -o " + png.string());
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(png));
  EXPECT_EQ(slurp(png).substr(1, 3), "PNG");
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["context"].size(), 1u);
  EXPECT_EQ(j["context"][0].size(), 8u);
  EXPECT_EQ(j["target"].size(), 4u);
  EXPECT_EQ(j["stats"]["max_overlap"], 0);
  EXPECT_EQ(j["stats"]["context_row_coverage"].size(), 14u);
  EXPECT_EQ(j["stats"]["context_row_coverage"][13], 0.0) << "official bound: the last row is never used";
  // Same inputs, same masks.
  const auto again = run_jepa("masks --strategy multiblock --json");
  EXPECT_EQ(nlohmann::json::parse(again.out)["target"], j["target"]);
  fs::remove(png);

  const auto text = run_jepa("masks --strategy random --grid 8x10 --set ratio=[0.7,0.8]");
  ASSERT_EQ(text.code, 0) << text.err;
  EXPECT_TRUE(contains(text.out, "grid 8x10")) << text.out;
  EXPECT_TRUE(contains(text.out, "per row")) << text.out;
}

TEST(Cli, UnwritablePngIsARuntimeError) {
  const auto r = run_jepa("masks --strategy block -o /nonexistent/dir/m.png");
  EXPECT_EQ(r.code, 1);
  EXPECT_TRUE(contains(r.err, "cannot write /nonexistent/dir/m.png")) << r.err;
}
