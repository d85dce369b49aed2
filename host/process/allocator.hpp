// How this process's heap serves tensors. No LibTorch here.
#pragma once

namespace jepa::process {

// glibc serves every allocation above its mmap threshold (128 KiB at first, raised only by the
// frees it happens to see) with a fresh mmap, and gives freed heap back above its trim threshold:
// activations of a few MB are then page-faulted in again on every call. Measured on the
// quickstart encoder's inference in a fresh process: 6x slower in bf16 and 4x in fp32 than once
// warm. This keeps allocations below 256 MiB on the heap and freed memory up to 1 GiB for reuse
// (what PyTorch users get from jemalloc or tcmalloc), unless the user set MALLOC_MMAP_THRESHOLD_
// or MALLOC_TRIM_THRESHOLD_ (glibc's own variables) themselves. Call first thing in main().
void tune_allocator();

}  // namespace jepa::process
