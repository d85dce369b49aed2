// Which floating-point precision a run trains and evaluates in, and why. LibTorch-free: the
// choice depends only on the setting, the device kind and what this CPU can do natively.
#pragma once

#include <string>

namespace jepa::train {

enum class Precision { fp32, bf16 };

std::string precision_name(Precision p);  // "fp32" | "bf16"

// What this CPU offers for bf16 matrix products, detected at run time (cpuid and the OS's saved
// register state), never at build time: one binary serves machines with and without it.
struct CpuBf16 {
  bool avx512_bf16 = false;  // AVX-512 BF16 (Zen 4, Cooper Lake, Sapphire Rapids ...)
  bool amx_bf16 = false;     // AMX tiles with bf16 (Sapphire Rapids and later)
  bool forced = false;       // set by JEPA_CPU_BF16 rather than detected

  bool native() const { return avx512_bf16 || amx_bf16; }
  std::string describe() const;  // "AVX512_BF16", "AVX512_BF16, AMX_BF16", "no native bf16"
};

// Detection, unless the environment variable JEPA_CPU_BF16 is "0" (pretend there is none) or "1"
// (pretend there is): tests and users on unusual machines can force either answer.
CpuBf16 detect_cpu_bf16();

struct PrecisionChoice {
  Precision precision = Precision::fp32;
  std::string reason;  // one line, stored with the run: "auto: CPU has AVX512_BF16"
};

// `setting`: "auto" | "fp32" | "bf16" ([run] precision). auto is bf16 on CUDA and on CPUs with
// native bf16, fp32 elsewhere. bf16 on a CPU without native support throws config::ConfigError:
// emulated bf16 is several times slower than fp32, never what anyone wants.
PrecisionChoice choose_precision(const std::string& setting, bool cuda, const CpuBf16& cpu);

// Resuming or evaluating a stored run: the precision it was started in (`stored`, its
// environment's "precision"), so its numbers continue as they began. A run stored before
// [run] precision existed (stored = "") trained in bf16 on CUDA and fp32 on CPU, and keeps that.
// bf16 on a CPU without native bf16 throws config::ConfigError, as choose_precision does.
PrecisionChoice stored_precision(const std::string& stored, bool cuda, const CpuBf16& cpu);

// How fp32 matrix products run on this run's device, as torch's float32_matmul_precision:
// "high" (TF32 tensor cores) on CUDA unless [run] tf32 = false, "highest" (true fp32) otherwise.
// CUDA's default is true fp32, about 7x slower than TF32 on an H100/H200; bf16 autocast leaves
// only the fp32 parts (layer norms, loss, optimizer, EMA) to it. `reason` goes to the run's
// environment beside the precision.
struct MatmulPrecision {
  std::string setting;  // "high" | "highest"
  std::string reason;
};
MatmulPrecision choose_matmul_precision(bool cuda, bool tf32);

}  // namespace jepa::train
