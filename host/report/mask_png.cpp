#include "report/mask_png.hpp"

#include <png.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::report {

const char* target_colour_name(int block) {
  static const char* names[] = {"red", "orange", "green", "lilac", "brown", "teal", "magenta", "yellow"};
  return names[block % 8];
}

void write_mask_png(const sdk::MaskSample& s, int H, int W, const std::filesystem::path& path) {
  const int cell = std::clamp(168 / std::max(H, W), 4, 24);  // about 170 px per tile
  const int pitch = cell + 1;                                // 1 px grid line
  const int tile_w = W * pitch + 1;
  const int tile_h = H * pitch + 1;
  const int gap = 10;
  const int cols = std::min(s.batch_size, 4);
  const int rows = (s.batch_size + cols - 1) / std::max(cols, 1);
  const int img_w = gap + cols * (tile_w + gap);
  const int img_h = gap + rows * (tile_h + gap);
  std::vector<uint8_t> px(static_cast<size_t>(img_w) * img_h * 3, 255);

  auto fill = [&](int x0, int y0, int w, int h, const Rgb& c) {
    for (int y = y0; y < y0 + h; ++y) {
      for (int x = x0; x < x0 + w; ++x)
        std::copy(c.begin(), c.end(), px.begin() + (static_cast<size_t>(y) * img_w + x) * 3);
    }
  };

  std::vector<int> target_of(static_cast<size_t>(H) * W);
  std::vector<uint8_t> in_context(static_cast<size_t>(H) * W);
  for (int i = 0; i < s.batch_size; ++i) {
    std::fill(target_of.begin(), target_of.end(), -1);
    std::fill(in_context.begin(), in_context.end(), 0);
    for (int b = 0; b < s.target_blocks; ++b) {
      for (int k = 0; k < s.target_length; ++k) target_of[s.target_row(b, i)[k]] = b;
    }
    for (int b = 0; b < s.context_blocks; ++b) {
      for (int k = 0; k < s.context_length; ++k) in_context[s.context_row(b, i)[k]] = 1;
    }
    const int tx = gap + (i % cols) * (tile_w + gap);
    const int ty = gap + (i / cols) * (tile_h + gap);
    fill(tx, ty, tile_w, tile_h, Rgb{90, 90, 90});
    for (int r = 0; r < H; ++r) {
      for (int c = 0; c < W; ++c) {
        const int p = r * W + c;
        const int x = tx + 1 + c * pitch;
        const int y = ty + 1 + r * pitch;
        const Rgb& colour = target_of[p] >= 0 ? kTargetColours[target_of[p] % kTargetColours.size()]
                            : in_context[p]   ? kContextColour
                                              : kUnusedColour;
        fill(x, y, cell, cell, colour);
        if (target_of[p] >= 0 && in_context[p] != 0) {
          const int d = std::max(cell / 3, 1);
          fill(x + (cell - d) / 2, y + (cell - d) / 2, d, d, kContextColour);
        }
      }
    }
  }

  png_image image{};
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(img_w);
  image.height = static_cast<png_uint_32>(img_h);
  image.format = PNG_FORMAT_RGB;
  if (png_image_write_to_file(&image, path.c_str(), 0, px.data(), 0, nullptr) == 0) {
    const std::string why = image.message;
    png_image_free(&image);
    throw std::runtime_error("cannot write " + path.string() + ": " + why);
  }
}

}  // namespace jepa::report
