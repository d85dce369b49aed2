// The numbers a researcher checks on a batch of masks.
#pragma once

#include <jepa/sdk/masking.hpp>

#include <map>
#include <string>
#include <vector>

namespace jepa::report {

struct MaskStats {
  int grid_height = 0;
  int grid_width = 0;
  int batch_size = 0;
  int context_blocks = 0;
  int context_length = 0;  // patches per context block, after truncation to the batch minimum
  int target_blocks = 0;
  int target_length = 0;
  double context_fraction = 0;       // context patches / grid patches, mean over images
  double target_union_fraction = 0;  // patches in any target block / grid patches, mean
  double unused_fraction = 0;        // patches in neither, mean
  double mean_overlap = 0;           // patches in both the context and a target, mean per image
  int max_overlap = 0;
  // Bounding-box shape ("HxW") of every target block, with counts.
  std::map<std::string, int> target_shapes;
  // Per grid row: fraction of the row's cells in the context / in a target, mean over images.
  std::vector<double> context_row_coverage;
  std::vector<double> target_row_coverage;
};

MaskStats compute_mask_stats(const sdk::MaskSample& sample, int grid_height, int grid_width);

}  // namespace jepa::report
