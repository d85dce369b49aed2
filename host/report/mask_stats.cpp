#include "report/mask_stats.hpp"

#include <algorithm>
#include <climits>

namespace jepa::report {

MaskStats compute_mask_stats(const sdk::MaskSample& s, int H, int W) {
  MaskStats st;
  st.grid_height = H;
  st.grid_width = W;
  st.batch_size = s.batch_size;
  st.context_blocks = s.context_blocks;
  st.context_length = s.context_length;
  st.target_blocks = s.target_blocks;
  st.target_length = s.target_length;
  st.context_row_coverage.assign(H, 0.0);
  st.target_row_coverage.assign(H, 0.0);
  const int n = H * W;
  if (s.batch_size == 0 || n == 0) return st;

  std::vector<uint8_t> ctx(n);
  std::vector<uint8_t> tgt(n);
  long total_overlap = 0;
  double ctx_sum = 0;
  double tgt_sum = 0;
  double unused_sum = 0;
  for (int i = 0; i < s.batch_size; ++i) {
    std::fill(ctx.begin(), ctx.end(), 0);
    std::fill(tgt.begin(), tgt.end(), 0);
    for (int b = 0; b < s.context_blocks; ++b) {
      const int64_t* row = s.context_row(b, i);
      for (int k = 0; k < s.context_length; ++k) ctx[row[k]] = 1;
    }
    for (int b = 0; b < s.target_blocks; ++b) {
      const int64_t* row = s.target_row(b, i);
      int r0 = INT_MAX, r1 = -1, c0 = INT_MAX, c1 = -1;
      for (int k = 0; k < s.target_length; ++k) {
        tgt[row[k]] = 1;
        const int r = static_cast<int>(row[k] / W);
        const int c = static_cast<int>(row[k] % W);
        r0 = std::min(r0, r);
        r1 = std::max(r1, r);
        c0 = std::min(c0, c);
        c1 = std::max(c1, c);
      }
      if (r1 >= 0) ++st.target_shapes[std::to_string(r1 - r0 + 1) + "x" + std::to_string(c1 - c0 + 1)];
    }
    int overlap = 0;
    int n_ctx = 0;
    int n_tgt = 0;
    int n_unused = 0;
    for (int p = 0; p < n; ++p) {
      overlap += ctx[p] & tgt[p];
      n_ctx += ctx[p];
      n_tgt += tgt[p];
      n_unused += (ctx[p] | tgt[p]) ^ 1;
      st.context_row_coverage[p / W] += ctx[p];
      st.target_row_coverage[p / W] += tgt[p];
    }
    total_overlap += overlap;
    st.max_overlap = std::max(st.max_overlap, overlap);
    ctx_sum += static_cast<double>(n_ctx) / n;
    tgt_sum += static_cast<double>(n_tgt) / n;
    unused_sum += static_cast<double>(n_unused) / n;
  }
  const double B = s.batch_size;
  st.context_fraction = ctx_sum / B;
  st.target_union_fraction = tgt_sum / B;
  st.unused_fraction = unused_sum / B;
  st.mean_overlap = static_cast<double>(total_overlap) / B;
  for (int r = 0; r < H; ++r) {
    st.context_row_coverage[r] /= B * W;
    st.target_row_coverage[r] /= B * W;
  }
  return st;
}

}  // namespace jepa::report
