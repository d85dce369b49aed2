// A third-party objective: V-JEPA's loss (facebookresearch/jepa, app/vjepa/train.py),
// mean(|z - h|^loss_exp) / loss_exp against the EMA target's layer-normed tokens at the target
// blocks, where I-JEPA has smooth L1. Built out of tree against the installed SDK.
#include <jepa/sdk/objective.hpp>
#include <jepa/sdk/plugin.hpp>
#include <jepa/sdk/tensor_masks.hpp>

namespace {

class VjepaL1 final : public jepa::sdk::Objective {
 public:
  explicit VjepaL1(const jepa::sdk::Params& p) : loss_exp_(p.get_float("loss_exp")) {}

  jepa::sdk::ObjectiveNeeds needs() const override { return {jepa::sdk::TargetKind::ema}; }

  jepa::sdk::ObjectiveOutput forward(const jepa::sdk::ObjectiveInputs& in, const jepa::sdk::StepInfo& /*step*/,
                                     jepa::sdk::Collective& /*collective*/) override {
    torch::Tensor h;
    {
      torch::NoGradGuard no_grad;
      h = in.target_tokens.to(torch::kFloat32);
      h = torch::layer_norm(h, {h.size(-1)});
      h = jepa::sdk::repeat_interleave_batch(jepa::sdk::apply_masks(h, in.target_masks), in.batch_size,
                                             static_cast<int64_t>(in.context_masks.size()));
    }
    const auto z = in.predictions.to(torch::kFloat32);
    jepa::sdk::ObjectiveOutput out;
    out.loss = (z - h).abs().pow(loss_exp_).mean() / loss_exp_;
    out.parts.emplace_back("l1", (z - h).abs().mean().detach());
    return out;
  }

 private:
  double loss_exp_;
};

}  // namespace

JEPA_PLUGIN("vjepa-objective", "0.1.0") {
  plugin.add<VjepaL1>("vjepa_l1", 1, "V-JEPA: |z - h|^loss_exp / loss_exp against the EMA target's layer-normed tokens",
                      {jepa::sdk::ParamSpec::real("loss_exp", 1.0, "exponent (V-JEPA: 1)").range(0.5, 4)});
}
