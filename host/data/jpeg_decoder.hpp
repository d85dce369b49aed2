// Private to the data room (and its tests): JPEG decoding through libjpeg-turbo's libjpeg API, which
// on Debian 12 (2.1) is the only one with partial decoding (jpeg_crop_scanline, jpeg_skip_scanlines;
// TurboJPEG 2 has neither).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "data/dataset.hpp"

namespace jepa::data::detail {

// Headers claiming more pixels than this are treated as corrupt (no ImageNet file comes near).
constexpr int64_t kMaxJpegPixels = int64_t{1} << 26;

// Decodes an RGB window of a JPEG that covers window_of(height, width) (the whole image when
// window_of is null), with libjpeg's defaults (accurate integer IDCT, fancy upsampling), as PIL
// does, so the pixels are PIL's. Only the rows of the window are fully decoded, and only the iMCU
// columns it touches, one pixel wider on each side where there is one, so that fancy upsampling
// sees the same neighbours as in a full decode; the other rows are only entropy-decoded, so that
// corrupt data anywhere in the file makes it unreadable whatever the window. Greyscale becomes RGB by replication;
// CMYK/YCCK (Adobe's inverted storage) becomes RGB as PIL's convert("RGB").
// std::nullopt for anything unreadable: a fatal libjpeg error, a corrupt-data warning (bad
// Huffman code, premature end of data, ...), a file without an end-of-image marker near its end
// (truncated), more than kMaxJpegPixels, or a window outside the image.
std::optional<Image> decode_jpeg(const uint8_t* data, size_t size, const WindowOf* window_of = nullptr);

}  // namespace jepa::data::detail
