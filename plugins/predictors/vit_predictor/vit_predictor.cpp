// Predictor `vit_predictor`: the official narrow I-JEPA predictor. Context tokens are projected to
// the predictor width and given its own sin-cos positions; each target block is predicted in its
// own sequence [context tokens, one shared mask token + position per target patch]; only the
// mask-token outputs are kept and projected back to the encoder width. Submodule names follow
// upstream (predictor_embed, mask_token, predictor_pos_embed, predictor_blocks, predictor_norm,
// predictor_proj).
#include <jepa/sdk/plugin.hpp>
#include <jepa/sdk/predictor.hpp>
#include <vit_layers.hpp>

namespace {

using jepa::sdk::Params;
using jepa::sdk::ParamSpec;

class VitPredictor final : public jepa::sdk::Predictor {
 public:
  explicit VitPredictor(const Params& p)
      : width_(p.get_int("embed_dim")),
        depth_(p.get_int("depth")),
        heads_(p.get_int("num_heads")),
        mlp_ratio_(p.get_float("mlp_ratio")),
        qkv_bias_(p.get_bool("qkv_bias")),
        init_std_(p.get_float("init_std")) {}

  void bind(const jepa::sdk::EncoderShape& enc) override {
    if (bound_) throw std::logic_error("vit_predictor: bind() called twice");
    const int64_t heads = heads_ == 0 ? enc.num_heads : heads_;  // upstream: the encoder's heads
    embed_ = register_module("predictor_embed", torch::nn::Linear(enc.embed_dim, width_));
    mask_token_ = register_parameter("mask_token", torch::zeros({1, 1, width_}));
    pos_embed_ = register_parameter("predictor_pos_embed",
                                    jepa::vit::sincos_2d(width_, enc.grid_height, enc.grid_width).unsqueeze(0), false);
    blocks_ = register_module("predictor_blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < depth_; ++i) blocks_->push_back(jepa::vit::Block(width_, heads, mlp_ratio_, qkv_bias_));
    norm_ = register_module("predictor_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width_}).eps(1e-6)));
    proj_ = register_module("predictor_proj", torch::nn::Linear(width_, enc.embed_dim));
    jepa::vit::init_weights(*this, init_std_);
    jepa::vit::trunc_normal_(mask_token_, init_std_);
    bound_ = true;
  }

  torch::Tensor forward(const torch::Tensor& context_tokens, const std::vector<torch::Tensor>& context,
                        const std::vector<torch::Tensor>& targets) override {
    if (!bound_) throw std::logic_error("vit_predictor: forward() before bind()");
    const auto n_ctx = static_cast<int64_t>(context.size());
    const auto n_tgt = static_cast<int64_t>(targets.size());
    const int64_t B = context_tokens.size(0) / n_ctx;

    const auto pos = pos_embed_.expand({B, -1, -1});
    auto x = embed_->forward(context_tokens) + jepa::vit::apply_masks(pos, context);
    const int64_t n_context_tokens = x.size(1);

    // One sequence per (target block, context block, image), mask-major as upstream.
    auto target_pos = jepa::vit::repeat_interleave_batch(jepa::vit::apply_masks(pos, targets), B, n_ctx);
    auto pred_tokens = mask_token_ + target_pos;
    x = torch::cat({x.repeat({n_tgt, 1, 1}), pred_tokens}, 1);
    // Only the target tokens' outputs are read: the last block computes no others (upstream computes
    // and drops them, about a sixth of the default predictor's work).
    const auto last = static_cast<int64_t>(blocks_->size()) - 1;
    for (int64_t i = 0; i < last; ++i) x = (*blocks_)[i]->as<jepa::vit::Block>()->forward(x);
    x = last >= 0 ? (*blocks_)[last]->as<jepa::vit::Block>()->forward_tail(x, n_context_tokens)
                  : x.slice(1, n_context_tokens);
    return proj_->forward(norm_->forward(x));
  }

 private:
  int64_t width_;
  int64_t depth_;
  int64_t heads_;
  double mlp_ratio_;
  bool qkv_bias_;
  double init_std_;
  bool bound_ = false;
  torch::nn::Linear embed_{nullptr};
  torch::Tensor mask_token_;
  torch::Tensor pos_embed_;
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
  torch::nn::Linear proj_{nullptr};
};

}  // namespace

JEPA_PLUGIN("predictor-vit", "1.0.0") {
  plugin.add<VitPredictor>(
      "vit_predictor", 1, "Official I-JEPA narrow ViT predictor, one sequence per target block",
      {
          ParamSpec::integer("embed_dim", 384, "predictor width (upstream pred_emb_dim)").range(4, 8192),
          ParamSpec::integer("depth", 6, "predictor blocks (paper: 6 for B/16, 12 for L and H, 16 for G)")
              .range(1, 256),
          ParamSpec::integer("num_heads", 0, "attention heads; 0 = the encoder's (upstream)").range(0, 256),
          ParamSpec::real("mlp_ratio", 4.0, "MLP hidden / width").range(0.25, 64.0),
          ParamSpec::boolean("qkv_bias", true, "bias in the qkv projection"),
          ParamSpec::real("init_std", 0.02, "std of the truncated-normal init (weights and mask token)")
              .range(0.0, 1.0),
      });
}
