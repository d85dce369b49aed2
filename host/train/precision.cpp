#include "train/precision.hpp"

#include "config/params.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string_view>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define JEPA_X86 1
#endif

namespace jepa::train {

namespace {

#ifdef JEPA_X86
// XCR0: which register states the OS saves on a context switch. A CPU flag without the OS's
// support is an illegal instruction waiting to happen.
uint64_t xcr0() {
  uint32_t eax = 0;
  uint32_t edx = 0;
  __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
  return (static_cast<uint64_t>(edx) << 32) | eax;
}

CpuBf16 detect_x86() {
  CpuBf16 c;
  unsigned a = 0, b = 0, cx = 0, d = 0;
  if (__get_cpuid(1, &a, &b, &cx, &d) == 0) return c;
  const bool osxsave = (cx & (1u << 27)) != 0;
  if (!osxsave) return c;
  const uint64_t x = xcr0();
  constexpr uint64_t kAvx512State = 0xE6;  // SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
  constexpr uint64_t kAmxState = 0x60000;  // XTILECFG, XTILEDATA
  if (__get_cpuid_max(0, nullptr) < 7) return c;
  __cpuid_count(7, 0, a, b, cx, d);
  const bool avx512f = (b & (1u << 16)) != 0;
  const bool amx_bf16 = (d & (1u << 22)) != 0;
  unsigned max_sub = a;
  bool avx512_bf16 = false;
  if (max_sub >= 1) {
    __cpuid_count(7, 1, a, b, cx, d);
    avx512_bf16 = (a & (1u << 5)) != 0;
  }
  c.avx512_bf16 = avx512f && avx512_bf16 && (x & kAvx512State) == kAvx512State;
  c.amx_bf16 = amx_bf16 && (x & kAmxState) == kAmxState;
  return c;
}
#endif

}  // namespace

std::string precision_name(Precision p) {
  return p == Precision::bf16 ? "bf16" : "fp32";
}

std::string CpuBf16::describe() const {
  std::vector<std::string> parts;
  if (avx512_bf16) parts.emplace_back("AVX512_BF16");
  if (amx_bf16) parts.emplace_back("AMX_BF16");
  std::string s = parts.empty() ? "no native bf16" : fmt::format("{}", fmt::join(parts, ", "));
  if (forced) s += " (forced by JEPA_CPU_BF16)";
  return s;
}

CpuBf16 detect_cpu_bf16() {
  if (const char* force = std::getenv("JEPA_CPU_BF16"); force != nullptr && *force != '\0') {
    CpuBf16 c;
    c.forced = true;
    c.avx512_bf16 = std::string_view(force) != "0";
    return c;
  }
#ifdef JEPA_X86
  return detect_x86();
#else
  return {};
#endif
}

PrecisionChoice choose_precision(const std::string& setting, bool cuda, const CpuBf16& cpu) {
  if (setting == "fp32") return {Precision::fp32, "fp32: set in [run] precision"};
  if (setting == "bf16") {
    if (cuda) return {Precision::bf16, "bf16: set in [run] precision (CUDA)"};
    if (!cpu.native()) {
      throw config::ConfigError(fmt::format(
          "[run] precision = \"bf16\", but this CPU has {}: LibTorch would emulate bf16, several times slower "
          "than fp32. Use precision = \"auto\" (bf16 only where it is native) or \"fp32\"",
          cpu.describe()));
    }
    return {Precision::bf16, fmt::format("bf16: set in [run] precision (CPU has {})", cpu.describe())};
  }
  if (setting != "auto") {
    throw config::ConfigError(fmt::format("[run] precision = \"{}\": expects auto, fp32 or bf16", setting));
  }
  if (cuda) return {Precision::bf16, "auto: bf16 autocast on CUDA, as upstream"};
  if (cpu.native()) return {Precision::bf16, fmt::format("auto: CPU has {}", cpu.describe())};
  return {Precision::fp32, fmt::format("auto: CPU has {}, so fp32", cpu.describe())};
}

PrecisionChoice stored_precision(const std::string& stored, bool cuda, const CpuBf16& cpu) {
  if (stored.empty()) {
    return cuda ? PrecisionChoice{Precision::bf16, "run stored before [run] precision existed: bf16 on CUDA"}
                : PrecisionChoice{Precision::fp32, "run stored before [run] precision existed: fp32 on CPU"};
  }
  if (stored == "fp32") return {Precision::fp32, "fp32: the precision the run started in"};
  if (stored != "bf16") throw config::ConfigError(fmt::format("the run's stored precision '{}' is unknown", stored));
  if (!cuda && !cpu.native()) {
    throw config::ConfigError(fmt::format(
        "the run trained in bf16, and this CPU has {}: continue it on a machine with native bf16 (AVX-512 BF16 "
        "or AMX) or a GPU, where its numbers continue as they began",
        cpu.describe()));
  }
  return {Precision::bf16, "bf16: the precision the run started in"};
}

MatmulPrecision choose_matmul_precision(bool cuda, bool tf32) {
  if (!cuda) return {"highest", "fp32 matrix products in fp32 (CPU)"};
  if (!tf32) return {"highest", "fp32 matrix products in true fp32: [run] tf32 = false"};
  return {"high", "fp32 matrix products in TF32 on CUDA ([run] tf32 = true)"};
}

}  // namespace jepa::train
