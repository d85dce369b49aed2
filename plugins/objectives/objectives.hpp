// The built-in objectives, one file each, registered together by plugin.cpp (one library: the
// three share the JEPA prediction term and the projector, and one translation unit compiles
// LibTorch's headers once).
#pragma once

#include <jepa/sdk/objective.hpp>
#include <jepa/sdk/plugin.hpp>
#include <jepa/sdk/tensor_masks.hpp>

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace jepa::objectives {

void add_ijepa(sdk::PluginBuilder& plugin);
void add_sigreg(sdk::PluginBuilder& plugin);
void add_vicreg(sdk::PluginBuilder& plugin);

sdk::TargetKind target_kind(const std::string& name);  // "ema", "online", "online_detached"

// I-JEPA's prediction term (upstream's train.py): the target tokens through a non-affine layer
// norm over D (eps 1e-5) in fp32, gathered at each target block and repeated for every context
// block, against the predictions in fp32. `distance`: "smooth_l1" (I-JEPA, beta 1), "l1"
// (V-JEPA), "mse". The target side carries gradient only when the tokens do (an online target).
torch::Tensor prediction_term(const sdk::ObjectiveInputs& in, const std::string& distance);

// Per-image embeddings [B, D] in fp32: the tokens [n * B, K, D] averaged over their K tokens and
// their n blocks (n = 1 for the target branch's whole-image tokens [B, N, D]).
torch::Tensor pooled(const torch::Tensor& tokens, int64_t batch);

// An optional MLP head owned by an objective: Linear -> BatchNorm1d -> ReLU for each hidden width,
// then a Linear to the last width (LeJEPA's projector shape). `widths` empty: the identity.
class Projector : public torch::nn::Module {
 public:
  Projector(int64_t in_dim, const std::vector<double>& widths);
  torch::Tensor forward(torch::Tensor x);
  int64_t out_dim() const { return out_dim_; }

 private:
  torch::nn::Sequential layers_{nullptr};
  int64_t out_dim_;
};

// Checks a projector list parameter: positive whole widths. Throws ParamError naming `key`.
std::vector<double> projector_widths(const sdk::Params& p, const std::string& key);

}  // namespace jepa::objectives
