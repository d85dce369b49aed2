// Fashion-MNIST from its IDX .gz files, decompressed once into memory (47 MB for the training
// split), so that load() is a copy and never fails.
#include <zlib.h>

#include <fmt/format.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <memory>
#include <system_error>

#include "data/dataset.hpp"

namespace jepa::data {
namespace {

constexpr uint32_t kImagesMagic = 2051;  // IDX: unsigned byte, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // IDX: unsigned byte, 1 dimension
constexpr int64_t kNumClasses = 10;

const std::vector<std::string>& fashion_classes() {
  static const std::vector<std::string> names{"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                              "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose_r(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// One open IDX file; every error names the file.
class IdxReader {
 public:
  explicit IdxReader(std::filesystem::path path) : path_(std::move(path)) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) fail("file not found");
    errno = 0;
    file_.reset(gzopen(path_.c_str(), "rb"));
    if (!file_) fail(errno != 0 ? std::strerror(errno) : "cannot open");
    gzbuffer(file_.get(), 1 << 17);
  }

  [[noreturn]] void fail(const std::string& what) const {
    throw DataError(fmt::format("Fashion-MNIST file {}: {}", path_.string(), what));
  }

  uint32_t read_u32(const char* what) {
    unsigned char bytes[4];
    read_exact(bytes, sizeof bytes, what);
    return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | bytes[3];
  }

  // Reads exactly `size` bytes or fails saying which part of the file was cut short.
  void read_exact(void* data, size_t size, const char* what) {
    auto* out = static_cast<unsigned char*>(data);
    size_t done = 0;
    while (done < size) {
      const unsigned chunk = static_cast<unsigned>(std::min<size_t>(size - done, 1u << 30));
      const int got = gzread(file_.get(), out + done, chunk);
      if (got < 0) fail(fmt::format("corrupt gzip data while reading {} ({})", what, gz_message()));
      if (got == 0) {
        fail(fmt::format("truncated: {} ends after {} of {} bytes{}", what, done, size,
                         gz_has_error() ? fmt::format(" ({})", gz_message()) : std::string()));
      }
      done += static_cast<size_t>(got);
    }
  }

  // Extra bytes after the declared items mean the header does not describe the file.
  void expect_end() {
    unsigned char byte;
    const int got = gzread(file_.get(), &byte, 1);
    if (got < 0) fail(fmt::format("corrupt gzip data at the end ({})", gz_message()));
    if (got > 0) fail("unexpected data after the last item (header count too small)");
  }

 private:
  bool gz_has_error() const {
    int code = Z_OK;
    gzerror(file_.get(), &code);
    return code != Z_OK;
  }
  std::string gz_message() const {
    int code = Z_OK;
    const char* message = gzerror(file_.get(), &code);
    return code == Z_ERRNO ? std::strerror(errno) : (message != nullptr ? message : "unknown error");
  }

  std::filesystem::path path_;
  GzFile file_;
};

class FashionMnist final : public ImageSource {
 public:
  FashionMnist(const std::filesystem::path& folder, Split split)
      : split_name_(split == Split::train ? "train" : "test") {
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) {
      throw DataError(fmt::format("Fashion-MNIST folder not found: {}", folder.string()));
    }
    const std::string prefix = split == Split::train ? "train" : "t10k";
    read_images(folder / (prefix + "-images-idx3-ubyte.gz"));
    read_labels(folder / (prefix + "-labels-idx1-ubyte.gz"));
  }

  int64_t size() const override { return count_; }
  int channels() const override { return 1; }
  int64_t num_classes() const override { return kNumClasses; }
  const std::vector<std::string>& class_names() const override { return fashion_classes(); }

  int64_t label(int64_t index) const override {
    check(index);
    return labels_[static_cast<size_t>(index)];
  }

  std::optional<Image> load(int64_t index) const override {
    check(index);
    Image image;
    image.height = rows_;
    image.width = cols_;
    image.channels = 1;
    const size_t bytes = static_cast<size_t>(rows_) * cols_;
    const auto* first = pixels_.data() + static_cast<size_t>(index) * bytes;
    image.pixels.assign(first, first + bytes);
    return image;
  }

  std::string describe(int64_t index) const override { return fmt::format("fashion-mnist {}[{}]", split_name_, index); }

 private:
  void check(int64_t index) const {
    if (index < 0 || index >= count_) {
      throw std::out_of_range(fmt::format("fashion-mnist {}: index {} outside [0, {})", split_name_, index, count_));
    }
  }

  void read_images(const std::filesystem::path& path) {
    IdxReader reader(path);
    const uint32_t magic = reader.read_u32("the header");
    if (magic != kImagesMagic) {
      reader.fail(fmt::format("bad magic number {} (expected {} for an IDX image file)", magic, kImagesMagic));
    }
    const uint32_t count = reader.read_u32("the header");
    const uint32_t rows = reader.read_u32("the header");
    const uint32_t cols = reader.read_u32("the header");
    // Bounds that any real IDX image file meets; they keep a damaged header from asking for
    // terabytes before the truncation is noticed.
    if (count == 0 || count > 10'000'000) reader.fail(fmt::format("implausible image count {}", count));
    if (rows == 0 || cols == 0 || rows > 1024 || cols > 1024) {
      reader.fail(fmt::format("implausible image size {}x{}", rows, cols));
    }
    count_ = count;
    rows_ = static_cast<int>(rows);
    cols_ = static_cast<int>(cols);
    pixels_.resize(static_cast<size_t>(count) * rows * cols);
    reader.read_exact(pixels_.data(), pixels_.size(), "the pixels");
    reader.expect_end();
  }

  void read_labels(const std::filesystem::path& path) {
    IdxReader reader(path);
    const uint32_t magic = reader.read_u32("the header");
    if (magic != kLabelsMagic) {
      reader.fail(fmt::format("bad magic number {} (expected {} for an IDX label file)", magic, kLabelsMagic));
    }
    const uint32_t count = reader.read_u32("the header");
    if (count != count_) {
      reader.fail(fmt::format("{} labels for {} images", count, count_));
    }
    labels_.resize(count);
    reader.read_exact(labels_.data(), labels_.size(), "the labels");
    reader.expect_end();
    for (size_t i = 0; i < labels_.size(); ++i) {
      if (labels_[i] >= kNumClasses) {
        reader.fail(fmt::format("label {} of item {} is outside 0..{}", labels_[i], i, kNumClasses - 1));
      }
    }
  }

  std::string split_name_;
  int64_t count_ = 0;
  int rows_ = 0;
  int cols_ = 0;
  std::vector<uint8_t> pixels_;  // count * rows * cols, row-major
  std::vector<uint8_t> labels_;
};

}  // namespace

std::unique_ptr<ImageSource> open_fashion_mnist(const std::filesystem::path& folder, Split split) {
  return std::make_unique<FashionMnist>(folder, split);
}

}  // namespace jepa::data
