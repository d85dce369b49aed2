#include "train/torch_file.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <type_traits>

namespace jepa::train {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error("write_torch_file: " + what);
}

// The Python class torch.load maps back to the dtype; every one is in the weights-only allowlist.
const char* storage_class(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float:
      return "FloatStorage";
    case c10::ScalarType::Double:
      return "DoubleStorage";
    case c10::ScalarType::Half:
      return "HalfStorage";
    case c10::ScalarType::BFloat16:
      return "BFloat16Storage";
    case c10::ScalarType::Long:
      return "LongStorage";
    case c10::ScalarType::Int:
      return "IntStorage";
    case c10::ScalarType::Short:
      return "ShortStorage";
    case c10::ScalarType::Char:
      return "CharStorage";
    case c10::ScalarType::Byte:
      return "ByteStorage";
    case c10::ScalarType::Bool:
      return "BoolStorage";
    case c10::ScalarType::ComplexFloat:
      return "ComplexFloatStorage";
    case c10::ScalarType::ComplexDouble:
      return "ComplexDoubleStorage";
    default:
      return nullptr;
  }
}

void put_le(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

// Emits pickle protocol 2 with only the opcodes and globals Python's weights-only unpickler
// accepts. No memo (BINPUT/BINGET): every object is written once, so nothing is shared.
class Pickler {
 public:
  Pickler() { bytes_ += "\x80\x02"; }  // PROTO 2: torch.load warns on any other protocol

  std::string finish(const PyValue& root) {
    value(root);
    bytes_.push_back('.');  // STOP
    return std::move(bytes_);
  }

  // Contiguous CPU tensors, one storage each; the storage key is the index.
  std::vector<torch::Tensor>& storages() { return storages_; }

 private:
  void op(char c) { bytes_.push_back(c); }

  void string(const std::string& s) {
    if (s.size() > std::numeric_limits<uint32_t>::max()) fail("string longer than 4 GiB");
    op('X');  // BINUNICODE
    put_le(bytes_, s.size(), 4);
    bytes_ += s;
  }

  void integer(int64_t v) {
    if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
      op('J');  // BININT
      put_le(bytes_, static_cast<uint64_t>(v), 4);
      return;
    }
    // LONG1: minimal little-endian two's complement, as Python encodes it.
    std::string le;
    put_le(le, static_cast<uint64_t>(v), 8);
    size_t n = le.size();
    auto byte = [&](size_t i) { return static_cast<unsigned char>(le[i]); };
    while (n > 1 && ((byte(n - 1) == 0x00 && !(byte(n - 2) & 0x80)) || (byte(n - 1) == 0xff && (byte(n - 2) & 0x80))))
      --n;
    op('\x8a');
    op(static_cast<char>(n));
    bytes_.append(le, 0, n);
  }

  void real(double d) {
    uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    op('G');  // BINFLOAT: big-endian IEEE 754 double
    for (int i = 7; i >= 0; --i) op(static_cast<char>((bits >> (8 * i)) & 0xff));
  }

  void boolean(bool b) { op(b ? '\x88' : '\x89'); }  // NEWTRUE / NEWFALSE

  void global(const char* module, const char* name) {
    op('c');
    bytes_ += module;
    op('\n');
    bytes_ += name;
    op('\n');
  }

  // collections.OrderedDict(): what Python's pickler writes for an OrderedDict, before its items.
  void empty_ordered_dict() {
    global("collections", "OrderedDict");
    op(')');  // EMPTY_TUPLE
    op('R');  // REDUCE
  }

  void int_tuple(const std::vector<int64_t>& items) {
    if (items.empty()) return op(')');
    if (items.size() > 3) op('(');
    for (int64_t i : items) integer(i);
    op(items.size() > 3 ? 't' : static_cast<char>(0x85 + items.size() - 1));  // TUPLE or TUPLE1..3
  }

  void dict(const PyDict& d, bool ordered) {
    if (ordered) {
      empty_ordered_dict();
    } else {
      op('}');  // EMPTY_DICT
    }
    if (d.empty()) return;
    op('(');  // MARK
    for (const auto& [key, v] : d) {
      string(key);
      value(v);
    }
    op('u');  // SETITEMS
  }

  void tensor(const torch::Tensor& t) {
    if (!t.defined()) fail("undefined tensor");
    if (t.layout() != torch::kStrided || t.is_quantized()) fail("only dense tensors can be written");
    const char* cls = storage_class(t.scalar_type());
    if (cls == nullptr) fail(fmt::format("unsupported dtype {}", c10::toString(t.scalar_type())));
    // Lazy conjugate/negative views hold other values than their memory: materialize them.
    torch::Tensor c = t.detach().to(torch::kCPU).resolve_conj().resolve_neg().contiguous();
    const std::vector<int64_t> sizes = c.sizes().vec();
    // Canonical row-major strides (as torch computes them, empty dims count as 1): what the
    // bytes we write describe, whatever strides contiguous() left on size-1 dims.
    std::vector<int64_t> strides(sizes.size(), 1);
    for (size_t i = sizes.size(); i-- > 1;) strides[i - 1] = strides[i] * std::max<int64_t>(sizes[i], 1);
    const std::string key = std::to_string(storages_.size());
    storages_.push_back(c);

    global("torch._utils", "_rebuild_tensor_v2");
    op('(');
    // Persistent id ('storage', torch.<Type>Storage, key, location, numel): torch.load reads
    // archive/data/<key> for it.
    op('(');
    string("storage");
    global("torch", cls);
    string(key);
    string("cpu");
    integer(c.numel());
    op('t');
    op('Q');     // BINPERSID
    integer(0);  // storage offset
    int_tuple(sizes);
    int_tuple(strides);
    boolean(false);        // requires_grad
    empty_ordered_dict();  // backward hooks
    op('t');
    op('R');
  }

  void value(const PyValue& v) {
    std::visit(
        [&](const auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, int64_t>) {
            integer(x);
          } else if constexpr (std::is_same_v<T, double>) {
            real(x);
          } else if constexpr (std::is_same_v<T, bool>) {
            boolean(x);
          } else if constexpr (std::is_same_v<T, std::string>) {
            string(x);
          } else if constexpr (std::is_same_v<T, torch::Tensor>) {
            tensor(x);
          } else {
            static_assert(std::is_same_v<T, PyDict>);
            dict(x, v.ordered);
          }
        },
        v.v);
  }

  std::string bytes_;
  std::vector<torch::Tensor> storages_;
};

// The ZIP layout torch.save produces: stored entries, each local header padded with an 'FB'
// extra field so the data starts on a 64-byte boundary (torch.load(mmap=True) maps storages
// in place and needs the alignment).
constexpr uint64_t kAlignment = 64;
constexpr uint64_t kLocalHeaderSize = 30;
constexpr uint64_t kCentralHeaderSize = 46;
constexpr uint64_t kEndRecordSize = 22;
constexpr uint64_t kExtraHeaderSize = 4;  // id + length of the 'FB' padding field
constexpr uint16_t kVersionNeeded = 20;
// Fixed timestamp (1980-01-01 00:00, the DOS epoch) so equal weights give byte-identical files.
constexpr uint16_t kDosTime = 0;
constexpr uint16_t kDosDate = (1 << 5) | 1;

struct ZipEntry {
  std::string name;
  const char* data = nullptr;
  uint64_t size = 0;
  uint32_t crc = 0;
  uint64_t header_offset = 0;
  uint64_t padding = 0;
};

uint32_t crc_of(const char* data, uint64_t size) {
  uLong crc = crc32(0L, Z_NULL, 0);
  // zlib takes 32-bit lengths; feed large storages in pieces.
  while (size > 0) {
    const auto n = static_cast<uInt>(std::min<uint64_t>(size, uint64_t{1} << 30));
    crc = crc32(crc, reinterpret_cast<const Bytef*>(data), n);
    data += n;
    size -= n;
  }
  return static_cast<uint32_t>(crc);
}

void put_common_fields(std::string& h, const ZipEntry& e) {
  put_le(h, 0, 2);  // flags
  put_le(h, 0, 2);  // method: stored
  put_le(h, kDosTime, 2);
  put_le(h, kDosDate, 2);
  put_le(h, e.crc, 4);
  put_le(h, e.size, 4);  // compressed size
  put_le(h, e.size, 4);  // uncompressed size
  put_le(h, e.name.size(), 2);
}

std::string local_header(const ZipEntry& e) {
  std::string h;
  put_le(h, 0x04034b50, 4);
  put_le(h, kVersionNeeded, 2);
  put_common_fields(h, e);
  put_le(h, kExtraHeaderSize + e.padding, 2);
  h += e.name;
  h += "FB";  // extra field id 0x4246, as torch writes it
  put_le(h, e.padding, 2);
  h.append(e.padding, 'Z');
  return h;
}

std::string central_header(const ZipEntry& e) {
  std::string h;
  put_le(h, 0x02014b50, 4);
  put_le(h, kVersionNeeded, 2);  // version made by (MS-DOS attributes: none set)
  put_le(h, kVersionNeeded, 2);
  put_common_fields(h, e);
  put_le(h, 0, 2);  // extra field length: the padding is only needed locally
  put_le(h, 0, 2);  // comment length
  put_le(h, 0, 2);  // disk number
  put_le(h, 0, 2);  // internal attributes
  put_le(h, 0, 4);  // external attributes
  put_le(h, e.header_offset, 4);
  h += e.name;
  return h;
}

const char* host_byte_order() {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
  return "big";  // storages hold raw host-order bytes; torch.load swaps them when told so
#else
  return "little";
#endif
}

void write_zip(const fs::path& path, std::vector<ZipEntry>& entries) {
  if (entries.size() >= 0xffff) fail(fmt::format("{}: {} entries exceed the ZIP limit", path.string(), entries.size()));
  // Lay out everything first, so an archive over the 32-bit ZIP limits fails before writing.
  uint64_t cursor = 0;
  uint64_t central_size = 0;
  for (auto& e : entries) {
    e.header_offset = cursor;
    const uint64_t unpadded = cursor + kLocalHeaderSize + e.name.size() + kExtraHeaderSize;
    e.padding = (kAlignment - unpadded % kAlignment) % kAlignment;
    cursor = unpadded + e.padding + e.size;
    central_size += kCentralHeaderSize + e.name.size();
  }
  const uint64_t central_offset = cursor;
  const uint64_t total = central_offset + central_size + kEndRecordSize;
  if (total > std::numeric_limits<uint32_t>::max())
    fail(fmt::format("{}: {} bytes exceed the 4 GiB limit of ZIP without ZIP64, which is not supported", path.string(),
                     total));
  for (auto& e : entries) e.crc = crc_of(e.data, e.size);

  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) fail(fmt::format("cannot open {} for writing", path.string()));
  try {
    for (const auto& e : entries) {
      const std::string h = local_header(e);
      f.write(h.data(), static_cast<std::streamsize>(h.size()));
      if (e.size > 0) f.write(e.data, static_cast<std::streamsize>(e.size));
    }
    std::string tail;
    for (const auto& e : entries) tail += central_header(e);
    put_le(tail, 0x06054b50, 4);
    put_le(tail, 0, 2);  // this disk
    put_le(tail, 0, 2);  // disk with the central directory
    put_le(tail, entries.size(), 2);
    put_le(tail, entries.size(), 2);
    put_le(tail, central_size, 4);
    put_le(tail, central_offset, 4);
    put_le(tail, 0, 2);  // comment length
    f.write(tail.data(), static_cast<std::streamsize>(tail.size()));
    f.flush();
    if (!f) fail(fmt::format("cannot write {}", path.string()));
  } catch (...) {
    // Never leave a truncated archive behind under the requested name.
    f.close();
    std::error_code ec;
    fs::remove(path, ec);
    throw;
  }
}

}  // namespace

void write_torch_file(const fs::path& path, const PyValue& root) {
  Pickler pickler;
  const std::string pickle = pickler.finish(root);
  const std::vector<torch::Tensor>& storages = pickler.storages();
  static const std::string kByteOrder = host_byte_order();
  static const std::string kVersion = "3\n";  // PyTorchStreamReader requires a version record

  // All entries live under one folder ("archive/"); the reader takes its name from the first.
  std::vector<ZipEntry> entries;
  entries.push_back({"archive/data.pkl", pickle.data(), pickle.size()});
  entries.push_back({"archive/byteorder", kByteOrder.data(), kByteOrder.size()});
  for (size_t i = 0; i < storages.size(); ++i) {
    const torch::Tensor& t = storages[i];
    entries.push_back({"archive/data/" + std::to_string(i), static_cast<const char*>(t.data_ptr()), t.nbytes()});
  }
  entries.push_back({"archive/version", kVersion.data(), kVersion.size()});
  write_zip(path, entries);
}

}  // namespace jepa::train
