// GradientReducer with two ranks in one process (two threads, Gloo on loopback): the mean lands
// in every .grad, a parameter without gradient on a rank counts as zeros, and the gradients are
// slots of the flat buckets (no copies), kept across steps and across zero_grad().
#include "distributed/group.hpp"
#include "loopback_group.hpp"

#include <gtest/gtest.h>
#include <torch/optim/sgd.h>
#include <torch/torch.h>

#include <string>
#include <thread>

namespace {

using jepa::dist::GradientReducer;
using jepa::dist::Group;

const std::vector<std::vector<int64_t>> kShapes{{3, 4}, {5}, {2, 2, 2}, {7}};

// What rank `rank` multiplies parameter k with at `step`: its gradient.
torch::Tensor weight(int rank, size_t k, int step) {
  auto gen = at::detail::createCPUGenerator(100 * step + 10 * rank + static_cast<int>(k));
  return at::randn(kShapes[k], gen, torch::kFloat32);
}

// Rank 1 never uses the last parameter.
bool used(int rank, size_t k) {
  return !(rank == 1 && k + 1 == kShapes.size());
}

void run_rank(int rank, int port, std::string& failure) {
  try {
    const auto owned = jepa_test::loopback_group(rank, 2, port);
    Group& group = *owned;

    std::vector<torch::Tensor> params;
    for (const auto& shape : kShapes) params.push_back(torch::zeros(shape).requires_grad_(true));
    // 64 bytes: buckets {p3, p2}, {p1}, {p0} (reverse order; 28 + 32 bytes fit, then 20, then 48).
    GradientReducer reducer(group, params, 64);
    torch::optim::SGD optimizer(params, torch::optim::SGDOptions(0.1));
    std::vector<const void*> first_grads;
    for (int step = 0; step < 3; ++step) {
      optimizer.zero_grad();  // LibTorch 2 drops the gradients here (set_to_none), 1.13 zeroes them
      reducer.prepare(step);
      torch::Tensor loss = torch::zeros({});
      for (size_t k = 0; k < params.size(); ++k) {
        if (!used(rank, k)) continue;
        const auto w = weight(rank, k, step);
        if (k == 1) {
          // Used twice: autograd sums both uses before it accumulates, one hook call.
          loss = loss + (params[k] * w).sum() * 0.5 + (params[k] * w * 0.5).sum();
        } else {
          loss = loss + (params[k] * w).sum();
        }
      }
      loss.backward();
      reducer.finish();
      for (size_t k = 0; k < params.size(); ++k) {
        SCOPED_TRACE(testing::Message() << "rank " << rank << ", step " << step << ", parameter " << k);
        torch::Tensor sum = torch::zeros(kShapes[k]);
        for (int r = 0; r < 2; ++r) {
          if (used(r, k)) sum += weight(r, k, step);
        }
        ASSERT_TRUE(params[k].grad().defined());
        EXPECT_TRUE(torch::allclose(params[k].grad(), sum / 2, 1e-6, 1e-7));
        if (step == 0) first_grads.push_back(params[k].grad().unsafeGetTensorImpl());
        // The same tensor every step: nothing replaced it.
        EXPECT_EQ(params[k].grad().unsafeGetTensorImpl(), first_grads[k]);
      }
      // p3 and p2 share bucket 0: one storage, p2's slot right after p3's.
      const auto& g3 = params[3].grad();
      const auto& g2 = params[2].grad();
      EXPECT_TRUE(g3.storage().is_alias_of(g2.storage()));
      EXPECT_EQ(static_cast<const char*>(g2.data_ptr()),
                static_cast<const char*>(g3.data_ptr()) + g3.numel() * g3.element_size());
      EXPECT_FALSE(params[1].grad().storage().is_alias_of(g3.storage()));
      EXPECT_FALSE(params[0].grad().storage().is_alias_of(params[1].grad().storage()));
    }
  } catch (const std::exception& ex) {
    failure = ex.what();
  }
}

TEST(GradientReducer, GradientsAreBucketSlotsHoldingTheMeanOverRanks) {
  const int port = jepa_test::free_loopback_port();
  std::string failures[2];
  std::thread rank1([&] { run_rank(1, port, failures[1]); });
  run_rank(0, port, failures[0]);
  rank1.join();
  EXPECT_EQ(failures[0], "");
  EXPECT_EQ(failures[1], "");
}

}  // namespace
