// Renders a batch of masks as a PNG: one tile per image, the context in blue, each target block
// in its own colour, unused patches grey (a context patch that is also a target shows a blue dot).
#pragma once

#include <jepa/sdk/masking.hpp>

#include <array>
#include <cstdint>
#include <filesystem>

namespace jepa::report {

using Rgb = std::array<uint8_t, 3>;

constexpr Rgb kContextColour{52, 101, 164};
constexpr Rgb kUnusedColour{211, 215, 207};
// Target block k uses kTargetColours[k % size].
constexpr std::array<Rgb, 8> kTargetColours{{{239, 41, 41},
                                             {245, 121, 0},
                                             {78, 154, 6},
                                             {173, 127, 168},
                                             {193, 125, 17},
                                             {6, 152, 154},
                                             {204, 0, 153},
                                             {237, 212, 0}}};
const char* target_colour_name(int block);

// Throws std::runtime_error when the file cannot be written.
void write_mask_png(const sdk::MaskSample& sample, int grid_height, int grid_width, const std::filesystem::path& path);

}  // namespace jepa::report
