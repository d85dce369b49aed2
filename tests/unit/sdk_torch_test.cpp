// The parts of the SDK and loader that meet LibTorch: C++ components behind the fingerprint
// gate, and the block-size draws that must equal upstream's torch.Generator draws.
#include "config/params.hpp"
#include "loader/cxx_component.hpp"
#include "loader/registry.hpp"

#include <jepa/sdk/encoder.hpp>
#include <jepa/sdk/evaluator.hpp>
#include <jepa/sdk/predictor.hpp>

#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <block_sampler.hpp>

#include <filesystem>

TEST(SizeGenerator, EqualsTorchGeneratorManualSeedRand) {
  // Upstream: g = torch.Generator(); g.manual_seed(step); torch.rand(1, generator=g) twice
  // (target size, then context size).
  for (int64_t step : {0, 1, 2, 17, 624, 625, 99999, 187500}) {
    auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(step));
    const float a = torch::rand({1}, gen).item<float>();
    const float b = torch::rand({1}, gen).item<float>();
    jepa::masking::SizeGenerator ours(0, step);
    EXPECT_EQ(ours.uniform(), static_cast<double>(a)) << "step " << step;
    EXPECT_EQ(ours.uniform(), static_cast<double>(b)) << "step " << step;
  }
}

TEST(CxxComponents, EncoderPassesFingerprintGateAndRuns) {
  const auto reg = jepa::loader::Registry::discover({std::filesystem::path(JEPA_FIXTURE_DIR) / "tiny_encoder"});
  ASSERT_TRUE(reg.rejected().empty()) << reg.rejected()[0].reason;
  const auto* c = reg.find(jepa::loader::Kind::encoder, "tiny_encoder");
  ASSERT_NE(c, nullptr);
  EXPECT_TRUE(c->cxx_interface);

  std::shared_ptr<jepa::sdk::Encoder> enc =
      jepa::loader::create_component<jepa::sdk::Encoder>(*c, jepa::config::resolve_params(*c, {{"dim", "16"}}));
  EXPECT_EQ(enc->embed_dim(), 16);
  EXPECT_EQ(enc->patch_grid()[0], 7);
  const auto images = torch::randn({2, 1, 28, 28});
  EXPECT_EQ(enc->forward(images, {}).sizes(), (std::vector<int64_t>{2, 49, 16}));
  const auto keep = torch::tensor({0, 5, 9}, torch::kLong).repeat({2, 1});
  EXPECT_EQ(enc->forward(images, {keep, keep}).sizes(), (std::vector<int64_t>{4, 3, 16}));

  // Autograd flows through the plugin's module, and its parameters are visible to the host.
  auto loss = enc->forward(images, {}).pow(2).mean();
  loss.backward();
  int with_grad = 0;
  for (const auto& p : enc->parameters()) with_grad += p.grad().defined() ? 1 : 0;
  EXPECT_EQ(with_grad, 2);

  EXPECT_THROW(jepa::loader::create_component<jepa::sdk::Predictor>(*c, jepa::loader::ParamSet::defaults(*c)),
               jepa::loader::PluginError);
}
