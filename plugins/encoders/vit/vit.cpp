// Encoder `vit`: the official I-JEPA Vision Transformer (no CLS token, fixed 2-D sin-cos
// positions, pre-norm blocks, qkv with bias, exact GELU, LayerNorm eps 1e-6). Submodules carry
// upstream's names (patch_embed.proj, pos_embed, blocks.N..., norm), so state dicts match.
#include <jepa/sdk/encoder.hpp>
#include <jepa/sdk/plugin.hpp>
#include <vit_layers.hpp>

namespace {

using jepa::sdk::Params;
using jepa::sdk::ParamSpec;

struct PatchEmbedImpl : torch::nn::Module {
  PatchEmbedImpl(int64_t in_chans, int64_t dim, int64_t patch)
      : proj(register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_chans, dim, patch).stride(patch)))) {
  }
  // [B, C, H, W] -> [B, N, D], patches in row-major order.
  torch::Tensor forward(const torch::Tensor& x) { return proj->forward(x).flatten(2).transpose(1, 2); }
  torch::nn::Conv2d proj;
};
TORCH_MODULE(PatchEmbed);

class VisionTransformer final : public jepa::sdk::Encoder {
 public:
  explicit VisionTransformer(const Params& p) {
    const std::string size = p.get_string("size");
    jepa::vit::ModelSize s{p.get_int("embed_dim"), p.get_int("depth"), p.get_int("num_heads"),
                           p.get_float("mlp_ratio")};
    if (size != "custom") {
      const auto preset = jepa::vit::model_size(size);
      // Explicit values override the preset; 0 means "take the preset's".
      if (s.embed_dim == 0) s.embed_dim = preset.embed_dim;
      if (s.depth == 0) s.depth = preset.depth;
      if (s.num_heads == 0) s.num_heads = preset.num_heads;
      if (p.get_float("mlp_ratio") == 0.0) s.mlp_ratio = preset.mlp_ratio;
    } else if (s.embed_dim == 0 || s.depth == 0 || s.num_heads == 0) {
      throw jepa::sdk::ParamError("size", "size = \"custom\" needs embed_dim, depth and num_heads");
    }
    if (s.mlp_ratio == 0.0) s.mlp_ratio = 4.0;
    const int64_t img = p.get_int("img_size");
    const int64_t patch = p.get_int("patch_size");
    if (img % patch != 0) {
      throw jepa::sdk::ParamError("patch_size", "img_size " + std::to_string(img) +
                                                    " is not a multiple of patch_size " + std::to_string(patch));
    }
    if (s.embed_dim % s.num_heads != 0) {
      throw jepa::sdk::ParamError("num_heads", "width " + std::to_string(s.embed_dim) + " is not divisible by " +
                                                   std::to_string(s.num_heads) + " heads");
    }
    if (s.embed_dim % 4 != 0) {
      throw jepa::sdk::ParamError(
          "embed_dim", "the 2-D sin-cos positions need a width divisible by 4, got " + std::to_string(s.embed_dim));
    }
    dim_ = s.embed_dim;
    heads_ = s.num_heads;
    grid_ = img / patch;

    patch_embed_ = register_module("patch_embed", PatchEmbed(p.get_int("in_chans"), dim_, patch));
    // A parameter without gradient, as upstream (so it appears in state dicts as `pos_embed`).
    pos_embed_ = register_parameter("pos_embed", jepa::vit::sincos_2d(dim_, grid_, grid_).unsqueeze(0), false);
    blocks_ = register_module("blocks", torch::nn::ModuleList());
    for (int64_t i = 0; i < s.depth; ++i) {
      blocks_->push_back(jepa::vit::Block(dim_, heads_, s.mlp_ratio, p.get_bool("qkv_bias")));
    }
    norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim_}).eps(1e-6)));
    jepa::vit::init_weights(*this, p.get_float("init_std"));
  }

  torch::Tensor forward(const torch::Tensor& images, const std::vector<torch::Tensor>& keep) override {
    auto x = embed(images);
    if (!keep.empty()) x = jepa::vit::apply_masks(x, keep);
    for (const auto& blk : *blocks_) x = blk->as<jepa::vit::Block>()->forward(x);
    return norm_->forward(x);
  }

  std::vector<torch::Tensor> forward_last_layers(const torch::Tensor& images, int64_t n) override {
    auto x = embed(images);
    std::vector<torch::Tensor> out;
    const int64_t depth = static_cast<int64_t>(blocks_->size());
    n = std::max<int64_t>(1, std::min(n, depth));
    for (int64_t i = 0; i < depth; ++i) {
      x = (*blocks_)[i]->as<jepa::vit::Block>()->forward(x);
      if (i >= depth - n) out.push_back(i == depth - 1 ? norm_->forward(x) : x);
    }
    return out;
  }

  int64_t embed_dim() const override { return dim_; }
  int64_t num_heads() const override { return heads_; }
  int64_t depth() const override { return static_cast<int64_t>(blocks_->size()); }
  std::array<int64_t, 2> patch_grid() const override { return {grid_, grid_}; }

 private:
  torch::Tensor embed(const torch::Tensor& images) { return patch_embed_->forward(images) + pos_embed_; }

  int64_t dim_ = 0;
  int64_t heads_ = 0;
  int64_t grid_ = 0;
  PatchEmbed patch_embed_{nullptr};
  torch::Tensor pos_embed_;
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};

}  // namespace

JEPA_PLUGIN("encoder-vit", "1.0.0") {
  plugin.add<VisionTransformer>(
      "vit", 1, "Official I-JEPA ViT encoder (no CLS token, fixed 2-D sin-cos positions)",
      {
          ParamSpec::string("size", "base",
                            "preset: tiny 192/12/3, small 384/12/6, base 768/12/12, "
                            "large 1024/24/16, huge 1280/32/16, giant 1408/40/16; or custom",
                            {"tiny", "small", "base", "large", "huge", "giant", "custom"}),
          ParamSpec::integer("embed_dim", 0, "width; 0 = the preset's").range(0, 8192),
          ParamSpec::integer("depth", 0, "blocks; 0 = the preset's").range(0, 256),
          ParamSpec::integer("num_heads", 0, "attention heads; 0 = the preset's").range(0, 256),
          ParamSpec::real("mlp_ratio", 0.0, "MLP hidden / width; 0 = the preset's (4, giant 48/11)").range(0.0, 64.0),
          ParamSpec::integer("img_size", 224, "input image side in pixels").range(4, 8192),
          ParamSpec::integer("patch_size", 16, "patch side in pixels").range(1, 1024),
          ParamSpec::integer("in_chans", 3, "input channels").range(1, 64),
          ParamSpec::boolean("qkv_bias", true, "bias in the qkv projection"),
          ParamSpec::real("init_std", 0.02, "std of the truncated-normal weight init").range(0.0, 1.0),
      });
}
