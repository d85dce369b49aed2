// Datasets and the batch pipeline. No LibTorch here: batches are plain float buffers that the
// trainer wraps without copying, so this room compiles fast and is tested on its own.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::data {

// A dataset that cannot be used at all (missing folder, unreadable IDX file, no images):
// raised before training starts.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class Split { train, test };

// A crop rectangle inside an image: rows [top, top + height), columns [left, left + width).
struct CropBox {
  int top = 0;
  int left = 0;
  int height = 0;
  int width = 0;
};

// One decoded image, HWC, 8-bit: the whole image, or a window of it (a crop decode), in which case
// the pixels are rows [top, top + height) and columns [left, left + width) of a full_height x
// full_width image.
struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
  int top = 0;
  int left = 0;
  int full_height = 0;  // 0 = height (a whole image)
  int full_width = 0;   // 0 = width
  int image_height() const { return full_height > 0 ? full_height : height; }
  int image_width() const { return full_width > 0 ? full_width : width; }
};

// Given an image's (height, width), the part of it a transform will read.
using WindowOf = std::function<CropBox(int height, int width)>;

// Random access to labelled images of one split.
class ImageSource {
 public:
  virtual ~ImageSource() = default;
  virtual int64_t size() const = 0;
  virtual int channels() const = 0;  // 1 for Fashion-MNIST, 3 for image folders
  virtual int64_t num_classes() const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;
  virtual int64_t label(int64_t index) const = 0;
  // Decodes image `index`; std::nullopt when it is corrupt or unreadable (the caller skips it).
  virtual std::optional<Image> load(int64_t index) const = 0;
  // Decodes at least the window that `window_of` picks from the image's size (called once, as soon
  // as the size is known; not at all when the file is unreadable). Sources that can decode part
  // of a file (JPEG) return just that window with its place in the image; this default decodes
  // the whole image.
  virtual std::optional<Image> load_window(int64_t index, const WindowOf& window_of) const {
    std::optional<Image> image = load(index);
    if (image) window_of(image->height, image->width);
    return image;
  }
  // Human-readable name of item `index` (a file path, or "train[123]"), for warnings.
  virtual std::string describe(int64_t index) const = 0;
};

// Fashion-MNIST from its four IDX .gz files (the Debian package's folder by default):
// train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
// t10k-labels-idx1-ubyte.gz. Throws DataError naming the file when one is missing or malformed.
std::unique_ptr<ImageSource> open_fashion_mnist(const std::filesystem::path& folder, Split split);
// Where Debian's dataset-fashion-mnist puts it.
inline const char* kFashionMnistDefaultPath = "/usr/share/datasets/fashion-mnist";
// The folder an empty [data] path means: $JEPA_FASHION_MNIST when set and not empty (the dataset
// unpacked elsewhere, e.g. from carried .debs: docs/offline-build.md), else the Debian folder.
inline std::string fashion_mnist_default_path() {
  const char* env = std::getenv("JEPA_FASHION_MNIST");
  return env != nullptr && *env != '\0' ? std::string(env) : std::string(kFashionMnistDefaultPath);
}

// ImageNet-style folders: <root>/train/<class>/*.{jpg,jpeg,png} and <root>/val/<class>/...
// (test split = "val", or "test" when there is no "val"). Classes are the sorted sub-folder
// names. Decoding with libjpeg-turbo (accurate IDCT and fancy upsampling, as PIL, so the pixels
// are PIL's; load_window decodes only the rows and iMCU columns a crop needs) and libpng.
// Truncated (no end-of-image marker), corrupt (a corrupt-data warning from libjpeg), empty and
// absurdly large files are unreadable: load() returns std::nullopt. Throws DataError when the
// root or the split folder does not exist or holds no images.
// Both splits take their class list from train/ (when it exists) so that a label means the same
// class in each; a val/ class that train/ lacks is a DataError. Files are found recursively and
// sorted (folder, then name), as torchvision; the format is sniffed from the content. Images are
// always 3-channel RGB (grey, palette, CMYK converted).
std::unique_ptr<ImageSource> open_image_folder(const std::filesystem::path& root, Split split);

// The official code's transforms, on torchvision's PIL path: every resize is PIL's antialiased
// bilinear (a triangle filter as wide as the downscale factor, 8-bit fixed point, rounded to 8 bits
// after each pass), so crops equal torchvision's within one grey level (tests/data/pil_reference).
struct Transform {
  int image_size = 224;  // output is image_size x image_size
  // RandomResizedCrop as torchvision: area fraction in [scale0, scale1], log-uniform aspect
  // ratio in [3/4, 4/3], 10 tries then a centre crop fallback; then resize. When `random_crop`
  // is false: the evaluation transform below.
  bool random_crop = true;
  std::array<double, 2> crop_scale{0.3, 1.0};
  bool horizontal_flip = false;  // RandomHorizontalFlip(0.5) after the crop (off upstream)
  // Evaluation: true = Resize(eval_resize) of the shorter side then CenterCrop(image_size), as
  // the official probe (eval_resize 0 = image_size * 256 / 224); false = the whole image resized
  // to image_size x image_size.
  bool eval_center_crop = true;
  int eval_resize = 0;
  std::vector<double> mean{0.485, 0.456, 0.406};  // per channel, applied after scaling to [0, 1]
  std::vector<double> std{0.229, 0.224, 0.225};
  // mean and std need one entry per channel of the source, or one for all (e.g. {0.286} and
  // {0.353} for Fashion-MNIST); otherwise EpochLoader and load_range throw std::invalid_argument.
};

// Normalisation as one multiply-add per value: x * gain[c] + bias[c] with gain = 1 / (255 std)
// and bias = -mean / std, for 8-bit x; what the loader applies on the CPU and a GPU applies to
// Batch::pixels. Throws std::invalid_argument as EpochLoader for a bad mean/std.
struct Normalisation {
  std::vector<float> gain;  // per channel
  std::vector<float> bias;
};
Normalisation normalisation(const Transform& transform, int channels);

// Blocks of batch memory, reused: a batch's pixels go back to the pool when the last holder lets
// go, and the next batch of the same size takes them, so a run allocates a handful of blocks.
// The allocation function decides what memory it is (a CUDA run gives pinned host memory).
class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  // Returns a block of at least `bytes` bytes, aligned to 64, freed when the pointer is dropped.
  using Allocate = std::function<std::shared_ptr<void>(size_t bytes)>;
  static std::shared_ptr<BufferPool> create(Allocate allocate = {});  // {} = aligned heap memory

  // A block of exactly `bytes` usable bytes: a free one of that size, else a new one.
  std::shared_ptr<uint8_t> acquire(size_t bytes);
  int64_t blocks_made() const;  // allocations so far (the rest were reuses)

 private:
  explicit BufferPool(Allocate allocate);
  Allocate allocate_;
  mutable std::mutex mutex_;
  std::vector<std::pair<size_t, std::shared_ptr<void>>> free_;  // (size, block)
  int64_t made_ = 0;
};

// A batch's pixel array: a view of `size()` values in a pooled block that it keeps alive.
template <typename T>
class PixelArray {
 public:
  PixelArray() = default;
  PixelArray(std::shared_ptr<uint8_t> block, size_t count)
      : block_(std::move(block)), data_(reinterpret_cast<T*>(block_.get())), size_(count) {}
  T* data() const { return data_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  T& operator[](size_t i) const { return data_[i]; }
  T* begin() const { return data_; }
  T* end() const { return data_ + size_; }
  const std::shared_ptr<uint8_t>& block() const { return block_; }
  void reset() { *this = PixelArray(); }
  friend bool operator==(const PixelArray& a, const PixelArray& b) {
    return a.size_ == b.size_ && std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  std::shared_ptr<uint8_t> block_;
  T* data_ = nullptr;
  size_t size_ = 0;
};

// One batch, NCHW: normalised float32 in `images`, or (LoaderOptions::normalise = false) the 8-bit
// pixels the transforms produce in `pixels`, for a GPU to normalise.
struct Batch {
  int64_t batch_size = 0;
  int channels = 0;
  int height = 0;
  int width = 0;
  PixelArray<float> images;      // batch_size * channels * height * width, normalised
  PixelArray<uint8_t> pixels;    // the same layout, 0..255, before normalisation
  std::vector<int64_t> labels;   // batch_size
  std::vector<int64_t> indices;  // dataset indices, batch_size
  int64_t epoch = 0;
  int64_t batch_index = 0;  // within the epoch
};

struct LoaderOptions {
  int64_t batch_size = 128;
  uint64_t seed = 0;
  bool shuffle = true;  // deterministic given (seed, epoch)
  bool drop_last = true;
  int workers = 2;                   // decoding threads, each taking one image at a time; 0 = the calling thread
  int prefetch = 3;                  // batches decoded ahead of the consumer (every worker helps the oldest)
  bool normalise = true;             // false: Batch::pixels (uint8) instead of Batch::images
  std::shared_ptr<BufferPool> pool;  // where batches live; null = the loader's own heap pool
  int rank = 0;                      // shard: this rank reads every world_size-th item of the epoch's order,
  int world_size = 1;                //   as torch's DistributedSampler
  int64_t limit = 0;                 // use only the first `limit` items of the source (0 = all); for quick runs
};

// Decoding threads for one rank when the configuration says "auto", from the cores that rank may
// use (its share of the machine, or what a sweep slot gives it): on a CUDA run all of them but one
// (the training thread's); on a CPU run, where LibTorch's threads train on the same cores, a
// quarter, at least 2.
int auto_workers(int cores_for_rank, bool cuda);

// Iterates the batches of one epoch, in an order fixed by (seed, epoch), decoding in worker
// threads ahead of the consumer. Corrupt images are skipped with one warning each on stderr
// naming the item, and counted; the batch is filled from the next items of the order.
// Random crops draw from a generator keyed by (seed, epoch, index), so a batch is the same
// whether it is produced in a fresh process or after a resume.
// `start_batch` skips start_batch * batch_size items of this rank's order without decoding them:
// exact when none of the skipped items is corrupt (a corrupt item shifts later batches by one).
// Because corrupt items are skipped, the epoch may yield fewer than batches_per_epoch() batches.
// next() rethrows an exception raised while decoding (in a worker or not), in batch order.
class EpochLoader {
 public:
  EpochLoader(std::shared_ptr<const ImageSource> source, Transform transform, LoaderOptions options, int64_t epoch,
              int64_t start_batch = 0);
  ~EpochLoader();  // stops and joins the workers
  EpochLoader(const EpochLoader&) = delete;
  EpochLoader& operator=(const EpochLoader&) = delete;

  // Batches per epoch for this rank (after sharding and drop_last).
  static int64_t batches_per_epoch(int64_t source_size, const LoaderOptions& options);

  // The next batch, or std::nullopt at the end of the epoch.
  std::optional<Batch> next();
  int64_t skipped() const;  // corrupt items skipped so far

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Decodes and transforms a contiguous range [begin, end) of a source, in order, with the
// evaluation transform (no shuffling or random crops), on up to `threads` threads (0 = every
// core), for evaluation and feature extraction. Corrupt items are skipped.
Batch load_range(const ImageSource& source, const Transform& transform, int64_t begin, int64_t end, int threads = 0);

}  // namespace jepa::data
