// ImageNet-style class folders, decoded on demand: JPEG through the libjpeg API
// (data/jpeg_decoder.cpp: crop decodes), PNG through libpng's simplified API. load() and
// load_window() are called concurrently by the loader's workers.
#include <png.h>

#include <fmt/format.h>
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <system_error>
#include <utility>

#include "data/dataset.hpp"
#include "data/jpeg_decoder.hpp"

namespace fs = std::filesystem;

namespace jepa::data {
namespace {

// Refuse to allocate for absurd headers (a corrupt file claiming 60000 x 60000 pixels).
constexpr int64_t kMaxPixels = detail::kMaxJpegPixels;

bool has_image_extension(const fs::path& path) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  return ext == ".jpg" || ext == ".jpeg" || ext == ".png";
}

// The whole file into `bytes` (a buffer each thread reuses); false when it is unreadable or empty.
bool read_file(const std::string& path, std::vector<unsigned char>& bytes) {
  struct Closer {
    void operator()(std::FILE* f) const { std::fclose(f); }
  };
  std::unique_ptr<std::FILE, Closer> file(std::fopen(path.c_str(), "rb"));
  if (!file || std::fseek(file.get(), 0, SEEK_END) != 0) return false;
  const long size = std::ftell(file.get());
  if (size <= 0 || size > (long{1} << 31) || std::fseek(file.get(), 0, SEEK_SET) != 0) return false;
  bytes.resize(static_cast<size_t>(size));
  return std::fread(bytes.data(), 1, bytes.size(), file.get()) == bytes.size();
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

  std::optional<Image> load(int64_t index) const override { return load_window(index, WindowOf()); }

  std::optional<Image> load_window(int64_t index, const WindowOf& window_of) const override {
    thread_local std::vector<unsigned char> bytes;
    if (!read_file(at(index).first, bytes) || bytes.size() < 4) return std::nullopt;
    // By content, not by extension: ImageNet has PNGs named .JPEG.
    const auto& b = bytes;
    if (b[0] == 0xFF && b[1] == 0xD8) return detail::decode_jpeg(b.data(), b.size(), &window_of);
    if (b[0] == 0x89 && b[1] == 'P' && b[2] == 'N' && b[3] == 'G') {
      std::optional<Image> image = decode_png(b);
      if (image && window_of) window_of(image->height, image->width);
      return image;
    }
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
