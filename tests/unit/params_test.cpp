// Parameters from user text against a plugin's declared schema (the fixture-masks plugin).
#include "config/params.hpp"
#include "loader/registry.hpp"

#include <gtest/gtest.h>

#include <filesystem>

using jepa::config::ConfigError;
using jepa::config::resolve_params;
using jepa::loader::Kind;
using jepa::loader::ParamValue;

namespace {

const jepa::loader::Registry& registry() {
  static const auto reg = jepa::loader::Registry::discover({std::filesystem::path(JEPA_FIXTURE_DIR) / "good"});
  return reg;
}

const jepa::loader::ComponentInfo& masks() {
  const auto* c = registry().find(Kind::masking, "fixture_masks");
  if (c == nullptr) throw std::runtime_error("fixture_masks not loaded");
  return *c;
}

std::string error_of(const std::vector<std::pair<std::string, std::string>>& overrides) {
  try {
    resolve_params(masks(), overrides);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(Params, DefaultsAreCompleteAndOrdered) {
  const auto set = resolve_params(masks(), {});
  ASSERT_EQ(set.values.size(), 5u);
  EXPECT_EQ(set.values[0].first, "blocks");
  EXPECT_EQ(std::get<int64_t>(set.values[0].second), 2);
  EXPECT_EQ(std::get<std::vector<double>>(*set.find("range")), (std::vector<double>{0.1, 0.2}));
}

TEST(Params, OverridesOfEveryType) {
  const auto set = resolve_params(
      masks(), {{"blocks", "5"}, {"scale", "0.25"}, {"fail", "false"}, {"label", "b"}, {"range", "[0.3, 0.4]"}});
  EXPECT_EQ(std::get<int64_t>(*set.find("blocks")), 5);
  EXPECT_DOUBLE_EQ(std::get<double>(*set.find("scale")), 0.25);
  EXPECT_FALSE(std::get<bool>(*set.find("fail")));
  EXPECT_EQ(std::get<std::string>(*set.find("label")), "b");
  EXPECT_EQ(std::get<std::vector<double>>(*set.find("range")), (std::vector<double>{0.3, 0.4}));
  // An integer is a valid float; a bare comma list is a valid list.
  const auto again = resolve_params(masks(), {{"scale", "1"}, {"range", "0.5,0.6"}});
  EXPECT_DOUBLE_EQ(std::get<double>(*again.find("scale")), 1.0);
  EXPECT_EQ(std::get<std::vector<double>>(*again.find("range")), (std::vector<double>{0.5, 0.6}));
}

TEST(Params, UnknownKeyNamesComponentPluginAndValidKeys) {
  EXPECT_EQ(error_of({{"blockz", "3"}}),
            "masking 'fixture_masks' (plugin fixture-masks): unknown parameter 'blockz'; valid keys: blocks, scale, "
            "fail, label, range");
}

TEST(Params, WrongTypes) {
  EXPECT_NE(error_of({{"blocks", "2.5"}}).find("parameter 'blocks' expects an integer (got '2.5')"), std::string::npos);
  EXPECT_NE(error_of({{"blocks", "three"}}).find("expects an integer"), std::string::npos);
  EXPECT_NE(error_of({{"scale", "half"}}).find("expects a number"), std::string::npos);
  EXPECT_NE(error_of({{"fail", "maybe"}}).find("expects true or false"), std::string::npos);
  EXPECT_NE(error_of({{"range", "[a, b]"}}).find("expects a list of numbers"), std::string::npos);
}

TEST(Params, RangesChoicesAndLengths) {
  EXPECT_NE(error_of({{"blocks", "9"}}).find("9 is outside the allowed range [1, 8]"), std::string::npos);
  EXPECT_NE(error_of({{"scale", "-0.1"}}).find("outside the allowed range"), std::string::npos);
  EXPECT_NE(error_of({{"label", "c"}}).find("'c' is not one of a, b"), std::string::npos);
  EXPECT_NE(error_of({{"range", "[0.1]"}}).find("expects 2 numbers, got 1"), std::string::npos);
  EXPECT_NE(error_of({{"scale", "nan"}}).find("not a finite number"), std::string::npos);
}

TEST(Params, SplitAssignment) {
  EXPECT_EQ(jepa::config::split_assignment(" npred = 4 "), (std::pair<std::string, std::string>{"npred", "4"}));
  EXPECT_EQ(jepa::config::split_assignment("ratio=[0.4,0.6]").second, "[0.4,0.6]");
  EXPECT_THROW(jepa::config::split_assignment("npred"), ConfigError);
  EXPECT_THROW(jepa::config::split_assignment("=4"), ConfigError);
}
