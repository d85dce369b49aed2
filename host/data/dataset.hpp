// Datasets and the batch pipeline. No LibTorch here: batches are plain float buffers that the
// trainer wraps without copying, so this room compiles fast and is tested on its own.
#pragma once

#include <array>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
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

// One decoded image, HWC, 8-bit.
struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

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
// names. Decoding with libjpeg-turbo and libpng. Throws DataError when the root or the split
// folder does not exist or holds no images.
// Both splits take their class list from train/ (when it exists) so that a label means the same
// class in each; a val/ class that train/ lacks is a DataError. Files are found recursively and
// sorted (folder, then name), as torchvision; the format is sniffed from the content. Images are
// always 3-channel RGB (grey, palette, CMYK converted).
std::unique_ptr<ImageSource> open_image_folder(const std::filesystem::path& root, Split split);

struct Transform {
  int image_size = 224;  // output is image_size x image_size
  // RandomResizedCrop as torchvision: area fraction in [scale0, scale1], log-uniform aspect
  // ratio in [3/4, 4/3], 10 tries then a centre crop fallback; bilinear resize. When
  // `random_crop` is false: a plain resize of the whole image (evaluation).
  bool random_crop = true;
  std::array<double, 2> crop_scale{0.3, 1.0};
  std::vector<double> mean{0.485, 0.456, 0.406};  // per channel, applied after scaling to [0, 1]
  std::vector<double> std{0.229, 0.224, 0.225};
  // mean and std need one entry per channel of the source, or one for all (e.g. {0.286} and
  // {0.353} for Fashion-MNIST); otherwise EpochLoader and load_range throw std::invalid_argument.
};

// One batch, NCHW float32, normalised.
struct Batch {
  int64_t batch_size = 0;
  int channels = 0;
  int height = 0;
  int width = 0;
  std::vector<float> images;     // batch_size * channels * height * width
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
  int workers = 2;     // decoding threads; 0 = decode on the calling thread
  int prefetch = 4;    // batches decoded ahead
  int rank = 0;        // shard: this rank reads every world_size-th item of the epoch's order,
  int world_size = 1;  //   as torch's DistributedSampler
  int64_t limit = 0;   // use only the first `limit` items of the source (0 = all); for quick runs
};

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

// Decodes and transforms a contiguous range [begin, end) of a source, in order, without
// shuffling or random crops (for evaluation and feature extraction). Corrupt items are skipped.
Batch load_range(const ImageSource& source, const Transform& transform, int64_t begin, int64_t end);

}  // namespace jepa::data
