// The image-folder pipeline alone (no model) on a folder of JPEGs: what one core does per image,
// stage by stage, and what the epoch loader delivers with 1, 2, ... decoding threads, with the
// official transforms (RandomResizedCrop(224, scale 0.3-1.0), PIL's antialiased bilinear, then
// normalisation or 8-bit output as a CUDA run). bench/jpeg_pipeline.sh runs it beside torchvision's
// loader in the same minutes; bench/RESULTS.md has the figures.
//
//   jpeg_pipeline_bench ROOT [--images N] [--workers 1,2] [--batch 128] [--size 224] [--stages]
//                            [--u8] [--prefetch 3]
//
// ROOT is an ImageNet-style folder (ROOT/train/<class>/*.JPEG), e.g. from bench/make_photo_corpus.py.
// Prints a table and, per measurement, one JSON line for scripts.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "data/dataset.hpp"
#include "data/jpeg_decoder.hpp"
#include "data/transform.hpp"

using namespace jepa::data;
namespace fs = std::filesystem;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
  return out;
}

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<uint8_t> bytes(static_cast<size_t>(std::max<std::streamoff>(0, in.tellg())));
  in.seekg(0);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

// One thread, stage by stage, over the first n files (read once into memory first, so that the
// decode figures are not disk figures).
void stages(const ImageSource& source, const Transform& transform, int64_t n) {
  const detail::PreparedTransform prepared(transform, 3);
  std::vector<std::vector<uint8_t>> files;
  double t0 = now();
  size_t bytes = 0;
  for (int64_t i = 0; i < n; ++i) {
    files.push_back(read_all(source.describe(i)));
    bytes += files.back().size();
  }
  const double read_s = now() - t0;
  std::vector<uint8_t> out(prepared.values_per_image());
  std::vector<uint8_t> scratch;
  double full_s = 0;
  double crop_s = 0;
  double resample_s = 0;
  double pixels = 0;
  double crop_pixels = 0;
  int64_t good = 0;
  for (int64_t i = 0; i < n; ++i) {
    const auto& f = files[static_cast<size_t>(i)];
    double t = now();
    const auto full = detail::decode_jpeg(f.data(), f.size());
    full_s += now() - t;
    if (!full) continue;
    ++good;
    pixels += static_cast<double>(full->height) * full->width;
    detail::SamplePlan plan;
    const WindowOf window_of = [&](int h, int w) {
      plan = prepared.plan(h, w, 0, 0, i);
      return plan.region();
    };
    t = now();
    const auto part = detail::decode_jpeg(f.data(), f.size(), &window_of);
    crop_s += now() - t;
    crop_pixels += static_cast<double>(part->height) * part->width;
    t = now();
    detail::resample(*part, plan, out.data(), scratch);
    resample_s += now() - t;
  }
  const auto ms = [&](double s) { return 1e3 * s / static_cast<double>(std::max<int64_t>(good, 1)); };
  std::printf("one thread, %lld files (%.1f KB, %.3f MP mean), ms per image:\n", static_cast<long long>(good),
              bytes / 1024.0 / static_cast<double>(n), pixels / 1e6 / static_cast<double>(good));
  std::printf("  read (page cache)      %.3f\n", ms(read_s));
  std::printf("  full decode            %.3f\n", ms(full_s));
  std::printf("  crop decode            %.3f  (%.0f%% of the pixels decoded)\n", ms(crop_s),
              100 * crop_pixels / pixels);
  std::printf("  resample to %dx%d      %.3f\n", prepared.image_size(), prepared.image_size(), ms(resample_s));
  std::printf("  crop decode + resample %.3f  (%.0f images/s), full decode + resample %.3f\n", ms(crop_s + resample_s),
              1e3 / ms(crop_s + resample_s), ms(full_s + resample_s));
  std::printf(
      "{\"tool\":\"jepa-stages\",\"files\":%lld,\"mean_kb\":%.1f,\"mean_mp\":%.4f,\"read_ms\":%.4f,\"full_decode_ms\":%"
      ".4f,"
      "\"crop_decode_ms\":%.4f,\"resample_ms\":%.4f,\"crop_share\":%.3f}\n",
      static_cast<long long>(good), bytes / 1024.0 / static_cast<double>(n), pixels / 1e6 / static_cast<double>(good),
      ms(read_s), ms(full_s), ms(crop_s), ms(resample_s), crop_pixels / pixels);
}

// The epoch loader as training uses it: images/s over `images` images after one warm-up batch.
void loader(std::shared_ptr<const ImageSource> source, const Transform& transform, int workers, int64_t images,
            int64_t batch, bool u8, int prefetch) {
  LoaderOptions o;
  o.batch_size = batch;
  o.workers = workers;
  o.prefetch = prefetch;
  o.normalise = !u8;
  o.pool = BufferPool::create();
  int64_t done = 0;
  int64_t counted = 0;
  double start = 0;
  for (int64_t epoch = 0; done < images + batch; ++epoch) {
    EpochLoader epoch_loader(source, transform, o, epoch);
    while (done < images + batch) {
      auto b = epoch_loader.next();
      if (!b) break;
      if (done == 0)
        start = now();  // after the first (warm-up) batch
      else
        counted += b->batch_size;
      done += b->batch_size;
    }
  }
  const double seconds = now() - start;
  const double rate = static_cast<double>(counted) / seconds;
  std::printf("loader: %d thread%s, %lld images in %.2f s: %.0f images/s, %.0f per thread (%s)\n", workers,
              workers == 1 ? "" : "s", static_cast<long long>(counted), seconds, rate, rate / std::max(1, workers),
              u8 ? "8-bit" : "normalised float");
  std::printf(
      "{\"tool\":\"jepa\",\"workers\":%d,\"images\":%lld,\"seconds\":%.3f,\"images_per_s\":%.1f,\"output\":\"%s\"}\n",
      workers, static_cast<long long>(counted), seconds, rate, u8 ? "u8" : "f32");
}

}  // namespace

int run(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help") {
    std::printf("usage: %s ROOT [--images N] [--workers 1,2] [--batch 128] [--size 224] [--stages] [--u8]\n", argv[0]);
    return argc < 2 ? 2 : 0;
  }
  const std::string root = argv[1];
  int64_t images = 2000;
  std::vector<int> workers{1, 2};
  int64_t batch = 128;
  int size = 224;
  bool only_stages = false;
  bool u8 = false;
  int prefetch = 3;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    const auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--images")
      images = std::stoll(value());
    else if (a == "--workers")
      workers = parse_list(value());
    else if (a == "--batch")
      batch = std::stoll(value());
    else if (a == "--size")
      size = std::stoi(value());
    else if (a == "--prefetch")
      prefetch = std::stoi(value());
    else if (a == "--stages")
      only_stages = true;
    else if (a == "--u8")
      u8 = true;
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::shared_ptr<const ImageSource> source = open_image_folder(root, Split::train);
  Transform t;  // the official training transform
  t.image_size = size;
  t.random_crop = true;
  t.crop_scale = {0.3, 1.0};
  if (only_stages) {
    stages(*source, t, std::min<int64_t>(images, source->size()));
    return 0;
  }
  for (int w : workers) loader(source, t, w, images, batch, u8, prefetch);
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "jpeg_pipeline_bench: %s\n", e.what());
    return 1;
  }
}
