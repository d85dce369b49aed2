// A writer of PyTorch's zip checkpoint format (what Python's torch.save writes) that uses only the
// globals Python's weights-only unpickler accepts. torch::pickle_save tags every dict with
// torch.jit._pickle.restore_type_tag, which torch.load rejects by default since PyTorch 2.6
// (weights_only=True), so exports written with it would need weights_only=False to open.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace jepa::train {

struct PyValue;

// Insertion-ordered (Python dicts keep insertion order, and state dicts are read in order).
using PyDict = std::vector<std::pair<std::string, PyValue>>;

// A value Python's torch.load(weights_only=True) can rebuild. Tensors become torch.Tensor (copied
// to CPU and made contiguous); dicts become dict, or collections.OrderedDict when `ordered` is set
// (what state_dict() returns in Python).
struct PyValue {
  std::variant<int64_t, double, bool, std::string, torch::Tensor, PyDict> v;
  bool ordered = false;  // only meaningful for PyDict
};

// Writes `root` to `path` as torch.save would: a stored (uncompressed) ZIP archive with the pickle
// (protocol 2) in archive/data.pkl and one storage per tensor in archive/data/<n>, each aligned to
// 64 bytes so torch.load(mmap=True) works. Globals used: collections.OrderedDict,
// torch._utils._rebuild_tensor_v2 and torch.<Type>Storage only.
// Throws std::runtime_error when the archive would exceed 4 GiB (no ZIP64), for tensors that
// cannot be stored (undefined, sparse, quantized, unsupported dtype), or on I/O failure (the
// partial file is removed). Not atomic: callers wanting that write a temporary and rename it.
void write_torch_file(const std::filesystem::path& path, const PyValue& root);

}  // namespace jepa::train
