// The data room: Fashion-MNIST IDX reading, image folders (PNG/JPEG), the transform (bilinear
// resize and RandomResizedCrop), the epoch loader (order, sharding, resume, workers, corrupt
// items) and load_range.
#include <gtest/gtest.h>
#include <png.h>
#include <turbojpeg.h>
#include <unistd.h>
#include <zlib.h>
#include "temp_dir.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <thread>

#include "data/dataset.hpp"
#include "data/transform.hpp"

namespace fs = std::filesystem;
using namespace jepa::data;

namespace {

// Each test's own folder, removed at its end.
class TempDir : public jepa_test::TempDir {
 public:
  TempDir() : jepa_test::TempDir("jepa_data_test") {}
};

void write_bytes(const fs::path& path, const std::vector<unsigned char>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

void write_gz(const fs::path& path, const std::vector<unsigned char>& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  gzclose(file);
}

void put_u32(std::vector<unsigned char>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<unsigned char>(v >> shift));
}

void write_png(const fs::path& path, int width, int height, int channels, const std::vector<uint8_t>& pixels) {
  fs::create_directories(path.parent_path());
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(width);
  png.height = static_cast<png_uint_32>(height);
  png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
  ASSERT_NE(png_image_write_to_file(&png, path.c_str(), 0, pixels.data(), 0, nullptr), 0) << png.message;
}

void write_jpeg(const fs::path& path, int width, int height, int channels, const std::vector<uint8_t>& pixels) {
  tjhandle handle = tjInitCompress();
  ASSERT_NE(handle, nullptr);
  unsigned char* jpeg = nullptr;
  unsigned long size = 0;
  const int format = channels == 1 ? TJPF_GRAY : TJPF_RGB;
  const int subsampling = channels == 1 ? TJSAMP_GRAY : TJSAMP_444;
  ASSERT_EQ(tjCompress2(handle, pixels.data(), width, 0, height, format, &jpeg, &size, subsampling, 100, 0), 0);
  write_bytes(path, std::vector<unsigned char>(jpeg, jpeg + size));
  tjFree(jpeg);
  tjDestroy(handle);
}

// Synthetic images: pixel (y, x, c) of item i is (i * 7 + y * 3 + x * 5 + c * 11) % 256 unless
// `constant` is set; labels are i % 7. Items in `corrupt` fail to decode, `throw_at` throws.
class MemorySource : public ImageSource {
 public:
  MemorySource(int64_t n, int channels, int height, int width)
      : n_(n), channels_(channels), height_(height), width_(width) {
    for (int c = 0; c < 10; ++c) names_.push_back("c" + std::to_string(c));
  }
  int64_t size() const override { return n_; }
  int channels() const override { return channels_; }
  int64_t num_classes() const override { return 7; }
  const std::vector<std::string>& class_names() const override { return names_; }
  int64_t label(int64_t index) const override { return index % 7; }
  std::optional<Image> load(int64_t index) const override {
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    if (slow && slow(index)) std::this_thread::sleep_for(std::chrono::milliseconds(3));
    if (index == throw_at) throw std::runtime_error("synthetic failure at " + std::to_string(index));
    if (corrupt.count(index) != 0) return std::nullopt;
    Image image;
    image.height = height_;
    image.width = width_;
    image.channels = channels_;
    if (!pixels.empty()) {
      image.pixels = pixels;
      return image;
    }
    for (int y = 0; y < height_; ++y)
      for (int x = 0; x < width_; ++x)
        for (int c = 0; c < channels_; ++c)
          image.pixels.push_back(constant >= 0 ? static_cast<uint8_t>(constant)
                                               : static_cast<uint8_t>((index * 7 + y * 3 + x * 5 + c * 11) % 256));
    return image;
  }
  std::string describe(int64_t index) const override { return "memory[" + std::to_string(index) + "]"; }

  std::set<int64_t> corrupt;
  int64_t throw_at = -1;
  int constant = -1;
  std::vector<uint8_t> pixels;  // when set, every item is exactly this image
  std::chrono::milliseconds delay{0};
  std::function<bool(int64_t)> slow;  // items that take 3 ms more

 private:
  int64_t n_;
  int channels_;
  int height_;
  int width_;
  std::vector<std::string> names_;
};

Transform plain_transform(int size, int channels = 1) {
  Transform t;
  t.image_size = size;
  t.random_crop = false;
  t.eval_center_crop = false;  // the whole image
  t.mean.assign(static_cast<size_t>(channels), 0.0);
  t.std.assign(static_cast<size_t>(channels), 1.0);
  return t;
}

LoaderOptions options_for(int64_t batch_size, int workers, bool drop_last = false) {
  LoaderOptions o;
  o.batch_size = batch_size;
  o.workers = workers;
  o.drop_last = drop_last;
  o.seed = 1234;
  return o;
}

std::vector<Batch> run_epoch(std::shared_ptr<const ImageSource> source, const Transform& t, const LoaderOptions& o,
                             int64_t epoch, int64_t start_batch = 0) {
  EpochLoader loader(std::move(source), t, o, epoch, start_batch);
  std::vector<Batch> batches;
  while (auto batch = loader.next()) batches.push_back(std::move(*batch));
  return batches;
}

std::vector<int64_t> all_indices(const std::vector<Batch>& batches) {
  std::vector<int64_t> out;
  for (const auto& b : batches) out.insert(out.end(), b.indices.begin(), b.indices.end());
  return out;
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].batch_index, b[i].batch_index);
    EXPECT_EQ(a[i].batch_size, b[i].batch_size);
    EXPECT_EQ(a[i].indices, b[i].indices);
    EXPECT_EQ(a[i].labels, b[i].labels);
    EXPECT_EQ(a[i].images, b[i].images) << "batch " << i;
  }
}

// ----------------------------------------------------------------------------- Fashion-MNIST

class FashionMnistTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    train_ = open_fashion_mnist(fashion_mnist_default_path(), Split::train).release();
    test_ = open_fashion_mnist(fashion_mnist_default_path(), Split::test).release();
  }
  static void TearDownTestSuite() {
    delete train_;
    delete test_;
  }
  static ImageSource* train_;
  static ImageSource* test_;
};
ImageSource* FashionMnistTest::train_ = nullptr;
ImageSource* FashionMnistTest::test_ = nullptr;

// The IDX payload bytes at `offset` read straight from the .gz, independently of the reader.
std::vector<unsigned char> raw_gz_bytes(const std::string& name, size_t offset, size_t count) {
  gzFile file = gzopen((fs::path(fashion_mnist_default_path()) / name).c_str(), "rb");
  EXPECT_NE(file, nullptr);
  std::vector<unsigned char> skip(offset);
  std::vector<unsigned char> bytes(count);
  if (file == nullptr) return bytes;
  EXPECT_EQ(gzread(file, skip.data(), static_cast<unsigned>(offset)), static_cast<int>(offset));
  EXPECT_EQ(gzread(file, bytes.data(), static_cast<unsigned>(count)), static_cast<int>(count));
  gzclose(file);
  return bytes;
}

TEST_F(FashionMnistTest, SizesLabelsAndClasses) {
  EXPECT_EQ(train_->size(), 60000);
  EXPECT_EQ(test_->size(), 10000);
  EXPECT_EQ(train_->channels(), 1);
  EXPECT_EQ(train_->num_classes(), 10);
  ASSERT_EQ(train_->class_names().size(), 10u);
  EXPECT_EQ(train_->class_names()[0], "T-shirt/top");
  EXPECT_EQ(train_->class_names()[9], "Ankle boot");
  std::vector<int64_t> per_class(10, 0);
  for (int64_t i = 0; i < train_->size(); ++i) {
    const int64_t label = train_->label(i);
    ASSERT_GE(label, 0);
    ASSERT_LT(label, 10);
    ++per_class[static_cast<size_t>(label)];
  }
  for (int64_t count : per_class) EXPECT_EQ(count, 6000);  // Fashion-MNIST is balanced
  // The first training label is 9 (Ankle boot); check it against the file itself too.
  EXPECT_EQ(train_->label(0), 9);
  EXPECT_EQ(raw_gz_bytes("train-labels-idx1-ubyte.gz", 8, 1)[0], 9);
  EXPECT_EQ(test_->label(0), raw_gz_bytes("t10k-labels-idx1-ubyte.gz", 8, 1)[0]);
  EXPECT_EQ(train_->describe(12), "fashion-mnist train[12]");
  EXPECT_THROW(train_->label(60000), std::out_of_range);
}

TEST_F(FashionMnistTest, PixelsMatchTheFileAndLoadRange) {
  const auto image = train_->load(1);
  ASSERT_TRUE(image.has_value());
  EXPECT_EQ(image->height, 28);
  EXPECT_EQ(image->width, 28);
  EXPECT_EQ(image->channels, 1);
  EXPECT_EQ(image->pixels, raw_gz_bytes("train-images-idx3-ubyte.gz", 16 + 784, 784));

  // load_range at 28 -> 28 without crop is a normalised copy: same checksum as load().
  Transform t = plain_transform(28);
  t.mean = {0.5};
  t.std = {0.25};
  const Batch batch = load_range(*test_, t, 100, 400);
  ASSERT_EQ(batch.batch_size, 300);
  EXPECT_EQ(batch.channels, 1);
  EXPECT_EQ(batch.height, 28);
  ASSERT_EQ(batch.images.size(), 300u * 784u);
  uint64_t bytes_sum = 0;
  uint64_t range_sum = 0;
  for (int64_t i = 0; i < 300; ++i) {
    EXPECT_EQ(batch.indices[static_cast<size_t>(i)], 100 + i);
    EXPECT_EQ(batch.labels[static_cast<size_t>(i)], test_->label(100 + i));
    const auto item = test_->load(100 + i);
    ASSERT_TRUE(item.has_value());
    for (size_t p = 0; p < 784; ++p) {
      bytes_sum += item->pixels[p];
      const float got = batch.images[static_cast<size_t>(i) * 784 + p];
      range_sum += static_cast<uint64_t>(std::lround((got * 0.25 + 0.5) * 255.0));
      ASSERT_NEAR(got, (item->pixels[p] / 255.0 - 0.5) / 0.25, 1e-5);
    }
  }
  EXPECT_EQ(range_sum, bytes_sum);
}

TEST(FashionMnistErrors, MissingFolderNamesThePath) {
  const std::string missing = "/nonexistent/jepa-fashion-folder";
  try {
    open_fashion_mnist(missing, Split::train);
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(missing), std::string::npos) << e.what();
  }
}

std::string open_error(const fs::path& folder, Split split) {
  try {
    open_fashion_mnist(folder, split);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(FashionMnistErrors, MalformedFilesNameTheFile) {
  TempDir dir;
  const fs::path images = dir.path() / "t10k-images-idx3-ubyte.gz";
  const fs::path labels = dir.path() / "t10k-labels-idx1-ubyte.gz";

  // Missing file.
  std::string message = open_error(dir.path(), Split::test);
  EXPECT_NE(message.find(images.string()), std::string::npos) << message;

  // Garbage (not gzip, not IDX).
  std::mt19937 rng(5);
  std::vector<unsigned char> garbage(3000);
  for (auto& b : garbage) b = static_cast<unsigned char>(rng());
  write_bytes(images, garbage);
  message = open_error(dir.path(), Split::test);
  EXPECT_NE(message.find(images.string()), std::string::npos) << message;

  // A gzip stream cut in the middle (the first 5000 bytes of the real file).
  {
    std::ifstream in(fs::path(fashion_mnist_default_path()) / "t10k-images-idx3-ubyte.gz", std::ios::binary);
    std::vector<unsigned char> head(5000);
    in.read(reinterpret_cast<char*>(head.data()), 5000);
    write_bytes(images, head);
  }
  message = open_error(dir.path(), Split::test);
  EXPECT_NE(message.find(images.string()), std::string::npos) << message;

  // A well-formed gzip whose IDX payload is shorter than its header says.
  std::vector<unsigned char> idx;
  put_u32(idx, 2051);
  put_u32(idx, 3);
  put_u32(idx, 2);
  put_u32(idx, 2);
  idx.insert(idx.end(), 10, 7);  // 12 bytes declared
  write_gz(images, idx);
  message = open_error(dir.path(), Split::test);
  EXPECT_NE(message.find(images.string()), std::string::npos) << message;
  EXPECT_NE(message.find("truncated"), std::string::npos) << message;

  // Good images, labels with the wrong magic number, then with the wrong count.
  idx.insert(idx.end(), 2, 9);
  write_gz(images, idx);
  std::vector<unsigned char> lab;
  put_u32(lab, 2051);
  put_u32(lab, 3);
  lab.insert(lab.end(), {1, 2, 3});
  write_gz(labels, lab);
  message = open_error(dir.path(), Split::test);
  EXPECT_NE(message.find(labels.string()), std::string::npos) << message;
  EXPECT_NE(message.find("magic"), std::string::npos) << message;
  lab.clear();
  put_u32(lab, 2049);
  put_u32(lab, 4);
  lab.insert(lab.end(), {1, 2, 3, 4});
  write_gz(labels, lab);
  message = open_error(dir.path(), Split::test);
  EXPECT_NE(message.find(labels.string()), std::string::npos) << message;

  // And finally a valid tiny dataset opens.
  lab.clear();
  put_u32(lab, 2049);
  put_u32(lab, 3);
  lab.insert(lab.end(), {1, 2, 3});
  write_gz(labels, lab);
  const auto source = open_fashion_mnist(dir.path(), Split::test);
  EXPECT_EQ(source->size(), 3);
  EXPECT_EQ(source->label(2), 3);
  EXPECT_EQ(source->load(2)->pixels, (std::vector<uint8_t>{7, 7, 9, 9}));
}

// ----------------------------------------------------------------------------- image folders

std::vector<uint8_t> pattern(int width, int height, int channels, int salt) {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) pixels.push_back(static_cast<uint8_t>((salt + 20 * x + 9 * y + 60 * c) % 256));
  return pixels;
}

std::vector<uint8_t> smooth(int width, int height, int salt) {
  std::vector<uint8_t> pixels;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < 3; ++c) pixels.push_back(static_cast<uint8_t>(salt + 4 * x + 3 * y + 40 * c));
  return pixels;
}

std::vector<uint8_t> grey_to_rgb(const std::vector<uint8_t>& grey) {
  std::vector<uint8_t> rgb;
  for (uint8_t v : grey) rgb.insert(rgb.end(), {v, v, v});
  return rgb;
}

int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  EXPECT_EQ(a.size(), b.size());
  int worst = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) worst = std::max(worst, std::abs(int(a[i]) - int(b[i])));
  return worst;
}

class ImageFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const fs::path train = dir_.path() / "train";
    write_png(train / "cat" / "a.png", 4, 3, 3, pattern(4, 3, 3, 1));
    write_jpeg(train / "cat" / "b.jpg", 16, 8, 3, smooth(16, 8, 10));
    write_png(train / "dog" / "c.PNG", 5, 5, 1, pattern(5, 5, 1, 2));
    write_jpeg(train / "dog" / "d.jpeg", 8, 8, 1, pattern(8, 8, 1, 0));
    std::vector<unsigned char> garbage(400);
    std::mt19937 rng(9);
    for (auto& b : garbage) b = static_cast<unsigned char>(rng());
    write_bytes(train / "dog" / "x.jpg", garbage);
    write_bytes(train / "dog" / "notes.txt", {'h', 'i'});
    const fs::path val = dir_.path() / "val";
    write_png(val / "cat" / "e.png", 3, 3, 3, pattern(3, 3, 3, 5));
    write_jpeg(val / "dog" / "f.jpg", 8, 8, 3, smooth(8, 8, 50));
  }
  TempDir dir_;
};

TEST_F(ImageFolderTest, ClassesLabelsAndPixels) {
  const auto train = open_image_folder(dir_.path(), Split::train);
  EXPECT_EQ(train->class_names(), (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(train->num_classes(), 2);
  EXPECT_EQ(train->channels(), 3);
  ASSERT_EQ(train->size(), 5);  // notes.txt is not an image
  std::vector<std::string> names;
  std::vector<int64_t> labels;
  for (int64_t i = 0; i < train->size(); ++i) {
    names.push_back(fs::path(train->describe(i)).filename().string());
    labels.push_back(train->label(i));
  }
  EXPECT_EQ(names, (std::vector<std::string>{"a.png", "b.jpg", "c.PNG", "d.jpeg", "x.jpg"}));
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 0, 1, 1, 1}));

  const auto a = train->load(0);
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->height, 3);
  EXPECT_EQ(a->width, 4);
  EXPECT_EQ(a->channels, 3);
  EXPECT_EQ(a->pixels, pattern(4, 3, 3, 1));  // PNG is lossless

  const auto b = train->load(1);
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->height, 8);
  EXPECT_EQ(b->width, 16);
  EXPECT_LE(max_abs_diff(b->pixels, smooth(16, 8, 10)), 4);

  const auto c = train->load(2);  // grey PNG -> RGB
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->channels, 3);
  EXPECT_EQ(c->pixels, grey_to_rgb(pattern(5, 5, 1, 2)));

  const auto d = train->load(3);  // grey JPEG -> RGB
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->channels, 3);
  EXPECT_LE(max_abs_diff(d->pixels, grey_to_rgb(pattern(8, 8, 1, 0))), 12);

  EXPECT_FALSE(train->load(4).has_value());  // random bytes named .jpg

  const auto val = open_image_folder(dir_.path(), Split::test);
  ASSERT_EQ(val->size(), 2);
  EXPECT_EQ(val->label(0), 0);
  EXPECT_EQ(val->label(1), 1);
  EXPECT_EQ(val->load(0)->pixels, pattern(3, 3, 3, 5));
}

TEST_F(ImageFolderTest, LoaderSkipsTheCorruptFile) {
  std::shared_ptr<const ImageSource> train = open_image_folder(dir_.path(), Split::train);
  Transform t;
  t.image_size = 6;
  t.random_crop = true;
  LoaderOptions o = options_for(2, 2, false);
  EpochLoader loader(train, t, o, 0);
  std::vector<int64_t> seen;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->channels, 3);
    EXPECT_EQ(batch->images.size(), static_cast<size_t>(batch->batch_size) * 3 * 6 * 6);
    seen.insert(seen.end(), batch->indices.begin(), batch->indices.end());
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(loader.skipped(), 1);

  const Batch all = load_range(*train, t, 0, 5);
  EXPECT_EQ(all.indices, (std::vector<int64_t>{0, 1, 2, 3}));
  EXPECT_EQ(all.labels, (std::vector<int64_t>{0, 0, 1, 1}));
}

TEST_F(ImageFolderTest, MissingFoldersAreDataErrors) {
  const fs::path missing = dir_.path() / "nope";
  try {
    open_image_folder(missing, Split::train);
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(missing.string()), std::string::npos) << e.what();
  }
  // No val/ and no test/: the test split is missing; test/ is used when there is no val/.
  fs::rename(dir_.path() / "val", dir_.path() / "elsewhere");
  EXPECT_THROW(open_image_folder(dir_.path(), Split::test), DataError);
  fs::rename(dir_.path() / "elsewhere", dir_.path() / "test");
  EXPECT_EQ(open_image_folder(dir_.path(), Split::test)->size(), 2);
  // A test class that train/ does not have would shift the labels.
  fs::create_directories(dir_.path() / "test" / "bird");
  EXPECT_THROW(open_image_folder(dir_.path(), Split::test), DataError);
  // Class folders without images.
  TempDir empty;
  fs::create_directories(empty.path() / "train" / "a");
  EXPECT_THROW(open_image_folder(empty.path(), Split::train), DataError);
}

// ----------------------------------------------------------------------------- transform

TEST(Transform, PlainResizeOfAConstantImageIsTheNormalisedValue) {
  auto source = std::make_shared<MemorySource>(3, 3, 10, 7);
  source->constant = 37;
  Transform t;
  t.image_size = 5;
  t.random_crop = false;
  const Batch batch = load_range(*source, t, 0, 3);
  ASSERT_EQ(batch.images.size(), 3u * 3 * 25);
  for (size_t i = 0; i < batch.images.size(); ++i) {
    const size_t c = (i / 25) % 3;
    ASSERT_NEAR(batch.images[i], (37 / 255.0 - t.mean[c]) / t.std[c], 1e-6) << i;
  }
  // A random crop of a constant image is constant too.
  t.random_crop = true;
  const auto batches = run_epoch(source, t, options_for(3, 0), 0);
  ASSERT_EQ(batches.size(), 1u);
  for (size_t i = 0; i < batches[0].images.size(); ++i) {
    const size_t c = (i / 25) % 3;
    ASSERT_NEAR(batches[0].images[i], (37 / 255.0 - t.mean[c]) / t.std[c], 1e-6) << i;
  }
}

std::vector<float> resize_one(const std::vector<uint8_t>& pixels, int height, int width, int size) {
  MemorySource source(1, 1, height, width);
  source.pixels = pixels;
  Transform t = plain_transform(size);
  t.std = {1.0 / 255.0};  // output in pixel units
  const Batch b = load_range(source, t, 0, 1);
  return std::vector<float>(b.images.begin(), b.images.end());
}

TEST(Transform, ResizeIsPilsAntialiasedBilinear) {
  // Up by 2 (PIL's triangle filter has support 1 there: plain bilinear at pixel centres, edges
  // clamped), rounded to 8 bits after each pass.
  const std::vector<float> up = resize_one({0, 100, 200, 255}, 2, 2, 4);
  const std::vector<float> row0{0, 25, 75, 100};
  const std::vector<float> row3{200, 214, 241, 255};
  for (int x = 0; x < 4; ++x) {
    EXPECT_NEAR(up[x], row0[x], 1e-3) << x;
    EXPECT_NEAR(up[12 + x], row3[x], 1e-3) << x;
  }
  // Down by 2 with antialiasing: the filter spans 2 source pixels each side, weights (3, 3, 1)/7
  // at the edge and (1, 3, 3)/7 in the middle of a 4-pixel ramp, where a bilinear resize without
  // antialiasing (torch.nn.functional.interpolate) would average 2 pixels: 10 and 50.
  const std::vector<float> down = resize_one({0, 20, 40, 60}, 1, 4, 2);
  ASSERT_EQ(down.size(), 2u * 2);
  EXPECT_NEAR(down[0], 14, 1e-3);  // round(100 / 7)
  EXPECT_NEAR(down[1], 46, 1e-3);  // round(320 / 7)

  // A crop is resized from its own corner, clamped at its own edges: [[6,7],[10,11]] of a ramp
  // kept at the same size is an exact copy.
  std::vector<uint8_t> ramp(16);
  std::iota(ramp.begin(), ramp.end(), 0);
  Image image{4, 4, 1, ramp};
  detail::SamplePlan plan;
  plan.x = detail::resample_axis(2, 2, 2, 0, 2);
  plan.y = detail::resample_axis(2, 1, 2, 0, 2);
  detail::PreparedTransform same(plain_transform(2), 1);
  std::vector<uint8_t> copy(4);
  same.apply(image, plan, nullptr, copy.data());
  EXPECT_EQ(copy, (std::vector<uint8_t>{6, 7, 10, 11}));
  // A window that does not cover the plan's region is refused.
  Image window = image;
  window.left = 3;
  window.full_width = 7;
  EXPECT_THROW(same.apply(window, plan, nullptr, copy.data()), std::runtime_error);
}

TEST(Transform, EvaluationIsResizeThenCenterCrop) {
  // A 20x10 (h x w) image at image_size 7: Resize(7 * 256 / 224 = 8) makes it 16x8, CenterCrop(7)
  // takes rows 4..10 (round(4.5) = 4, half to even) and columns 0..6 (round(0.5) = 0).
  detail::PreparedTransform eval(Transform{7, false}, 3);
  const detail::SamplePlan plan = eval.plan(20, 10, 0, 0, 0);
  ASSERT_EQ(plan.x.first.size(), 7u);
  ASSERT_EQ(plan.y.first.size(), 7u);
  const auto full = detail::resample_axis(20, 0, 16, 0, 16);
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(plan.y.first[i], full.first[4 + i]) << i;
    EXPECT_EQ(plan.y.count[i], full.count[4 + i]) << i;
  }
  // The region a crop decode must deliver lies inside the image and covers the centre.
  const CropBox region = plan.region();
  EXPECT_GE(region.top, 0);
  EXPECT_LE(region.top + region.height, 20);
  EXPECT_LT(region.top, 10);
  EXPECT_GT(region.top + region.height, 10);
  // eval_resize below image_size cannot centre-crop.
  Transform bad{7, false};
  bad.eval_resize = 6;
  EXPECT_THROW(detail::PreparedTransform(bad, 3), std::invalid_argument);
}

TEST(Transform, FlipMirrorsTheCropAndIsKeyed) {
  auto source = std::make_shared<MemorySource>(40, 1, 30, 30);
  Transform t = plain_transform(8);
  t.random_crop = true;
  const auto plain = run_epoch(source, t, options_for(40, 0), 0);
  t.horizontal_flip = true;
  const auto flipped = run_epoch(source, t, options_for(40, 2), 0);
  ASSERT_EQ(plain.size(), 1u);
  ASSERT_EQ(flipped.size(), 1u);
  int mirrored = 0;
  int same = 0;
  for (int k = 0; k < 40; ++k) {
    bool is_mirror = true;
    bool is_same = true;
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x) {
        const float a = plain[0].images[static_cast<size_t>(k) * 64 + y * 8 + x];
        is_mirror &= a == flipped[0].images[static_cast<size_t>(k) * 64 + y * 8 + (7 - x)];
        is_same &= a == flipped[0].images[static_cast<size_t>(k) * 64 + y * 8 + x];
      }
    mirrored += is_mirror ? 1 : 0;
    same += is_same ? 1 : 0;
  }
  // About half of each, and every item one or the other (same crop box, flipped or not).
  EXPECT_EQ(mirrored + same, 40);
  EXPECT_GE(mirrored, 10);
  EXPECT_GE(same, 10);
}

TEST(Transform, MeanAndStdMustMatchTheChannels) {
  auto grey = std::make_shared<MemorySource>(4, 1, 28, 28);
  Transform t;  // ImageNet's three means for a one-channel source
  t.random_crop = false;
  EXPECT_THROW(load_range(*grey, t, 0, 1), std::invalid_argument);
  EXPECT_THROW(EpochLoader(grey, t, options_for(2, 0), 0), std::invalid_argument);
  t.mean = {0.5};
  t.std = {0.5};
  EXPECT_NO_THROW(load_range(*grey, t, 0, 1));  // one entry is applied to every channel
  auto rgb = std::make_shared<MemorySource>(4, 3, 8, 8);
  t.mean = {0.1, 0.2};
  EXPECT_THROW(load_range(*rgb, t, 0, 1), std::invalid_argument);
  t.mean = {0.1, 0.2, 0.3};
  t.std = {1, 0, 1};
  EXPECT_THROW(load_range(*rgb, t, 0, 1), std::invalid_argument);
}

TEST(Transform, RandomResizedCropIsKeyedBySeedEpochIndex) {
  const std::array<double, 2> scale{0.3, 1.0};
  auto box_for = [&](uint64_t seed, int64_t epoch, int64_t index) {
    auto rng = detail::crop_rng(seed, epoch, index);
    return detail::random_resized_crop_box(224, 160, scale, rng);
  };
  auto same = [](const CropBox& a, const CropBox& b) {
    return a.top == b.top && a.left == b.left && a.height == b.height && a.width == b.width;
  };
  EXPECT_TRUE(same(box_for(1, 2, 3), box_for(1, 2, 3)));
  int differ_index = 0, differ_epoch = 0, differ_seed = 0;
  for (int64_t i = 0; i < 20; ++i) {
    differ_index += !same(box_for(1, 2, i), box_for(1, 2, i + 1));
    differ_epoch += !same(box_for(1, 2, i), box_for(1, 3, i));
    differ_seed += !same(box_for(1, 2, i), box_for(2, 2, i));
  }
  EXPECT_GE(differ_index, 18);
  EXPECT_GE(differ_epoch, 18);
  EXPECT_GE(differ_seed, 18);

  // Through the loader: an item's crop does not depend on the batch it lands in or the thread.
  auto source = std::make_shared<MemorySource>(12, 3, 40, 30);
  Transform t;
  t.image_size = 8;
  LoaderOptions o = options_for(4, 2);
  o.shuffle = true;
  const auto a = run_epoch(source, t, o, 5);
  o.batch_size = 3;
  o.workers = 0;
  o.seed = 1234;
  const auto b = run_epoch(source, t, o, 5);
  std::map<int64_t, std::vector<float>> by_index;
  const size_t per = 3 * 8 * 8;
  for (const auto& batch : a)
    for (size_t k = 0; k < batch.indices.size(); ++k)
      by_index[batch.indices[k]].assign(batch.images.begin() + k * per, batch.images.begin() + (k + 1) * per);
  for (const auto& batch : b)
    for (size_t k = 0; k < batch.indices.size(); ++k)
      EXPECT_EQ(by_index[batch.indices[k]],
                std::vector<float>(batch.images.begin() + k * per, batch.images.begin() + (k + 1) * per));
  // And two items (two different crops of differently patterned images) do differ.
  EXPECT_NE(by_index[0], by_index[7]);
}

TEST(Transform, CropBoxesStayInsideAndFollowTorchvision) {
  const std::array<double, 2> scale{0.3, 1.0};
  const std::vector<std::pair<int, int>> shapes{{1, 1}, {1, 100}, {100, 1}, {7, 300}, {224, 224}, {375, 500}, {33, 17}};
  for (const auto& [h, w] : shapes) {
    for (int64_t i = 0; i < 300; ++i) {
      auto rng = detail::crop_rng(7, 0, i);
      const auto box = detail::random_resized_crop_box(h, w, scale, rng);
      ASSERT_GT(box.height, 0);
      ASSERT_GT(box.width, 0);
      ASSERT_GE(box.top, 0);
      ASSERT_GE(box.left, 0);
      ASSERT_LE(box.top + box.height, h) << h << "x" << w;
      ASSERT_LE(box.left + box.width, w) << h << "x" << w;
    }
  }
  // No try fits a 10x500 strip: torchvision's fallback is the centred 10x13 (ratio 4/3).
  auto rng = detail::crop_rng(0, 0, 0);
  auto box = detail::random_resized_crop_box(10, 500, scale, rng);
  EXPECT_EQ(box.top, 0);
  EXPECT_EQ(box.left, 243);
  EXPECT_EQ(box.height, 10);
  EXPECT_EQ(box.width, 13);
  box = detail::random_resized_crop_box(500, 10, scale, rng);
  EXPECT_EQ(box.top, 243);
  EXPECT_EQ(box.height, 13);
  EXPECT_EQ(box.width, 10);

  // Area fraction uniform in [0.1, 0.3] (mean 0.2), aspect ratio log-uniform in [3/4, 4/3]. (With
  // a scale up to 1 the first try is often too wide or tall, which biases torchvision's areas.)
  const std::array<double, 2> small{0.1, 0.3};
  double area = 0, log_ratio = 0;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    auto r = detail::crop_rng(3, 1, i);
    const auto b = detail::random_resized_crop_box(1000, 1000, small, r);
    area += b.height * static_cast<double>(b.width) / 1e6;
    log_ratio += std::log(static_cast<double>(b.width) / b.height);
    ASSERT_GE(b.height * static_cast<double>(b.width), 0.099e6);
    ASSERT_LE(b.height * static_cast<double>(b.width), 0.301e6);
  }
  EXPECT_NEAR(area / n, 0.2, 0.005);
  EXPECT_NEAR(log_ratio / n, 0.0, 0.02);
}

// ----------------------------------------------------------------------------- epoch loader

TEST(EpochLoader, SameSeedAndEpochGiveTheSameBatches) {
  auto source = std::make_shared<MemorySource>(50, 1, 4, 4);
  Transform t = plain_transform(4);
  const auto a = run_epoch(source, t, options_for(8, 0), 3);
  const auto b = run_epoch(source, t, options_for(8, 0), 3);
  expect_same_batches(a, b);
  const auto other = run_epoch(source, t, options_for(8, 0), 4);
  EXPECT_NE(all_indices(a), all_indices(other));
  LoaderOptions reseeded = options_for(8, 0);
  reseeded.seed = 99;
  EXPECT_NE(all_indices(a), all_indices(run_epoch(source, t, reseeded, 3)));
  LoaderOptions ordered = options_for(8, 0);
  ordered.shuffle = false;
  std::vector<int64_t> identity(50);
  std::iota(identity.begin(), identity.end(), 0);
  EXPECT_EQ(all_indices(run_epoch(source, t, ordered, 3)), identity);
  // Images, labels and indices stay aligned.
  for (const auto& batch : a) {
    EXPECT_EQ(batch.epoch, 3);
    for (size_t k = 0; k < batch.indices.size(); ++k) {
      const int64_t index = batch.indices[k];
      EXPECT_EQ(batch.labels[k], index % 7);
      EXPECT_NEAR(batch.images[k * 16] * 255, (index * 7) % 256, 1e-3);
    }
  }
}

TEST(EpochLoader, EveryIndexOncePerEpochAndBatchCountsAgree) {
  auto source = std::make_shared<MemorySource>(103, 1, 2, 2);
  Transform t = plain_transform(2);
  const auto full = run_epoch(source, t, options_for(10, 2, false), 0);
  ASSERT_EQ(full.size(), 11u);
  EXPECT_EQ(full.back().batch_size, 3);
  auto indices = all_indices(full);
  std::sort(indices.begin(), indices.end());
  std::vector<int64_t> expected(103);
  std::iota(expected.begin(), expected.end(), 0);
  EXPECT_EQ(indices, expected);
  for (size_t i = 0; i < full.size(); ++i) EXPECT_EQ(full[i].batch_index, static_cast<int64_t>(i));

  // batches_per_epoch is what next() yields, over a few shapes.
  for (int64_t n : {1, 7, 64, 103}) {
    for (int64_t bs : {1, 8, 64, 200}) {
      for (int world : {1, 2, 3}) {
        for (bool drop : {false, true}) {
          for (int64_t limit : {0, 5}) {
            auto s = std::make_shared<MemorySource>(n, 1, 1, 1);
            LoaderOptions o = options_for(bs, 0, drop);
            o.world_size = world;
            o.rank = world - 1;
            o.limit = limit;
            const auto batches = run_epoch(s, plain_transform(1), o, 1);
            EXPECT_EQ(static_cast<int64_t>(batches.size()), EpochLoader::batches_per_epoch(n, o))
                << n << " " << bs << " " << world << " " << drop << " " << limit;
            for (const auto& b : batches) {
              if (drop) {
                EXPECT_EQ(b.batch_size, bs);
              }
              for (int64_t index : b.indices) EXPECT_LT(index, limit > 0 ? limit : n);
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(EpochLoader::batches_per_epoch(60000, options_for(128, 0, true)), 468);
  EXPECT_EQ(EpochLoader::batches_per_epoch(60000, options_for(128, 0, false)), 469);
  LoaderOptions bad = options_for(8, 0);
  bad.rank = 2;
  bad.world_size = 2;
  EXPECT_THROW(EpochLoader::batches_per_epoch(10, bad), std::invalid_argument);
}

TEST(EpochLoader, WorkersGiveTheSameSequenceAsTheCallingThread) {
  auto source = std::make_shared<MemorySource>(203, 3, 12, 9);
  source->corrupt = {5, 77, 150};
  Transform t;
  t.image_size = 7;
  const auto serial = run_epoch(source, t, options_for(16, 0, true), 2);
  ASSERT_FALSE(serial.empty());
  for (int workers : {1, 2, 3, 7}) {
    for (int prefetch : {1, 4}) {
      LoaderOptions o = options_for(16, workers, true);
      o.prefetch = prefetch;
      expect_same_batches(serial, run_epoch(source, t, o, 2));
    }
  }
}

TEST(EpochLoader, BatchesArriveInOrderWhenWorkersFinishOutOfOrder) {
  auto source = std::make_shared<MemorySource>(96, 1, 2, 2);
  source->slow = [](int64_t index) { return (index / 16) % 2 == 0; };  // even chunks are slow
  LoaderOptions o = options_for(16, 3, true);
  o.shuffle = false;
  const auto batches = run_epoch(source, plain_transform(2), o, 0);
  ASSERT_EQ(batches.size(), 6u);
  for (size_t b = 0; b < batches.size(); ++b) {
    EXPECT_EQ(batches[b].batch_index, static_cast<int64_t>(b));
    EXPECT_EQ(batches[b].indices.front(), static_cast<int64_t>(b) * 16);
    EXPECT_EQ(batches[b].indices.back(), static_cast<int64_t>(b) * 16 + 15);
  }
}

TEST(EpochLoader, StartBatchResumesExactly) {
  auto source = std::make_shared<MemorySource>(90, 1, 6, 6);
  Transform t = plain_transform(4);
  t.random_crop = true;
  const auto full = run_epoch(source, t, options_for(8, 2, true), 7);
  ASSERT_EQ(full.size(), 11u);
  for (int64_t k : {1, 4, 10}) {
    const auto resumed = run_epoch(source, t, options_for(8, 2, true), 7, k);
    expect_same_batches(std::vector<Batch>(full.begin() + k, full.end()), resumed);
  }
  EXPECT_TRUE(run_epoch(source, t, options_for(8, 2, true), 7, 11).empty());
  EXPECT_TRUE(run_epoch(source, t, options_for(8, 0, true), 7, 50).empty());
}

TEST(EpochLoader, ShardsLikeDistributedSampler) {
  for (int64_t n : {100, 101}) {
    auto source = std::make_shared<MemorySource>(n, 1, 1, 1);
    const auto whole = all_indices(run_epoch(source, plain_transform(1), options_for(1, 0), 3));
    std::vector<int64_t> padded = whole;
    while (padded.size() % 2 != 0) padded.push_back(whole[padded.size() - whole.size()]);
    std::vector<std::vector<int64_t>> ranks;
    for (int rank = 0; rank < 2; ++rank) {
      LoaderOptions o = options_for(5, 1);
      o.world_size = 2;
      o.rank = rank;
      ranks.push_back(all_indices(run_epoch(source, plain_transform(1), o, 3)));
      std::vector<int64_t> strided;
      for (size_t p = static_cast<size_t>(rank); p < padded.size(); p += 2) strided.push_back(padded[p]);
      EXPECT_EQ(ranks.back(), strided) << "rank " << rank << " of n=" << n;
    }
    EXPECT_EQ(ranks[0].size(), ranks[1].size());
    std::multiset<int64_t> both(ranks[0].begin(), ranks[0].end());
    both.insert(ranks[1].begin(), ranks[1].end());
    EXPECT_EQ(both, std::multiset<int64_t>(padded.begin(), padded.end()));
    if (n % 2 == 0) {
      std::set<int64_t> first(ranks[0].begin(), ranks[0].end());
      for (int64_t index : ranks[1]) EXPECT_EQ(first.count(index), 0u) << index;
    }
  }
}

TEST(EpochLoader, CorruptItemsAreSkippedCountedAndFilledFromTheOrder) {
  auto source = std::make_shared<MemorySource>(20, 1, 2, 2);
  source->corrupt = {3, 7};
  LoaderOptions o = options_for(4, 2, true);
  o.shuffle = false;
  EpochLoader loader(source, plain_transform(2), o, 0);
  std::vector<std::vector<int64_t>> batches;
  while (auto batch = loader.next()) {
    EXPECT_EQ(batch->batch_size, 4);
    batches.push_back(batch->indices);
  }
  const std::vector<std::vector<int64_t>> expected{{0, 1, 2, 4}, {5, 6, 8, 9}, {10, 11, 12, 13}, {14, 15, 16, 17}};
  EXPECT_EQ(batches, expected);  // 18 good items: the partial fifth batch is dropped
  EXPECT_EQ(loader.skipped(), 2);
  EXPECT_FALSE(loader.next().has_value());

  const Batch range = load_range(*source, plain_transform(2), 2, 9);
  EXPECT_EQ(range.indices, (std::vector<int64_t>{2, 4, 5, 6, 8}));
  EXPECT_EQ(range.labels, (std::vector<int64_t>{2, 4, 5, 6, 1}));
  EXPECT_EQ(range.batch_size, 5);
  ASSERT_EQ(range.images.size(), 5u * 4);
  EXPECT_NEAR(range.images[4] * 255, (4 * 7) % 256, 1e-3);  // item 4 packed right after item 2
}

TEST(EpochLoader, WorkerExceptionsReachTheConsumer) {
  auto source = std::make_shared<MemorySource>(64, 1, 2, 2);
  source->throw_at = 21;
  LoaderOptions o = options_for(4, 2, true);
  o.shuffle = false;
  EpochLoader loader(source, plain_transform(2), o, 0);
  int good = 0;
  try {
    while (loader.next()) ++good;
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("synthetic failure at 21"), std::string::npos);
  }
  EXPECT_EQ(good, 5);  // batches 0..4 hold items 0..19; batch 5 holds item 21
  EXPECT_THROW(loader.next(), std::runtime_error);
}

TEST(EpochLoader, LoadRangeInParallelEqualsItemByItem) {
  auto source = std::make_shared<MemorySource>(300, 3, 5, 6);
  source->corrupt = {10, 299};
  Transform t;
  t.image_size = 4;
  const Batch all = load_range(*source, t, 0, 300);
  ASSERT_EQ(all.batch_size, 298);
  std::vector<float> images;
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < 300; ++i) {
    const Batch one = load_range(*source, t, i, i + 1);
    images.insert(images.end(), one.images.begin(), one.images.end());
    indices.insert(indices.end(), one.indices.begin(), one.indices.end());
  }
  EXPECT_EQ(std::vector<float>(all.images.begin(), all.images.end()), images);
  EXPECT_EQ(all.indices, indices);
  // Any number of threads gives the same batch.
  const Batch two = load_range(*source, t, 0, 300, 2);
  EXPECT_EQ(two.images, all.images);
  EXPECT_TRUE(load_range(*source, t, 5, 5).indices.empty());
  EXPECT_THROW(load_range(*source, t, 0, 301), std::out_of_range);
}

TEST(EpochLoader, DestructionAfterOneBatchIsPrompt) {
  auto source = std::make_shared<MemorySource>(2000, 1, 2, 2);
  source->delay = std::chrono::milliseconds(10);
  LoaderOptions o = options_for(32, 2, true);
  o.prefetch = 4;
  auto loader = std::make_unique<EpochLoader>(source, plain_transform(2), o, 0);
  ASSERT_TRUE(loader->next().has_value());
  const auto start = std::chrono::steady_clock::now();
  loader.reset();  // workers are mid-chunk (32 items x 10 ms each)
  const auto elapsed = std::chrono::steady_clock::now() - start;
  EXPECT_LT(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 150);
}

TEST(EpochLoader, EveryWorkerHelpsTheOldestBatch) {
  // Items of one batch are decoded by all the workers at once (one image each), not one batch per
  // worker: 8 workers take 8 x 40 ms items in about 40 ms, where a batch per worker takes 320 ms.
  // Sleeps, not work, so this holds on 2 cores too.
  auto source = std::make_shared<MemorySource>(16, 1, 4, 4);
  source->delay = std::chrono::milliseconds(40);
  LoaderOptions o = options_for(8, 8, true);
  o.prefetch = 1;
  const auto start = std::chrono::steady_clock::now();
  const auto batches = run_epoch(source, plain_transform(4), o, 0);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(batches.size(), 2u);
  EXPECT_LT(ms, 250) << "two batches of 8 items took " << ms << " ms with 8 workers";
}

TEST(EpochLoader, AutoWorkersFollowTheRanksCores) {
  EXPECT_EQ(auto_workers(16, /*cuda=*/true), 15);  // one H200 with 16 cores: all but the trainer's
  EXPECT_EQ(auto_workers(4, true), 3);             // a quarter of them each, 4 ranks
  EXPECT_EQ(auto_workers(1, true), 1);
  EXPECT_EQ(auto_workers(2, /*cuda=*/false), 2);  // a CPU run trains on the same cores
  EXPECT_EQ(auto_workers(64, false), 16);
}

TEST(EpochLoader, EightBitBatchesNormaliseToTheFloatOnes) {
  auto source = std::make_shared<MemorySource>(50, 3, 21, 17);
  source->corrupt = {7};
  Transform t;
  t.image_size = 9;
  const auto floats = run_epoch(source, t, options_for(8, 2, true), 3);
  LoaderOptions o = options_for(8, 3, true);
  o.normalise = false;
  const auto bytes = run_epoch(source, t, o, 3);
  ASSERT_EQ(floats.size(), bytes.size());
  const detail::PreparedTransform prepared(t, 3);
  for (size_t i = 0; i < floats.size(); ++i) {
    EXPECT_TRUE(bytes[i].images.empty());
    ASSERT_EQ(bytes[i].pixels.size(), floats[i].images.size());
    EXPECT_EQ(bytes[i].indices, floats[i].indices);
    std::vector<float> normalised(bytes[i].pixels.size());
    prepared.normalise(bytes[i].pixels.data(), normalised.data(), static_cast<size_t>(bytes[i].batch_size));
    EXPECT_EQ(normalised, std::vector<float>(floats[i].images.begin(), floats[i].images.end())) << i;
    // The public normalisation (what a GPU applies) is the same multiply-add.
    const Normalisation n = normalisation(t, 3);
    const size_t plane = 9 * 9;
    for (size_t v = 0; v < normalised.size(); v += 97) {
      const size_t c = (v / plane) % 3;
      EXPECT_EQ(normalised[v], static_cast<float>(bytes[i].pixels[v]) * n.gain[c] + n.bias[c]) << v;
    }
  }
}

TEST(EpochLoader, BatchBlocksAreReused) {
  auto source = std::make_shared<MemorySource>(400, 1, 6, 6);
  std::vector<void*> seen;
  auto pool = BufferPool::create();
  for (int64_t epoch = 0; epoch < 2; ++epoch) {
    LoaderOptions o = options_for(10, 2, true);
    o.prefetch = 2;
    o.pool = pool;
    EpochLoader loader(source, plain_transform(4), o, epoch);
    while (auto batch = loader.next()) seen.push_back(batch->images.data());
  }
  EXPECT_EQ(seen.size(), 80u);
  // Chunks in flight (prefetch + 1) and the batch held: a handful of blocks for 80 batches.
  EXPECT_LE(pool->blocks_made(), 5);
  EXPECT_LE(std::set<void*>(seen.begin(), seen.end()).size(), 5u);
}

}  // namespace
