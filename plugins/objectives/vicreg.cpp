// I-JEPA plus VICReg's variance and covariance terms (Bardes, Ponce & LeCun 2022), as C-JEPA adds
// them to I-JEPA (Mo & Tong 2024): the prediction term against the EMA target stands in for
// VICReg's invariance term, with VICReg's default weights 25 / 25 / 1. The statistics are those
// of the global batch (all ranks, with gradient), as stable-pretraining's all-gathered VICReg:
//   var = mean_j relu(1 - sqrt(Var(z_j) + 1e-4)),   cov = sum_{i != j} C_ij^2 / D,
// with C the (N - 1)-normalised covariance of the per-image embeddings z [N, D].
#include "objectives.hpp"

namespace jepa::objectives {

namespace {

class Vicreg final : public sdk::Objective {
 public:
  explicit Vicreg(const sdk::Params& p)
      : target_(p.get_string("target")),
        on_(p.get_string("on")),
        pred_weight_(p.get_float("pred_weight")),
        var_weight_(p.get_float("var_weight")),
        cov_weight_(p.get_float("cov_weight")),
        widths_(projector_widths(p, "projector")) {
    if (on_ == "target" && target_ != "online") {
      throw sdk::ParamError("on",
                            "\"target\" needs target = \"online\" (a detached or EMA target gives the terms "
                            "no gradient); use on = \"context\" or \"predictions\"");
    }
  }

  sdk::ObjectiveNeeds needs() const override { return {target_kind(target_)}; }

  void bind(const sdk::EncoderShape& encoder) override {
    projector_ = register_module("projector", std::make_shared<Projector>(encoder.embed_dim, widths_));
  }

  sdk::ObjectiveOutput forward(const sdk::ObjectiveInputs& in, const sdk::StepInfo& /*step*/,
                               sdk::Collective& collective) override {
    const auto pred = prediction_term(in, "smooth_l1");
    const torch::Tensor& tokens = on_ == "context"       ? in.context_tokens
                                  : on_ == "predictions" ? in.predictions
                                                         : in.target_tokens;
    const auto z = projector_->forward(pooled(tokens, in.batch_size));
    const double n = static_cast<double>(z.size(0) * collective.world_size());
    const auto dim = z.size(1);
    const auto mean = collective.mean(z.mean(0));
    const auto centred = z - mean;
    const auto second = collective.mean(torch::matmul(centred.t(), centred) / static_cast<double>(z.size(0)));
    const auto cov = second * (n / std::max(1.0, n - 1));  // the unbiased covariance [D, D]
    const auto std = torch::sqrt(cov.diagonal() + 1e-4);
    const auto var_term = torch::relu(1 - std).mean();
    const auto off = cov - torch::diag(cov.diagonal());
    const auto cov_term = off.square().sum() / static_cast<double>(dim);
    sdk::ObjectiveOutput out;
    out.loss = pred_weight_ * pred + var_weight_ * var_term + cov_weight_ * cov_term;
    out.parts.emplace_back("pred", pred.detach());
    out.parts.emplace_back("var", var_term.detach());
    out.parts.emplace_back("cov", cov_term.detach());
    return out;
  }

 private:
  std::string target_;
  std::string on_;
  double pred_weight_;
  double var_weight_;
  double cov_weight_;
  std::vector<double> widths_;
  std::shared_ptr<Projector> projector_;
};

}  // namespace

void add_vicreg(sdk::PluginBuilder& plugin) {
  using sdk::ParamSpec;
  plugin.add<Vicreg>(
      "vicreg", 1,
      "I-JEPA plus VICReg's variance and covariance terms on per-image embeddings (as C-JEPA), weights 25/25/1",
      {ParamSpec::real("pred_weight", 25, "weight of the JEPA prediction term (VICReg's invariance weight)")
           .range(0, 1e6),
       ParamSpec::real("var_weight", 25, "weight of the variance hinge (VICReg: 25)").range(0, 1e6),
       ParamSpec::real("cov_weight", 1, "weight of the covariance term (VICReg: 1)").range(0, 1e6),
       ParamSpec::string("on", "context",
                         "whose per-image embeddings (tokens averaged) the terms see: context (the context "
                         "encoder), predictions (the predictor), target (the online encoder on the whole image; "
                         "needs target = online)",
                         {"context", "predictions", "target"}),
       ParamSpec::string("target", "ema",
                         "the prediction term's target: ema (I-JEPA, [optimization] ema), online_detached, online",
                         {"ema", "online_detached", "online"}),
       ParamSpec::list("projector", {}, "MLP widths before the terms (BatchNorm + ReLU between); [] = none")
           .range(1, 65536)});
}

}  // namespace jepa::objectives
