// JPEG decoding against upstream's pixels: full decodes equal PIL's, crop decodes equal the same
// window of a full decode (4:4:4, 4:2:0, 4:2:2, progressive, greyscale, CMYK), the transforms equal
// torchvision's RandomResizedCrop and Resize + CenterCrop on PIL images within one grey level
// (references made by tests/data/pil_reference/make_fixtures.py from real photographs), and
// mutated files are skipped, never a crash or a stalled epoch.
#include <gtest/gtest.h>
#include <png.h>
#include "temp_dir.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.hpp"
#include "data/jpeg_decoder.hpp"
#include "data/transform.hpp"

namespace fs = std::filesystem;
using namespace jepa::data;

namespace {

const fs::path kFixtures = fs::path(JEPA_SOURCE_DIR) / "tests" / "data" / "pil_reference";
const std::vector<std::string> kKinds{"rgb444", "rgb420", "rgb422", "progressive", "grey", "cmyk"};

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << path;
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// An 8-bit RGB PNG as HWC bytes.
std::vector<uint8_t> read_png_rgb(const fs::path& path, int& width, int& height) {
  png_image png;
  std::memset(&png, 0, sizeof png);
  png.version = PNG_IMAGE_VERSION;
  std::vector<uint8_t> pixels;
  if (png_image_begin_read_from_file(&png, path.c_str()) == 0) {
    ADD_FAILURE() << path << ": " << png.message;
    return pixels;
  }
  png.format = PNG_FORMAT_RGB;
  pixels.resize(PNG_IMAGE_SIZE(png));
  EXPECT_NE(png_image_finish_read(&png, nullptr, pixels.data(), 0, nullptr), 0) << png.message;
  width = static_cast<int>(png.width);
  height = static_cast<int>(png.height);
  return pixels;
}

std::optional<Image> decode(const std::vector<uint8_t>& bytes, const CropBox* window = nullptr) {
  if (window == nullptr) return detail::decode_jpeg(bytes.data(), bytes.size());
  const WindowOf of = [window](int, int) { return *window; };
  return detail::decode_jpeg(bytes.data(), bytes.size(), &of);
}

int max_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  int m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(int{a[i]} - int{b[i]}));
  return m;
}

TEST(JpegDecode, FullDecodesArePils) {
  for (const auto& kind : kKinds) {
    const auto bytes = read_bytes(kFixtures / (kind + ".jpg"));
    const auto image = decode(bytes);
    ASSERT_TRUE(image.has_value()) << kind;
    int width = 0;
    int height = 0;
    const auto reference = read_png_rgb(kFixtures / (kind + ".full.png"), width, height);
    ASSERT_EQ(image->width, width) << kind;
    ASSERT_EQ(image->height, height) << kind;
    ASSERT_EQ(image->channels, 3) << kind;
    ASSERT_EQ(image->pixels.size(), reference.size()) << kind;
    // The same libjpeg-turbo with the same settings as PIL: the same pixels (CMYK through PIL's
    // conversion formula).
    EXPECT_LE(max_diff(image->pixels, reference), 1) << kind;
  }
}

TEST(JpegDecode, CropDecodesEqualTheFullDecode) {
  for (const auto& kind : kKinds) {
    const auto bytes = read_bytes(kFixtures / (kind + ".jpg"));
    const auto full = decode(bytes);
    ASSERT_TRUE(full.has_value()) << kind;
    const int H = full->height;
    const int W = full->width;
    std::mt19937 rng(17);
    std::vector<CropBox> windows{{0, 0, H, W},     {0, 0, 1, 1},    {H - 1, W - 1, 1, 1}, {0, W - 9, H, 9},
                                 {H - 5, 0, 5, W}, {7, 17, 16, 16}, {8, 16, 16, 16},      {9, 15, 31, 33}};
    for (int i = 0; i < 150; ++i) {
      CropBox b;
      b.height = 1 + static_cast<int>(rng() % static_cast<unsigned>(H));
      b.width = 1 + static_cast<int>(rng() % static_cast<unsigned>(W));
      b.top = static_cast<int>(rng() % static_cast<unsigned>(H - b.height + 1));
      b.left = static_cast<int>(rng() % static_cast<unsigned>(W - b.width + 1));
      windows.push_back(b);
    }
    int narrower = 0;
    for (const auto& w : windows) {
      const auto part = decode(bytes, &w);
      ASSERT_TRUE(part.has_value()) << kind;
      ASSERT_EQ(part->image_height(), H);
      ASSERT_EQ(part->image_width(), W);
      ASSERT_LE(part->top, w.top);
      ASSERT_LE(part->left, w.left);
      ASSERT_GE(part->top + part->height, w.top + w.height);
      ASSERT_GE(part->left + part->width, w.left + w.width);
      narrower += part->width < W ? 1 : 0;
      for (int y = w.top; y < w.top + w.height; ++y) {
        const uint8_t* got =
            part->pixels.data() + (static_cast<size_t>(y - part->top) * part->width + (w.left - part->left)) * 3;
        const uint8_t* want = full->pixels.data() + (static_cast<size_t>(y) * W + w.left) * 3;
        ASSERT_EQ(std::memcmp(got, want, static_cast<size_t>(w.width) * 3), 0)
            << kind << ": window " << w.top << "," << w.left << " " << w.height << "x" << w.width << ", row " << y;
      }
    }
    // It did decode less than the whole width (the point of a crop decode).
    EXPECT_GT(narrower, 100) << kind;
  }
}

struct Reference {
  std::string jpeg;
  std::string kind;  // crop | eval
  CropBox box;
  int size = 0;
  std::string file;
};

std::vector<Reference> read_manifest() {
  std::ifstream in(kFixtures / "manifest.txt");
  EXPECT_TRUE(in) << "missing " << (kFixtures / "manifest.txt");
  std::vector<Reference> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    Reference r;
    fields >> r.jpeg >> r.kind >> r.box.top >> r.box.left >> r.box.height >> r.box.width >> r.size >> r.file;
    EXPECT_TRUE(fields) << line;
    out.push_back(r);
  }
  return out;
}

TEST(PilReference, CropsAndEvaluationMatchTorchvision) {
  const auto references = read_manifest();
  ASSERT_GE(references.size(), 30u);
  int crops = 0;
  int evals = 0;
  int worst = 0;
  for (const auto& r : references) {
    const auto bytes = read_bytes(kFixtures / r.jpeg);
    const int S = r.size;
    detail::SamplePlan plan;
    if (r.kind == "crop") {
      // torchvision's resized_crop on a PIL image: crop, then resize((S, S), BILINEAR).
      plan.x = detail::resample_axis(r.box.width, r.box.left, S, 0, S);
      plan.y = detail::resample_axis(r.box.height, r.box.top, S, 0, S);
      ++crops;
    } else {
      ASSERT_EQ(r.kind, "eval");
      const auto header = decode(bytes);
      ASSERT_TRUE(header.has_value());
      Transform t;
      t.image_size = S;
      t.random_crop = false;
      plan = detail::PreparedTransform(t, 3).plan(header->height, header->width, 0, 0, 0);
      ++evals;
    }
    const CropBox region = plan.region();
    const auto image = decode(bytes, &region);  // a crop decode, as the loader does
    ASSERT_TRUE(image.has_value()) << r.file;
    std::vector<uint8_t> chw(static_cast<size_t>(3) * S * S);
    std::vector<uint8_t> scratch;
    detail::resample(*image, plan, chw.data(), scratch);
    const auto want = read_bytes(kFixtures / r.file);  // HWC
    ASSERT_EQ(want.size(), chw.size()) << r.file;
    int diff = 0;
    for (int y = 0; y < S; ++y)
      for (int x = 0; x < S; ++x)
        for (int c = 0; c < 3; ++c) {
          const int got = chw[(static_cast<size_t>(c) * S + y) * S + x];
          diff = std::max(diff, std::abs(got - want[(static_cast<size_t>(y) * S + x) * 3 + c]));
        }
    EXPECT_LE(diff, 1) << r.file << " (" << r.jpeg << " " << r.kind << ")";
    worst = std::max(worst, diff);
  }
  EXPECT_GE(crops, 24);
  EXPECT_GE(evals, 6);
  std::printf("PIL references: %d crops, %d evaluations, largest difference %d grey level(s)\n", crops, evals, worst);
}

// ----------------------------------------------------------------------------- bad files

// The SOF marker's offset (baseline or progressive), or 0.
size_t find_sof(const std::vector<uint8_t>& b) {
  for (size_t i = 2; i + 9 < b.size(); ++i) {
    if (b[i] == 0xFF && (b[i + 1] == 0xC0 || b[i + 1] == 0xC1 || b[i + 1] == 0xC2)) return i;
  }
  return 0;
}

std::vector<std::vector<uint8_t>> mutations(const std::vector<uint8_t>& good, std::mt19937& rng, int count) {
  std::vector<std::vector<uint8_t>> out;
  for (int i = 0; i < count; ++i) {
    std::vector<uint8_t> b = good;
    switch (i % 6) {
      case 0:  // truncated anywhere
        b.resize(rng() % b.size());
        break;
      case 1:  // a few flipped bytes
        for (int k = 0; k < 1 + static_cast<int>(rng() % 8); ++k)
          b[rng() % b.size()] ^= static_cast<uint8_t>(1 + rng() % 255);
        break;
      case 2: {  // a run of 0xFF (fake markers) or zeros
        const size_t at = rng() % b.size();
        const size_t n = std::min<size_t>(b.size() - at, 1 + rng() % 64);
        std::fill(b.begin() + static_cast<std::ptrdiff_t>(at), b.begin() + static_cast<std::ptrdiff_t>(at + n),
                  (rng() & 1) != 0 ? 0xFF : 0x00);
        break;
      }
      case 3: {  // absurd or zero dimensions in the header
        const size_t sof = find_sof(b);
        if (sof != 0) {
          const uint16_t h = (rng() & 1) != 0 ? 65500 : 0;
          const uint16_t w = (rng() & 1) != 0 ? 65500 : static_cast<uint16_t>(rng() % 3);
          b[sof + 5] = static_cast<uint8_t>(h >> 8);
          b[sof + 6] = static_cast<uint8_t>(h);
          b[sof + 7] = static_cast<uint8_t>(w >> 8);
          b[sof + 8] = static_cast<uint8_t>(w);
        }
        break;
      }
      case 4:  // the header only, then garbage that ends in an EOI
        b.resize(std::min<size_t>(b.size(), 200 + rng() % 400));
        for (size_t k = b.size() / 2; k < b.size(); ++k) b[k] = static_cast<uint8_t>(rng());
        b.push_back(0xFF);
        b.push_back(0xD9);
        break;
      default:  // flipped bytes in the entropy-coded data only, keeping the end marker
        for (int k = 0; k < 3; ++k) b[b.size() / 3 + rng() % (b.size() / 2)] ^= 0x5A;
        break;
    }
    out.push_back(std::move(b));
  }
  return out;
}

TEST(JpegDecode, MutatedFilesAreRefusedOrDecodedNeverACrash) {
  std::mt19937 rng(2026);
  int refused = 0;
  int decoded = 0;
  for (const auto& kind : kKinds) {
    const auto good = read_bytes(kFixtures / (kind + ".jpg"));
    for (const auto& bad : mutations(good, rng, 60)) {
      const CropBox window{3, 5, 20, 30};
      // The outcome is the file's alone, whatever the thread decoded before (a decoder that kept
      // the previous file's tables would accept a corrupt file lacking one after a good file).
      decode(good);
      const bool after_good = decode(bad).has_value();
      bool on_fresh_thread = false;
      std::thread([&] { on_fresh_thread = decode(bad).has_value(); }).join();
      ASSERT_EQ(after_good, on_fresh_thread);
      for (const CropBox* w : {static_cast<const CropBox*>(nullptr), &window}) {
        const auto image = decode(bad, w);
        if (!image) {
          ++refused;
          continue;
        }
        ++decoded;
        ASSERT_EQ(image->channels, 3);
        ASSERT_EQ(image->pixels.size(), static_cast<size_t>(image->height) * image->width * 3);
        ASSERT_LE(static_cast<int64_t>(image->image_height()) * image->image_width(), detail::kMaxJpegPixels);
      }
    }
    // A truncated file is always refused, whatever the window.
    std::vector<uint8_t> cut(good.begin(), good.begin() + static_cast<std::ptrdiff_t>(good.size() * 2 / 3));
    EXPECT_FALSE(decode(cut).has_value()) << kind;
    const CropBox top{0, 0, 4, 4};
    EXPECT_FALSE(decode(cut, &top).has_value()) << kind;
    EXPECT_FALSE(decode({}).has_value());
  }
  EXPECT_GT(refused, 300);
  std::printf("mutated JPEGs: %d refused, %d decoded (all sound)\n", refused, decoded);
}

TEST(JpegDecode, AFolderOfBadFilesGivesAFullEpochWithEachOneCounted) {
  jepa_test::TempDir dir("jepa_jpeg_test");
  const fs::path cls = dir.path() / "train" / "c0";
  std::mt19937 rng(7);
  int n = 0;
  for (const auto& kind : kKinds) {
    const auto good = read_bytes(kFixtures / (kind + ".jpg"));
    write_bytes(cls / (kind + "_good.JPEG"), good);
    ++n;
    for (const auto& bad : mutations(good, rng, 30)) write_bytes(cls / ("bad_" + std::to_string(n++) + ".JPEG"), bad);
  }
  write_bytes(cls / "empty.JPEG", {});
  // ImageNet's PNG named .JPEG decodes (by content); random bytes do not.
  fs::copy_file(kFixtures / "rgb444.full.png", cls / "png_named.JPEG");
  write_bytes(cls / "noise.jpg", {0x12, 0x34, 0x56, 0x78, 0x9a});
  std::shared_ptr<const ImageSource> source = open_image_folder(dir.path(), Split::train);
  int unreadable = 0;
  for (int64_t i = 0; i < source->size(); ++i) unreadable += source->load(i) ? 0 : 1;
  EXPECT_GE(unreadable, 60);
  Transform t;
  t.image_size = 16;
  LoaderOptions o;
  o.batch_size = 4;
  o.workers = 3;
  o.drop_last = false;
  EpochLoader loader(source, t, o, 0);
  int64_t images = 0;
  while (auto batch = loader.next()) images += batch->batch_size;
  EXPECT_EQ(loader.skipped(), unreadable);
  EXPECT_EQ(images + unreadable, source->size());
}

}  // namespace
