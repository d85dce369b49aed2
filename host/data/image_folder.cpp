// ImageNet-style class folders, decoded on demand with libjpeg-turbo (TurboJPEG v2 API, Debian 12
// ships 2.1) and libpng's simplified API. load() is called concurrently by the loader's workers.
#include <png.h>
#include <turbojpeg.h>

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

#include "data/dataset.hpp"

namespace fs = std::filesystem;

namespace jepa::data {
namespace {

// Refuse to allocate for absurd headers (a corrupt file claiming 60000 x 60000 pixels).
constexpr int64_t kMaxPixels = int64_t{1} << 28;

struct TjDeleter {
  void operator()(void* handle) const { tjDestroy(handle); }
};
using TjHandle = std::unique_ptr<void, TjDeleter>;

// One decompressor per thread: a tjhandle must not be shared between threads, and creating one
// per image would cost an allocation of libjpeg's state each time.
TjHandle& thread_decompressor() {
  thread_local TjHandle handle;
  if (!handle) handle.reset(tjInitDecompress());
  return handle;
}

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

std::optional<std::vector<unsigned char>> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return std::nullopt;
  const std::streamoff size = in.tellg();
  if (size <= 0) return std::nullopt;
  std::vector<unsigned char> bytes(static_cast<size_t>(size));
  in.seekg(0);
  if (!in.read(reinterpret_cast<char*>(bytes.data()), size)) return std::nullopt;
  return bytes;
}

std::optional<Image> decode_jpeg(const std::vector<unsigned char>& bytes) {
  TjHandle& handle = thread_decompressor();
  if (!handle) return std::nullopt;
  int width = 0;
  int height = 0;
  int subsampling = 0;
  int colorspace = 0;
  if (tjDecompressHeader3(handle.get(), bytes.data(), bytes.size(), &width, &height, &subsampling, &colorspace) != 0) {
    return std::nullopt;
  }
  if (width <= 0 || height <= 0 || int64_t{width} * height > kMaxPixels) return std::nullopt;
  // libjpeg cannot convert CMYK to RGB itself; those (a few dozen ImageNet files) are decoded as
  // CMYK and converted below, assuming Adobe's inverted storage as every common writer uses.
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  const int pixel_format = cmyk ? TJPF_CMYK : TJPF_RGB;
  const int pixel_size = tjPixelSize[pixel_format];
  std::vector<unsigned char> decoded(static_cast<size_t>(width) * height * pixel_size);
  if (tjDecompress2(handle.get(), bytes.data(), bytes.size(), decoded.data(), width, 0, height, pixel_format, 0) != 0) {
    // A warning (e.g. extraneous bytes before a marker) still yields the full image, as PIL
    // accepts it; a fatal error does not. Start afresh after a fatal error to be safe.
    if (tjGetErrorCode(handle.get()) != TJERR_WARNING) {
      handle.reset();
      return std::nullopt;
    }
  }
  Image image;
  image.height = height;
  image.width = width;
  image.channels = 3;
  if (!cmyk) {
    image.pixels = std::move(decoded);
    return image;
  }
  image.pixels.resize(static_cast<size_t>(width) * height * 3);
  for (size_t p = 0, n = static_cast<size_t>(width) * height; p < n; ++p) {
    const unsigned k = decoded[4 * p + 3];
    for (int c = 0; c < 3; ++c) image.pixels[3 * p + c] = static_cast<uint8_t>((decoded[4 * p + c] * k + 127) / 255);
  }
  return image;
}

std::optional<Image> decode_png(const std::vector<unsigned char>& bytes) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  if (png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()) == 0) return std::nullopt;
  // Frees libpng's state on every path out of this function, including exceptions.
  struct PngGuard {
    png_image* png;
    ~PngGuard() { png_image_free(png); }
  } guard{&png};
  if (png.width == 0 || png.height == 0 || int64_t{png.width} * png.height > kMaxPixels) return std::nullopt;
  png.format = PNG_FORMAT_RGB;  // grey, palette, 16-bit and alpha are all converted to 8-bit RGB
  Image image;
  image.height = static_cast<int>(png.height);
  image.width = static_cast<int>(png.width);
  image.channels = 3;
  image.pixels.resize(PNG_IMAGE_SIZE(png));
  if (png_image_finish_read(&png, nullptr, image.pixels.data(), 0, nullptr) == 0) return std::nullopt;
  return image;
}

class ImageFolder final : public ImageSource {
 public:
  ImageFolder(const fs::path& root, Split split) {
    std::error_code ec;
    if (!fs::is_directory(root, ec)) throw DataError(fmt::format("image folder not found: {}", root.string()));
    fs::path split_dir;
    if (split == Split::train) {
      split_dir = root / "train";
      if (!fs::is_directory(split_dir, ec)) {
        throw DataError(fmt::format("image folder {}: no 'train' sub-folder", root.string()));
      }
    } else {
      split_dir = root / "val";
      if (!fs::is_directory(split_dir, ec)) split_dir = root / "test";
      if (!fs::is_directory(split_dir, ec)) {
        throw DataError(fmt::format("image folder {}: no 'val' or 'test' sub-folder", root.string()));
      }
    }
    // Labels must mean the same in both splits (a probe trains on one and evaluates on the other),
    // so the class list always comes from train/ when it exists.
    const fs::path class_dir = fs::is_directory(root / "train", ec) ? root / "train" : split_dir;
    classes_ = list_classes(class_dir);
    if (classes_.empty()) throw DataError(fmt::format("image folder {}: no class sub-folders", class_dir.string()));
    std::map<std::string, int64_t> label_of;
    for (size_t i = 0; i < classes_.size(); ++i) label_of[classes_[i]] = static_cast<int64_t>(i);
    if (class_dir != split_dir) {
      for (const auto& name : list_classes(split_dir)) {
        if (label_of.count(name) == 0) {
          throw DataError(fmt::format("image folder {}: class '{}' is not among the {} classes of {}",
                                      split_dir.string(), name, classes_.size(), class_dir.string()));
        }
      }
    }
    for (size_t label = 0; label < classes_.size(); ++label) {
      const fs::path dir = split_dir / classes_[label];
      if (fs::is_directory(dir, ec)) add_files(dir, static_cast<int64_t>(label));
    }
    if (files_.empty()) throw DataError(fmt::format("image folder {}: no .jpg/.jpeg/.png images", split_dir.string()));
  }

  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  int channels() const override { return 3; }
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  const std::vector<std::string>& class_names() const override { return classes_; }

  int64_t label(int64_t index) const override { return at(index).second; }

  std::optional<Image> load(int64_t index) const override {
    const auto bytes = read_file(at(index).first);
    if (!bytes || bytes->size() < 4) return std::nullopt;
    // By content, not by extension: ImageNet has PNGs named .JPEG.
    const auto& b = *bytes;
    if (b[0] == 0xFF && b[1] == 0xD8) return decode_jpeg(b);
    if (b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') return decode_png(b);
    return std::nullopt;
  }

  std::string describe(int64_t index) const override { return at(index).first; }

 private:
  const std::pair<std::string, int64_t>& at(int64_t index) const {
    if (index < 0 || index >= size()) {
      throw std::out_of_range(fmt::format("image folder: index {} outside [0, {})", index, size()));
    }
    return files_[static_cast<size_t>(index)];
  }

  // Sorted sub-folder names, as torchvision's ImageFolder (byte order = code point order).
  static std::vector<std::string> list_classes(const fs::path& dir) {
    std::vector<std::string> names;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ec_dir;
      if (it->is_directory(ec_dir)) names.push_back(it->path().filename().string());
    }
    if (ec) throw DataError(fmt::format("image folder {}: {}", dir.string(), ec.message()));
    std::sort(names.begin(), names.end());
    return names;
  }

  // The class folder's images, recursively and in torchvision's order (by folder, then name).
  void add_files(const fs::path& dir, int64_t label) {
    std::vector<std::pair<std::string, std::string>> found;  // (parent folder, file name)
    std::error_code ec;
    const auto options =
        fs::directory_options::follow_directory_symlink | fs::directory_options::skip_permission_denied;
    for (fs::recursive_directory_iterator it(dir, options, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code ec_file;
      if (it->is_regular_file(ec_file) && has_image_extension(it->path())) {
        found.emplace_back(it->path().parent_path().string(), it->path().filename().string());
      }
    }
    if (ec) throw DataError(fmt::format("image folder {}: {}", dir.string(), ec.message()));
    std::sort(found.begin(), found.end());
    for (const auto& [parent, name] : found) files_.emplace_back((fs::path(parent) / name).string(), label);
  }

  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> files_;  // (path, label)
};

}  // namespace

std::unique_ptr<ImageSource> open_image_folder(const fs::path& root, Split split) {
  return std::make_unique<ImageFolder>(root, split);
}

}  // namespace jepa::data
