// libjpeg reports fatal errors through a callback that must not return: it longjmps back into
// run_decompress(), whose frame holds no C++ object with a destructor, so nothing is skipped. Each
// image gets a fresh decompressor, as in PIL: a reused one keeps the previous file's quantisation
// and Huffman tables (libjpeg's "abbreviated datastream" rule), so a corrupt file lacking a table
// would decode or not depending on what its thread decoded before.
#include "data/jpeg_decoder.hpp"

// jpeglib.h needs size_t and FILE declared first.
#include <jerror.h>
#include <jpeglib.h>
#include <cstdio>

#include <algorithm>
#include <csetjmp>
#include <cstring>
#include <memory>

namespace jepa::data::detail {
namespace {

struct ErrorManager {
  jpeg_error_mgr pub;  // first, so that libjpeg's pointer to it is a pointer to this
  std::jmp_buf jump;
};

[[noreturn]] void on_fatal(j_common_ptr cinfo) {
  std::longjmp(reinterpret_cast<ErrorManager*>(cinfo->err)->jump, 1);
}

// Warnings that mean the pixels are not the file's (PIL raises or returns garbage on them): the
// image is skipped. Others (extraneous bytes before a marker, an unknown JFIF version) are benign.
void on_message(j_common_ptr cinfo, int level) {
  if (level >= 0) return;  // trace messages
  switch (cinfo->err->msg_code) {
    case JWRN_JPEG_EOF:
    case JWRN_HIT_MARKER:
    case JWRN_HUFF_BAD_CODE:
    case JWRN_MUST_RESYNC:
    case JWRN_NOT_SEQUENTIAL:
    case JWRN_BOGUS_PROGRESSION:
      on_fatal(cinfo);
    default:
      break;
  }
}

// What run_decompress needs and produces; plain data so that a longjmp leaves nothing to clean.
struct Job {
  const uint8_t* data;
  size_t size;
  const WindowOf* window_of;
  Image* out;
  std::vector<uint8_t>* cmyk;      // the window as CMYK when the file is CMYK/YCCK
  std::vector<uint8_t>* last_row;  // where the image's last row goes when it is not in the window
  bool cmyk_source;
  bool bad;  // a check outside libjpeg failed
};

class Decompressor {
 public:
  Decompressor() { create(); }
  ~Decompressor() { destroy(); }
  Decompressor(const Decompressor&) = delete;
  Decompressor& operator=(const Decompressor&) = delete;

  bool ok() const { return created_; }

  void create() {
    std::memset(&cinfo_, 0, sizeof cinfo_);
    cinfo_.err = jpeg_std_error(&err_.pub);
    err_.pub.error_exit = on_fatal;
    err_.pub.emit_message = on_message;
    if (setjmp(err_.jump) != 0) return;  // out of memory in jpeg_create_decompress
    jpeg_create_decompress(&cinfo_);
    // A progressive file buffers its coefficients; cap that, so a corrupt header cannot ask for
    // gigabytes (past the cap libjpeg stops with "backing store not supported").
    cinfo_.mem->max_memory_to_use = 512L << 20;
    created_ = true;
  }

  // Returns false on any libjpeg error; out and cmyk are then garbage. Once per object.
  bool run(Job& job) { return run_decompress(job) && !job.bad; }

 private:
  void destroy() {
    if (created_) jpeg_destroy_decompress(&cinfo_);
    created_ = false;
  }

  bool run_decompress(Job& job);

  jpeg_decompress_struct cinfo_;
  ErrorManager err_;
  bool created_ = false;
};

// Allocation and the window callback happen in here, outside the frame that called setjmp.
bool prepare(Job& job, int height, int width, int components, int x0, int y0, int cols, int rows) {
  Image& image = *job.out;
  image.height = rows;
  image.width = cols;
  image.channels = 3;
  image.top = y0;
  image.left = x0;
  image.full_height = height;
  image.full_width = width;
  const size_t bytes = static_cast<size_t>(rows) * cols * components;
  job.last_row->resize(static_cast<size_t>(cols) * components);
  if (job.cmyk_source) {
    job.cmyk->resize(bytes);
  } else {
    image.pixels.resize(bytes);
  }
  return true;
}

CropBox choose_window(Job& job, int height, int width) {
  if (job.window_of == nullptr || !*job.window_of) return CropBox{0, 0, height, width};
  return (*job.window_of)(height, width);
}

bool Decompressor::run_decompress(Job& job) {
  if (setjmp(err_.jump) != 0) return false;
  jpeg_mem_src(&cinfo_, const_cast<unsigned char*>(job.data), static_cast<unsigned long>(job.size));
  jpeg_read_header(&cinfo_, TRUE);
  const auto width = static_cast<int64_t>(cinfo_.image_width);
  const auto height = static_cast<int64_t>(cinfo_.image_height);
  if (width <= 0 || height <= 0 || width * height > kMaxJpegPixels) {
    job.bad = true;
    return true;
  }
  job.cmyk_source = cinfo_.jpeg_color_space == JCS_CMYK || cinfo_.jpeg_color_space == JCS_YCCK;
  cinfo_.out_color_space = job.cmyk_source ? JCS_CMYK : JCS_RGB;
  const CropBox w = choose_window(job, static_cast<int>(height), static_cast<int>(width));
  if (w.top < 0 || w.left < 0 || w.height <= 0 || w.width <= 0 || w.top + w.height > height ||
      w.left + w.width > width) {
    job.bad = true;
    return true;
  }
  // One pixel of margin: fancy upsampling treats a crop's left and right edges as image edges
  // (libjpeg.txt, "Partial image decompression"), so those columns are decoded but not used.
  const int x0 = std::max(0, w.left - 1);
  const int x1 = std::min(static_cast<int>(width), w.left + w.width + 1);
  const int y0 = std::max(0, w.top - 1);
  const int y1 = std::min(static_cast<int>(height), w.top + w.height + 1);
  jpeg_start_decompress(&cinfo_);
  JDIMENSION xoffset = static_cast<JDIMENSION>(x0);
  JDIMENSION cols = static_cast<JDIMENSION>(x1 - x0);
  if (cols < cinfo_.output_width) jpeg_crop_scanline(&cinfo_, &xoffset, &cols);  // moves left to an iMCU edge
  const int components = cinfo_.output_components;
  prepare(job, static_cast<int>(height), static_cast<int>(width), components, static_cast<int>(xoffset), y0,
          static_cast<int>(cols), y1 - y0);
  if (y0 > 0 && jpeg_skip_scanlines(&cinfo_, static_cast<JDIMENSION>(y0)) != static_cast<JDIMENSION>(y0)) {
    job.bad = true;
    return true;
  }
  uint8_t* base = job.cmyk_source ? job.cmyk->data() : job.out->pixels.data();
  const size_t stride = static_cast<size_t>(cols) * components;
  while (cinfo_.output_scanline < static_cast<JDIMENSION>(y1)) {
    JSAMPROW row = base + static_cast<size_t>(cinfo_.output_scanline - y0) * stride;
    if (jpeg_read_scanlines(&cinfo_, &row, 1) != 1) {
      job.bad = true;
      return true;
    }
  }
  // The rows below the window are entropy-decoded too (no IDCT): corrupt data there must make the
  // file unreadable whatever the crop, so that a bad file is skipped in every epoch, not only in
  // those whose crop reaches the damage. libjpeg skips to the end without decoding, so skip to the
  // last row and read that one.
  const auto last = static_cast<JDIMENSION>(height - 1);
  if (cinfo_.output_scanline <= last) {
    if (cinfo_.output_scanline < last) jpeg_skip_scanlines(&cinfo_, last - cinfo_.output_scanline);
    JSAMPROW row = job.last_row->data();
    if (jpeg_read_scanlines(&cinfo_, &row, 1) != 1) {
      job.bad = true;
      return true;
    }
  }
  return true;
}

// A complete JPEG ends with an end-of-image marker; a truncated one does not. Allows some
// trailing bytes after it (padding, appended data), as decoders that stop at the marker do.
bool has_end_marker(const uint8_t* data, size_t size) {
  const size_t window = std::min<size_t>(size, 4096);
  for (size_t i = size - window; i + 1 < size; ++i) {
    if (data[i] == 0xFF && data[i + 1] == 0xD9) return true;
  }
  return false;
}

}  // namespace

std::optional<Image> decode_jpeg(const uint8_t* data, size_t size, const WindowOf* window_of) {
  if (data == nullptr || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return std::nullopt;
  if (!has_end_marker(data, size)) return std::nullopt;
  Decompressor decompressor;
  if (!decompressor.ok()) return std::nullopt;
  Image image;
  thread_local std::vector<uint8_t> cmyk;
  thread_local std::vector<uint8_t> last_row;
  Job job{data, size, window_of, &image, &cmyk, &last_row, false, false};
  if (!decompressor.run(job)) return std::nullopt;
  if (job.cmyk_source) {
    // Adobe writers store CMYK inverted (each stored value is 255 - ink). PIL unpacks it back to
    // ink ("CMYK;I") and converts with RGB = (255 - K) - ink * (255 - K) / 255, its rounding
    // included, which this repeats.
    const size_t n = static_cast<size_t>(image.height) * image.width;
    image.pixels.resize(n * 3);
    const auto muldiv255 = [](int a, int b) {
      const int t = a * b + 128;
      return ((t >> 8) + t) >> 8;
    };
    for (size_t p = 0; p < n; ++p) {
      const int not_black = cmyk[4 * p + 3];
      for (int c = 0; c < 3; ++c) {
        const int ink = 255 - cmyk[4 * p + c];
        image.pixels[3 * p + c] = static_cast<uint8_t>(std::clamp(not_black - muldiv255(ink, not_black), 0, 255));
      }
    }
  }
  return image;
}

}  // namespace jepa::data::detail
