// write_torch_file: files Python's torch.load(weights_only=True) accepts. torch_file_check.py
// reads them as that loader does (only its allowlisted globals and opcodes) and prints the
// result as JSON, compared here with what was written, value for value.
#include "train/torch_file.hpp"
#include "temp_dir.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/torch.h>
#include <unistd.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <memory>

namespace fs = std::filesystem;
using jepa::train::PyDict;
using jepa::train::PyValue;
using jepa::train::write_torch_file;
using nlohmann::json;

namespace {

const std::string kChecker = JEPA_SOURCE_DIR "/tests/unit/torch_file_check.py";

// Each test's own folder, removed at its end.
class TempDir : public jepa_test::TempDir {
 public:
  TempDir() : jepa_test::TempDir("jepa_torch_file_test") {}
};

struct CheckResult {
  int status = -1;
  std::string out;
};

// Runs the checker; its stdout is the JSON (its complaints go to the test's stderr).
CheckResult run_checker(const fs::path& file, bool with_stderr = false) {
  const std::string cmd = "python3 '" + kChecker + "' '" + file.string() + "'" + (with_stderr ? " 2>&1" : "");
  CheckResult r;
  std::unique_ptr<FILE, int (*)(FILE*)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
  if (!pipe) return r;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0) r.out.append(buf, n);
  const int status = ::pclose(pipe.release());
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

bool have_python() {
  return std::system("python3 -c pass > /dev/null 2>&1") == 0;
}

std::string slurp(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

const char* dtype_name(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float:
      return "float32";
    case c10::ScalarType::Double:
      return "float64";
    case c10::ScalarType::Half:
      return "float16";
    case c10::ScalarType::BFloat16:
      return "bfloat16";
    case c10::ScalarType::Long:
      return "int64";
    case c10::ScalarType::Int:
      return "int32";
    case c10::ScalarType::Short:
      return "int16";
    case c10::ScalarType::Char:
      return "int8";
    case c10::ScalarType::Byte:
      return "uint8";
    case c10::ScalarType::Bool:
      return "bool";
    default:
      return "?";
  }
}

// What the checker should print for `v`: tensor values in row-major order of the logical
// shape, whatever the source's strides (every supported dtype converts to double exactly).
json expected_json(const PyValue& v) {
  return std::visit(
      [&](const auto& x) -> json {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, int64_t>) {
          return {{"int", x}};
        } else if constexpr (std::is_same_v<T, double>) {
          return {{"float", x}};
        } else if constexpr (std::is_same_v<T, bool>) {
          return {{"bool", x}};
        } else if constexpr (std::is_same_v<T, std::string>) {
          return {{"str", x}};
        } else if constexpr (std::is_same_v<T, torch::Tensor>) {
          json values = json::array();
          const torch::Tensor flat = x.detach().reshape({-1});
          if (x.scalar_type() == torch::kBool) {
            const torch::Tensor b = flat.contiguous();
            for (int64_t i = 0; i < b.numel(); ++i) values.push_back(b.data_ptr<bool>()[i]);
          } else if (x.is_floating_point()) {
            const torch::Tensor d = flat.to(torch::kDouble).contiguous();
            for (int64_t i = 0; i < d.numel(); ++i) values.push_back(d.data_ptr<double>()[i]);
          } else {
            const torch::Tensor l = flat.to(torch::kLong).contiguous();
            for (int64_t i = 0; i < l.numel(); ++i) values.push_back(l.data_ptr<int64_t>()[i]);
          }
          return {{"tensor", {{"dtype", dtype_name(x.scalar_type())}, {"shape", x.sizes().vec()}, {"values", values}}}};
        } else {
          json items = json::array();
          for (const auto& [key, item] : x) items.push_back(json::array({key, expected_json(item)}));
          return {{v.ordered ? "ordered_dict" : "dict", items}};
        }
      },
      v.v);
}

PyValue tensor(torch::Tensor t) {
  return PyValue{std::move(t)};
}

// Every dtype, a 0-d scalar, views that are not what they look like in memory (transposed,
// offset into a larger storage, size-1 dims with odd strides), an empty tensor, > 3 dims.
PyDict state_dict() {
  const auto base = torch::arange(24, torch::kFloat64).mul(0.37).sub(2.5).reshape({4, 6});
  return {
      {"module.patch_embed.proj.weight", tensor(torch::arange(6, torch::kFloat32).div(7).reshape({2, 3}))},
      {"transposed", tensor(base.t())},
      {"narrowed", tensor(base.narrow(0, 1, 2))},
      {"column", tensor(torch::arange(3, torch::kFloat32).reshape({1, 3}).t())},
      {"scalar", tensor(torch::tensor(-1.25f))},
      {"long",
       tensor(torch::tensor({int64_t{1} << 40, int64_t{-7}, std::numeric_limits<int64_t>::min()}, torch::kLong))},
      {"int", tensor(torch::tensor({-3, 2147483647}, torch::kInt))},
      {"short", tensor(torch::tensor({-300, 300}, torch::kShort))},
      {"char", tensor(torch::tensor({-128, 127}, torch::kChar))},
      {"byte", tensor(torch::tensor({0, 255}, torch::kByte))},
      {"bool", tensor(torch::tensor({true, false, true}))},
      {"half", tensor(torch::tensor({0.5, -65504.0, 1e-3}, torch::kHalf))},
      {"bfloat16", tensor(torch::tensor({1.5, -3e38, 1e-3}, torch::kBFloat16))},
      {"empty", tensor(torch::zeros({0, 3}))},
      {"five_dims", tensor(torch::arange(8, torch::kFloat32).reshape({2, 1, 2, 1, 2}))},
      {"parameter", tensor(torch::ones({2}, torch::requires_grad()))},
  };
}

PyValue sample() {
  PyDict nested{{"depth", PyValue{int64_t{2}}}, {"inner", PyValue{PyDict{{"x", PyValue{0.5}}}}}};
  return PyValue{PyDict{
      {"encoder", PyValue{state_dict(), true}},
      {"empty_ordered", PyValue{PyDict{}, true}},
      {"empty_dict", PyValue{PyDict{}}},
      {"nested", PyValue{nested}},
      {"epoch", PyValue{int64_t{12}}},
      {"big", PyValue{(int64_t{1} << 31) + 5}},
      {"int32_min", PyValue{int64_t{std::numeric_limits<int32_t>::min()}}},
      {"below_int32", PyValue{int64_t{std::numeric_limits<int32_t>::min()} - 1}},
      {"int64_max", PyValue{std::numeric_limits<int64_t>::max()}},
      {"int64_min", PyValue{std::numeric_limits<int64_t>::min()}},
      {"byte_edge", PyValue{int64_t{-129}}},
      {"loss", PyValue{0.1234567890123}},
      {"lr", PyValue{1.0 / 3.0}},
      {"tiny", PyValue{5e-324}},
      {"huge", PyValue{-1.7976931348623157e308}},
      {"name", PyValue{std::string("vit_tiny \xc3\xa9")}},  // UTF-8
      {"distributed", PyValue{true}},
      {"ema", PyValue{false}},
  }};
}

}  // namespace

TEST(TorchFile, WeightsOnlyLoaderReadsBackEveryValue) {
  if (!have_python()) GTEST_SKIP() << "python3 is not available";
  TempDir dir;
  const auto file = dir.path() / "weights.pt";
  const PyValue root = sample();
  write_torch_file(file, root);
  const CheckResult r = run_checker(file);
  ASSERT_EQ(r.status, 0) << "torch.load(weights_only=True) would refuse the file";
  const json got = json::parse(r.out);
  const json want = expected_json(root);
  // Entry by entry, so a failure names the key.
  ASSERT_TRUE(got.contains("dict")) << got.dump().substr(0, 200);
  ASSERT_EQ(got["dict"].size(), want["dict"].size());
  for (size_t i = 0; i < want["dict"].size(); ++i) EXPECT_EQ(got["dict"][i], want["dict"][i]);
  EXPECT_EQ(got, want);
}

TEST(TorchFile, StorageDataIs64ByteAligned) {
  TempDir dir;
  const auto file = dir.path() / "weights.pt";
  write_torch_file(file, sample());
  const std::string bytes = slurp(file);
  auto u16 = [&](size_t at) {
    return static_cast<uint32_t>(static_cast<unsigned char>(bytes.at(at))) |
           static_cast<uint32_t>(static_cast<unsigned char>(bytes.at(at + 1))) << 8;
  };
  auto u32 = [&](size_t at) { return u16(at) | u16(at + 2) << 16; };
  // Walk the local headers front to back: each entry's data follows its header and extra field.
  size_t at = 0;
  std::vector<std::string> names;
  while (u32(at) == 0x04034b50) {
    const uint32_t size = u32(at + 18);
    const uint32_t name_len = u16(at + 26);
    const uint32_t extra_len = u16(at + 28);
    names.push_back(bytes.substr(at + 30, name_len));
    const size_t data = at + 30 + name_len + extra_len;
    EXPECT_EQ(data % 64, 0u) << names.back() << " data at " << data;
    EXPECT_EQ(u16(at + 8), 0u) << names.back() << " must be stored, not compressed";
    EXPECT_EQ(u32(at + 22), size) << names.back();
    at = data + size;
  }
  EXPECT_EQ(u32(at), 0x02014b50u) << "the central directory follows the last entry";
  ASSERT_GE(names.size(), 4u);
  EXPECT_EQ(names.front(), "archive/data.pkl") << "the reader names the archive after the first entry";
  EXPECT_NE(std::find(names.begin(), names.end(), "archive/version"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "archive/byteorder"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "archive/data/0"), names.end());
}

TEST(TorchFile, SameValuesGiveIdenticalBytes) {
  // Exports of equal weights must compare equal byte for byte (resume tests rely on it).
  TempDir dir;
  write_torch_file(dir.path() / "a.pt", sample());
  write_torch_file(dir.path() / "b.pt", sample());
  EXPECT_EQ(slurp(dir.path() / "a.pt"), slurp(dir.path() / "b.pt"));
}

TEST(TorchFile, CheckerRejectsTorchScriptPickles) {
  // The checker is the test's oracle: it must refuse what torch::pickle_save writes, whose dicts
  // carry torch.jit._pickle.restore_type_tag, exactly as torch.load(weights_only=True) does.
  if (!have_python()) GTEST_SKIP() << "python3 is not available";
  TempDir dir;
  c10::impl::GenericDict d(c10::StringType::get(), c10::AnyType::get());
  d.insert("epoch", int64_t{1});
  d.insert("weight", torch::ones({2}));
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(d));
  const auto file = dir.path() / "jit.pt";
  std::ofstream(file, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  const CheckResult r = run_checker(file, true);
  EXPECT_NE(r.status, 0);
  EXPECT_NE(r.out.find("torch.jit._pickle.restore_type_tag is not allowed"), std::string::npos) << r.out;
}

TEST(TorchFile, UnwritableTensorThrowsAndLeavesNoFile) {
  TempDir dir;
  const auto file = dir.path() / "bad.pt";
  const PyValue root{PyDict{{"w", PyValue{torch::Tensor()}}}};
  EXPECT_THROW(write_torch_file(file, root), std::runtime_error);
  EXPECT_FALSE(fs::exists(file));
  const PyValue sparse{PyDict{{"w", PyValue{torch::eye(2).to_sparse()}}}};
  EXPECT_THROW(write_torch_file(file, sparse), std::runtime_error);
  EXPECT_FALSE(fs::exists(file));
  EXPECT_THROW(write_torch_file(dir.path() / "no_such_dir" / "x.pt", sample()), std::runtime_error);
}
