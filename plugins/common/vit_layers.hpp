// Transformer layers shared by the `vit` encoder and the `vit_predictor` plugins, shaped like the
// official I-JEPA modules (same submodule names, so state dicts carry the official key names).
// Numbers and semantics from facebookresearch/ijepa src/models/vision_transformer.py; the code is ours.
#pragma once

#include <torch/torch.h>
#include <torch/version.h>
#include <jepa/sdk/tensor_masks.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace jepa::vit {

// Fixed 2-D sin-cos table [grid_h * grid_w, dim] (MAE's): for token k = row * W + col, the first
// dim/2 entries encode the column and the last dim/2 the row; each half is
// [sin(pos * w_i) | cos(pos * w_i)], w_i = 1 / 10000^(i / (dim / 4)). Computed in double, as
// upstream's numpy, then cast.
inline torch::Tensor sincos_2d(int64_t dim, int64_t grid_h, int64_t grid_w) {
  TORCH_CHECK(dim % 4 == 0, "sin-cos positional embedding needs a width divisible by 4, got ", dim);
  const int64_t quarter = dim / 4;
  auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto omega = 1.0 / torch::pow(10000.0, torch::arange(quarter, opts) / static_cast<double>(quarter));
  auto one_d = [&](const torch::Tensor& pos) {  // [n] -> [n, dim/2]
    const auto out = pos.unsqueeze(1) * omega.unsqueeze(0);
    return torch::cat({torch::sin(out), torch::cos(out)}, 1);
  };
  const auto rows = torch::arange(grid_h, opts).repeat_interleave(grid_w);  // row of token k
  const auto cols = torch::arange(grid_w, opts).repeat({grid_h});           // column of token k
  return torch::cat({one_d(cols), one_d(rows)}, 1).to(torch::kFloat32);
}

using sdk::apply_masks;
using sdk::repeat_interleave_batch;

struct MlpImpl : torch::nn::Module {
  MlpImpl(int64_t dim, int64_t hidden)
      : fc1(register_module("fc1", torch::nn::Linear(dim, hidden))),
        fc2(register_module("fc2", torch::nn::Linear(hidden, dim))) {}
  torch::Tensor forward(const torch::Tensor& x) {
    // Exact (erf) GELU, as nn.GELU() upstream.
    return fc2->forward(torch::gelu(fc1->forward(x)));
  }
  torch::nn::Linear fc1;
  torch::nn::Linear fc2;
};
TORCH_MODULE(Mlp);

struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t dim, int64_t heads, bool qkv_bias)
      : num_heads(heads),
        head_dim(dim / heads),
        scale(1.0 / std::sqrt(static_cast<double>(dim / heads))),
        qkv(register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, dim * 3).bias(qkv_bias)))),
        proj(register_module("proj", torch::nn::Linear(dim, dim))) {
    TORCH_CHECK(dim % heads == 0, "width ", dim, " is not divisible by ", heads, " heads");
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const int64_t B = x.size(0);
    const int64_t N = x.size(1);
    const int64_t C = x.size(2);
    const auto qkv_out = qkv->forward(x).reshape({B, N, 3, num_heads, head_dim}).permute({2, 0, 3, 1, 4});
    return proj->forward(attend(qkv_out[0], qkv_out[1], qkv_out[2]).transpose(1, 2).reshape({B, N, C}));
  }

  // The outputs of the tokens [keep_from, N) only, every token still a key and a value: the
  // same numbers as forward(x).slice(1, keep_from) without the queries, projections of the rest.
  torch::Tensor forward_tail(const torch::Tensor& x, int64_t keep_from) {
    const int64_t B = x.size(0);
    const int64_t N = x.size(1);
    const int64_t C = x.size(2);
    const int64_t T = N - keep_from;
    const auto& w = qkv->weight;
    const auto& b = qkv->bias;
    const bool bias = b.defined() && b.numel() > 0;
    const auto q = torch::linear(x.slice(1, keep_from), w.slice(0, 0, C), bias ? b.slice(0, 0, C) : torch::Tensor())
                       .reshape({B, T, num_heads, head_dim})
                       .transpose(1, 2);
    const auto kv = torch::linear(x, w.slice(0, C), bias ? b.slice(0, C) : torch::Tensor())
                        .reshape({B, N, 2, num_heads, head_dim})
                        .permute({2, 0, 3, 1, 4});
    return proj->forward(attend(q, kv[0], kv[1]).transpose(1, 2).reshape({B, T, C}));
  }

  // softmax(q k^T * scale) v for q [B,h,Nq,d], k and v [B,h,N,d].
  torch::Tensor attend(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v) const {
#if TORCH_VERSION_MAJOR >= 2
    // The fused kernel (flash / memory-efficient on CUDA) computes the same softmax(q k^T * scale) v.
    return at::scaled_dot_product_attention(q, k, v);
#else
    // Scaling q ([B,h,N,d]) instead of the scores ([B,h,N,N]) is the same maths with less work.
    return torch::matmul(torch::matmul(q * scale, k.transpose(-2, -1)).softmax(-1), v);
#endif
  }

  int64_t num_heads;
  int64_t head_dim;
  double scale;
  torch::nn::Linear qkv;
  torch::nn::Linear proj;
};
TORCH_MODULE(Attention);

// Pre-norm transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)); LayerNorm eps 1e-6.
struct BlockImpl : torch::nn::Module {
  BlockImpl(int64_t dim, int64_t heads, double mlp_ratio, bool qkv_bias)
      : norm1(register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)))),
        attn(register_module("attn", Attention(dim, heads, qkv_bias))),
        norm2(register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(1e-6)))),
        mlp(register_module("mlp", Mlp(dim, static_cast<int64_t>(static_cast<double>(dim) * mlp_ratio)))) {}

  torch::Tensor forward(torch::Tensor x) {
    x = x + attn->forward(norm1->forward(x));
    return x + mlp->forward(norm2->forward(x));
  }

  // forward(x).slice(1, keep_from) without computing the other rows: for a last block whose
  // outputs are read only at some positions (the predictor's target tokens).
  torch::Tensor forward_tail(const torch::Tensor& x, int64_t keep_from) {
    auto y = x.slice(1, keep_from) + attn->forward_tail(norm1->forward(x), keep_from);
    return y + mlp->forward(norm2->forward(y));
  }

  torch::nn::LayerNorm norm1;
  Attention attn;
  torch::nn::LayerNorm norm2;
  Mlp mlp;
};
TORCH_MODULE(Block);

// N(0, std) truncated at +-2 (absolute, as timm's trunc_normal_ upstream: with std 0.02 the
// truncation never bites, so it is effectively untruncated).
inline void trunc_normal_(torch::Tensor t, double std) {
  torch::NoGradGuard no_grad;
  t.normal_(0.0, std).clamp_(-2.0, 2.0);
}

// The effective upstream initialisation (helper.init_model re-initialises after the
// constructors, which undoes their per-layer residual rescale): Linear N(0, std) with zero bias,
// LayerNorm (1, 0), Conv2d N(0, std) with zero bias.
inline void init_weights(torch::nn::Module& root, double std) {
  torch::NoGradGuard no_grad;
  for (auto& m : root.modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::Linear>()) {
      trunc_normal_(linear->weight, std);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* norm = m->as<torch::nn::LayerNorm>()) {
      norm->weight.fill_(1.0);
      norm->bias.zero_();
    } else if (auto* conv = m->as<torch::nn::Conv2d>()) {
      trunc_normal_(conv->weight, std);
      if (conv->bias.defined()) conv->bias.zero_();
    }
  }
}

struct ModelSize {
  int64_t embed_dim;
  int64_t depth;
  int64_t num_heads;
  double mlp_ratio;
};

// The official sizes; giant uses MLP ratio 48/11 (hidden 6144).
inline ModelSize model_size(const std::string& name) {
  if (name == "tiny") return {192, 12, 3, 4.0};
  if (name == "small") return {384, 12, 6, 4.0};
  if (name == "base") return {768, 12, 12, 4.0};
  if (name == "large") return {1024, 24, 16, 4.0};
  if (name == "huge") return {1280, 32, 16, 4.0};
  if (name == "giant") return {1408, 40, 16, 48.0 / 11.0};
  throw std::invalid_argument("unknown ViT size '" + name + "'");
}

}  // namespace jepa::vit
