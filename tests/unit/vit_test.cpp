// The vit encoder and vit_predictor plugins against upstream's numbers: positional table, shapes,
// parameter counts, state-dict key names, mask gathering.
#include "config/params.hpp"
#include "loader/cxx_component.hpp"
#include "loader/registry.hpp"
#include "vit_layers.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <jepa/sdk/encoder.hpp>
#include <jepa/sdk/predictor.hpp>
#include <jepa/sdk/tensor_masks.hpp>

#include <cmath>

using jepa::loader::Kind;

namespace {

const jepa::loader::Registry& registry() {
  static const auto reg = jepa::loader::Registry::discover({JEPA_PLUGIN_DIR});
  return reg;
}

std::shared_ptr<jepa::sdk::Encoder> encoder(const std::vector<std::pair<std::string, std::string>>& set) {
  const auto* c = registry().find(Kind::encoder, "vit");
  if (c == nullptr) throw std::runtime_error("vit not loaded");
  return jepa::loader::create_component<jepa::sdk::Encoder>(*c, jepa::config::resolve_params(*c, set));
}

std::shared_ptr<jepa::sdk::Predictor> predictor(const std::vector<std::pair<std::string, std::string>>& set) {
  const auto* c = registry().find(Kind::predictor, "vit_predictor");
  if (c == nullptr) throw std::runtime_error("vit_predictor not loaded");
  return jepa::loader::create_component<jepa::sdk::Predictor>(*c, jepa::config::resolve_params(*c, set));
}

int64_t trainable(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.requires_grad() ? p.numel() : 0;
  return n;
}

const std::vector<std::pair<std::string, std::string>> kSmall{
    {"size", "custom"}, {"embed_dim", "32"}, {"depth", "2"},   {"num_heads", "4"},
    {"img_size", "28"}, {"patch_size", "4"}, {"in_chans", "1"}};

}  // namespace

TEST(Vit, SinCosTableFollowsTheReference) {
  auto enc = encoder(kSmall);
  const auto pos = enc->named_parameters()["pos_embed"];
  ASSERT_EQ(pos.sizes(), (std::vector<int64_t>{1, 49, 32}));
  EXPECT_FALSE(pos.requires_grad());
  // Token k = row * 7 + col: dims [0, 16) encode the column, [16, 32) the row; each half is
  // [sin(pos * w_i) | cos(pos * w_i)] with w_i = 1 / 10000^(i / 8).
  const int64_t row = 3, col = 5, k = row * 7 + col;
  for (int i = 0; i < 8; ++i) {
    const double w = 1.0 / std::pow(10000.0, i / 8.0);
    EXPECT_NEAR(pos[0][k][i].item<float>(), std::sin(col * w), 1e-6);
    EXPECT_NEAR(pos[0][k][8 + i].item<float>(), std::cos(col * w), 1e-6);
    EXPECT_NEAR(pos[0][k][16 + i].item<float>(), std::sin(row * w), 1e-6);
    EXPECT_NEAR(pos[0][k][24 + i].item<float>(), std::cos(row * w), 1e-6);
  }
}

TEST(Vit, ShapesAndMaskGathering) {
  auto enc = encoder(kSmall);
  const auto x = torch::randn({3, 1, 28, 28});
  const auto full = enc->forward(x, {});
  EXPECT_EQ(full.sizes(), (std::vector<int64_t>{3, 49, 32}));
  // Keeping tokens after the positional embedding, before the blocks: with depth 0 the kept
  // tokens would equal a gather of the full output; with blocks, attention sees only the kept
  // ones, so check the gather itself on the patch embedding + positions via apply_masks.
  const auto idx = torch::tensor({{0, 8, 48}, {1, 2, 3}, {10, 20, 30}}, torch::kLong);
  const auto kept = enc->forward(x, {idx, idx});
  EXPECT_EQ(kept.sizes(), (std::vector<int64_t>{6, 3, 32}));
  // The same rows at other places of one batch: equal up to the GEMM's blocking (near-zero outputs
  // make the default atol of 1e-8 flaky).
  EXPECT_TRUE(torch::allclose(kept.slice(0, 0, 3), kept.slice(0, 3, 6), 1e-5, 1e-6));
  const auto gathered = jepa::sdk::apply_masks(full, {idx});
  EXPECT_TRUE(torch::allclose(gathered[2][1], full[2][20]));
  EXPECT_EQ(enc->forward_last_layers(x, 4).size(), 2u) << "capped at the depth";
}

TEST(Vit, OfficialKeyNames) {
  auto enc = encoder(kSmall);
  const auto params = enc->named_parameters();
  for (const char* key : {"pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight",
                          "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight",
                          "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "blocks.1.norm2.bias", "norm.weight"}) {
    EXPECT_TRUE(params.contains(key)) << key;
  }
  auto pred = predictor({{"embed_dim", "16"}, {"depth", "1"}});
  pred->bind({32, 4, 7, 7});
  const auto pp = pred->named_parameters();
  for (const char* key :
       {"predictor_embed.weight", "mask_token", "predictor_pos_embed", "predictor_blocks.0.attn.qkv.weight",
        "predictor_norm.weight", "predictor_proj.weight", "predictor_proj.bias"}) {
    EXPECT_TRUE(pp.contains(key)) << key;
  }
}

TEST(Vit, InitialisationIsTheEffectiveUpstreamOne) {
  auto enc = encoder({{"size", "custom"}, {"embed_dim", "64"}, {"depth", "2"}, {"num_heads", "4"}});
  const auto p = enc->named_parameters();
  EXPECT_NEAR(p["blocks.1.attn.proj.weight"].std().item<double>(), 0.02, 0.002) << "no residual rescale";
  EXPECT_NEAR(p["blocks.0.mlp.fc1.weight"].std().item<double>(), 0.02, 0.002);
  EXPECT_EQ(p["blocks.0.mlp.fc1.bias"].abs().sum().item<double>(), 0.0);
  EXPECT_EQ(p["norm.weight"].mean().item<double>(), 1.0);
}

TEST(Vit, HugeParameterCountMatchesThePaper) {
  auto enc = encoder({{"size", "huge"}, {"patch_size", "14"}});
  EXPECT_EQ(trainable(*enc), 630434560);
  EXPECT_EQ(enc->named_parameters()["pos_embed"].sizes(), (std::vector<int64_t>{1, 256, 1280}));
  EXPECT_EQ(enc->patch_grid()[0], 16);
}

TEST(VitPredictor, OneSequencePerTargetBlock) {
  auto pred = predictor({{"embed_dim", "16"}, {"depth", "2"}});
  pred->bind({32, 4, 7, 7});
  const int64_t B = 2;
  const auto ctx = torch::tensor({{0, 1, 2, 3, 4}, {5, 6, 7, 8, 9}}, torch::kLong);
  const auto t1 = torch::tensor({{20, 21, 27}, {30, 31, 38}}, torch::kLong);
  const auto t2 = torch::tensor({{40, 41, 47}, {10, 11, 17}}, torch::kLong);
  const auto tokens = torch::randn({B, 5, 32});
  const auto out = pred->forward(tokens, {ctx}, {t1, t2});
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{4, 3, 32})) << "[npred * B, K_tgt, D], mask-major";
  // Each block is predicted in its own sequence: the first block's predictions do not depend on
  // the second block's positions.
  const auto out2 = pred->forward(tokens, {ctx}, {t1, torch::tensor({{0, 1, 2}, {3, 4, 5}}, torch::kLong)});
  EXPECT_TRUE(torch::allclose(out.slice(0, 0, 2), out2.slice(0, 0, 2), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(out.slice(0, 2, 4), out2.slice(0, 2, 4)));
}

// The predictor's last block computes only the target tokens: the same outputs, and the same
// gradients for every weight, as computing every token and dropping the context ones.
TEST(VitLayers, BlockTailIsTheFullBlockSliced) {
  torch::manual_seed(7);
  for (const bool qkv_bias : {true, false}) {
    jepa::vit::Block block(32, 4, 4.0, qkv_bias);
    for (auto& p : block->parameters()) {
      torch::NoGradGuard no_grad;
      p.normal_(0.0, 0.2);  // away from the init's zero biases and unit norms
    }
    const auto x = torch::randn({3, 11, 32});
    const auto full = block->forward(x).slice(1, 7);
    const auto tail = block->forward_tail(x, 7);
    ASSERT_EQ(tail.sizes(), full.sizes());
    EXPECT_TRUE(torch::allclose(tail, full, 1e-5, 1e-6)) << (tail - full).abs().max().item<double>();

    const auto weights = torch::randn(full.sizes());
    std::vector<torch::Tensor> grads_full;
    std::vector<torch::Tensor> grads_tail;
    for (auto* grads : {&grads_full, &grads_tail}) {
      block->zero_grad();
      const auto y = grads == &grads_full ? block->forward(x).slice(1, 7) : block->forward_tail(x, 7);
      (y * weights).sum().backward();
      for (auto& p : block->parameters()) grads->push_back(p.grad().clone());
    }
    for (size_t i = 0; i < grads_full.size(); ++i) {
      EXPECT_TRUE(torch::allclose(grads_tail[i], grads_full[i], 1e-4, 1e-6)) << "parameter " << i;
    }
  }
}
