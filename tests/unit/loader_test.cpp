// The loader against deliberately broken plugins: each failure has its own message, and
// discovery goes on past it.
#include "config/params.hpp"
#include "loader/elf_section.hpp"
#include "loader/masking_strategy.hpp"
#include "loader/registry.hpp"

#include <c10/util/Exception.h>
#include <gtest/gtest.h>

#include <filesystem>

namespace fs = std::filesystem;
using jepa::loader::Kind;
using jepa::loader::Registry;

namespace {

fs::path fixture(const char* name) {
  return fs::path(JEPA_FIXTURE_DIR) / name;
}

// Loads one fixture folder together with the real plugin folder, so every test also checks that
// a bad library does not stop the good ones from loading.
Registry load_with_builtins(const char* name) {
  return Registry::discover({fixture(name), fs::path(JEPA_PLUGIN_DIR)});
}

std::string single_rejection(const Registry& reg) {
  EXPECT_EQ(reg.rejected().size(), 1u);
  EXPECT_NE(reg.find(Kind::masking, "multiblock"), nullptr) << "discovery stopped at the bad plugin";
  return reg.rejected().empty() ? "" : reg.rejected()[0].reason;
}

}  // namespace

TEST(Loader, LoadsBuiltinMaskingPlugins) {
  const Registry reg = Registry::discover({JEPA_PLUGIN_DIR});
  EXPECT_TRUE(reg.rejected().empty());
  for (const char* id : {"multiblock", "random", "block"}) {
    const auto* c = reg.find(Kind::masking, id);
    ASSERT_NE(c, nullptr) << id;
    EXPECT_FALSE(c->cxx_interface);
    EXPECT_EQ(c->plugin->sha256.size(), 64u);
  }
}

TEST(Loader, NoEntrySymbol) {
  const auto reason = single_rejection(load_with_builtins("no_entry"));
  EXPECT_NE(reason.find("no entry symbol 'jepa_plugin_entry'"), std::string::npos) << reason;
}

TEST(Loader, NotASharedLibrary) {
  const auto reason = single_rejection(load_with_builtins("garbage"));
  EXPECT_NE(reason.find("cannot be loaded"), std::string::npos) << reason;
}

TEST(Loader, AbiMajorMismatchShowsBothSides) {
  const auto reason = single_rejection(load_with_builtins("abi_major"));
  EXPECT_NE(reason.find("SDK ABI major 2 (plugin) != 1 (host)"), std::string::npos) << reason;
}

TEST(Loader, NewerAbiMinorRejected) {
  const auto reason = single_rejection(load_with_builtins("abi_minor"));
  const std::string expected = "SDK ABI 1." + std::to_string(JEPA_ABI_MINOR + 1) + " (plugin) is newer than 1." +
                               std::to_string(JEPA_ABI_MINOR) + " (host)";
  EXPECT_NE(reason.find(expected), std::string::npos) << reason;
}

TEST(Loader, OlderAbiMinorStillLoads) {
  const auto reg = load_with_builtins("abi_older_minor");
  EXPECT_TRUE(reg.rejected().empty()) << reg.rejected()[0].reason;
  const auto* c = reg.find(Kind::masking, "abi_1_0_masks");
  ASSERT_NE(c, nullptr) << "a plugin built against ABI 1.0 (before the objective kind) keeps loading";
  EXPECT_EQ(c->plugin->abi_minor, 0);
}

TEST(Loader, FingerprintMismatchForCxxComponents) {
  const auto reason = single_rejection(load_with_builtins("fingerprint"));
  EXPECT_NE(reason.find("build fingerprint differs (torch version"), std::string::npos) << reason;
  EXPECT_NE(reason.find("plugin [torch 0.0.0-fixture"), std::string::npos) << reason;
  EXPECT_NE(reason.find("host [torch "), std::string::npos) << reason;
}

TEST(Loader, LibraryOfAnotherLibTorchIsRefusedFromItsFileWithoutLoading) {
  // The fixture aborts the process if the dynamic linker ever runs its constructor.
  const auto reason = single_rejection(load_with_builtins("other_torch"));
  EXPECT_NE(reason.find("built against another LibTorch, so it was not loaded"), std::string::npos) << reason;
  // "(torch version" and, on a CUDA build, ", device" too: the fixture says cpu.
  EXPECT_NE(reason.find("build fingerprint differs (torch version"), std::string::npos) << reason;
  EXPECT_NE(reason.find("plugin [torch 0.0.0-fixture/cpu, cxx11abi "), std::string::npos) << reason;
  EXPECT_NE(reason.find("host [torch " + jepa::loader::host_fingerprint().torch_version), std::string::npos) << reason;
}

TEST(Loader, EveryBuiltPluginCarriesItsFingerprintInASection) {
  const auto host = jepa::loader::host_fingerprint();
  int torch_plugins = 0;
  int c_plugins = 0;
  for (const auto& entry : fs::directory_iterator(JEPA_PLUGIN_DIR)) {
    if (entry.path().extension() != ".so") continue;
    const auto text = jepa::loader::read_elf_section(entry.path(), JEPA_FINGERPRINT_SECTION);
    ASSERT_TRUE(text.has_value()) << entry.path();
    const auto fp = jepa::loader::Fingerprint::from_text(*text);
    ASSERT_TRUE(fp.has_value()) << *text;
    if (fp->torch_version == "none") {
      ++c_plugins;
      EXPECT_EQ(fp->device, "none") << entry.path();
    } else {
      ++torch_plugins;
      EXPECT_TRUE(fp->differences(host).empty()) << entry.path() << ": " << fp->describe() << " vs " << host.describe();
    }
    EXPECT_EQ(fp->cxx_standard, host.cxx_standard);
  }
  EXPECT_GE(torch_plugins, 3);  // encoder, predictor, evaluators
  EXPECT_GE(c_plugins, 1);      // the masking strategies
}

TEST(Loader, FingerprintTextIsParsedStrictly) {
  using jepa::loader::Fingerprint;
  using namespace std::string_literals;  // the section is NUL-terminated and may be padded
  const auto fp = Fingerprint::from_text(
      "jepa-fingerprint/1 torch=2.6.0 device=cuda cxx11abi=(-1) compiler=clang compiler_major=19 "
      "cplusplus=202002L sdk=1\0padding"s);
  ASSERT_TRUE(fp.has_value());
  EXPECT_EQ(fp->describe(), "torch 2.6.0/cuda, cxx11abi -1, clang 19, C++202002, sdk 1");
  EXPECT_FALSE(Fingerprint::from_text("jepa-fingerprint/2 torch=2.6.0").has_value());
  EXPECT_FALSE(Fingerprint::from_text("jepa-fingerprint/1 torch=2.6.0 device=cpu").has_value());
  EXPECT_FALSE(Fingerprint::from_text("jepa-fingerprint/1 torch=2.6.0 device=cpu cxx11abi=x compiler=gcc "
                                      "compiler_major=12 cplusplus=201703L sdk=1")
                   .has_value());
  EXPECT_FALSE(jepa::loader::read_elf_section(fs::path(JEPA_FIXTURE_DIR) / "garbage" / "garbage.so", ".text"));
}

TEST(Loader, CMaskingPluginIgnoresTorchFingerprint) {
  const Registry reg = Registry::discover({fixture("portable")});
  EXPECT_TRUE(reg.rejected().empty());
  EXPECT_NE(reg.find(Kind::masking, "portable_masks"), nullptr);
}

TEST(Loader, RegistrationThatThrowsGivesNoDescriptor) {
  const auto reason = single_rejection(load_with_builtins("null_descriptor"));
  EXPECT_NE(reason.find("returned no descriptor"), std::string::npos) << reason;
}

TEST(Loader, InvalidDefaultInSchema) {
  const auto reason = single_rejection(load_with_builtins("bad_default"));
  EXPECT_NE(reason.find("parameter 'blocks': invalid default: 99 is outside the allowed range [1, 8]"),
            std::string::npos)
      << reason;
}

TEST(Loader, DuplicateIdNamesBothPaths) {
  const Registry reg = Registry::discover({fixture("duplicate")});
  ASSERT_EQ(reg.rejected().size(), 1u);
  ASSERT_EQ(reg.plugins().size(), 1u);
  const auto& r = reg.rejected()[0];
  const std::string first = reg.plugins()[0]->path.string();
  EXPECT_NE(r.reason.find("duplicate masking id 'dup_masks'"), std::string::npos) << r.reason;
  EXPECT_NE(r.reason.find(first), std::string::npos) << r.reason;
  EXPECT_NE(r.path.string(), first);
}

TEST(Loader, MissingFolderIsReportedNotFatal) {
  const Registry reg = Registry::discover({"/nonexistent/jepa/plugins", JEPA_PLUGIN_DIR});
  ASSERT_EQ(reg.rejected().size(), 1u);
  EXPECT_NE(reg.rejected()[0].reason.find("does not exist"), std::string::npos);
  EXPECT_NE(reg.find(Kind::masking, "multiblock"), nullptr);
}

TEST(Loader, SameFolderTwiceLoadsOnce) {
  const Registry once = Registry::discover({JEPA_PLUGIN_DIR});
  const Registry reg = Registry::discover({JEPA_PLUGIN_DIR, JEPA_PLUGIN_DIR});
  EXPECT_TRUE(reg.rejected().empty());
  EXPECT_EQ(reg.plugins().size(), once.plugins().size());
}

TEST(Loader, ThrowingCreateNamesPluginAndComponent) {
  const Registry reg = Registry::discover({fixture("throwing")});
  const auto* c = reg.find(Kind::masking, "throwing_masks");
  ASSERT_NE(c, nullptr);
  try {
    jepa::loader::MaskingStrategy s(*c, jepa::loader::ParamSet::defaults(*c));
    FAIL() << "create should have thrown";
  } catch (const jepa::loader::ParameterRejected& e) {
    EXPECT_STREQ(e.what(),
                 "masking 'throwing_masks' (plugin fixture-throwing) rejected its parameters: fixture: create always "
                 "throws");
    EXPECT_EQ(e.key, "");
  }
}

// What crosses the C boundary from the SDK's wrapper, read back by the host.
TEST(Loader, CreateFailuresNameTheKeyAndDropLibTorchBacktraces) {
  const auto tagged = jepa::loader::create_failed("encoder 'vit' (plugin encoder-vit)",
                                                  "[param num_heads] width 96 is not divisible by 5 heads");
  EXPECT_STREQ(tagged.what(),
               "encoder 'vit' (plugin encoder-vit) rejected its parameter 'num_heads': width 96 is not divisible by 5 "
               "heads");
  EXPECT_EQ(tagged.key, "num_heads");
  // A real c10::Error's text, as a plugin built with an older SDK would pass it on.
  std::string what;
  try {
    TORCH_CHECK(false, "width ", 96, " is not divisible by ", 5, " heads");
  } catch (const c10::Error& e) {
    what = e.what();
  }
  ASSERT_NE(what.find("frame #"), std::string::npos) << "LibTorch's message carries a backtrace: " << what;
  const auto plain = jepa::loader::create_failed("encoder 'vit' (plugin encoder-vit)", what);
  EXPECT_EQ(std::string(plain.what()).find("frame #"), std::string::npos) << plain.what();
  EXPECT_EQ(std::string(plain.what()).find('\n'), std::string::npos) << plain.what();
  EXPECT_NE(std::string(plain.what()).find("width 96 is not divisible by 5 heads"), std::string::npos);
}

TEST(Loader, ThrowingCreateOnRequestIsReportedAndTheNextCreateWorks) {
  const Registry reg = Registry::discover({fixture("good")});
  const auto* c = reg.find(Kind::masking, "fixture_masks");
  ASSERT_NE(c, nullptr);
  const auto failing = jepa::config::resolve_params(*c, {{"fail", "true"}});
  EXPECT_THROW(jepa::loader::MaskingStrategy(*c, failing), jepa::loader::PluginError);
  jepa::loader::MaskingStrategy ok(*c, jepa::loader::ParamSet::defaults(*c));
  EXPECT_EQ(ok.sample({4, 5, 2, 0, 0}).target_blocks, 2);
}

TEST(Loader, LibraryStaysLoadedWhileItsObjectsLive) {
  std::unique_ptr<jepa::loader::MaskingStrategy> strategy;
  {
    const Registry reg = Registry::discover({JEPA_PLUGIN_DIR});
    const auto* c = reg.find(Kind::masking, "multiblock");
    ASSERT_NE(c, nullptr);
    strategy = std::make_unique<jepa::loader::MaskingStrategy>(*c, jepa::loader::ParamSet::defaults(*c));
  }
  // The registry (and its handles) are gone; the strategy's code must still be mapped.
  const auto s = strategy->sample({14, 14, 4, 1, 3});
  EXPECT_EQ(s.batch_size, 4);
  EXPECT_EQ(s.target_blocks, 4);
}
