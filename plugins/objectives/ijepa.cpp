// I-JEPA's objective (upstream's train.py): smooth L1 between the predictions and the layer-normed
// tokens of an EMA target encoder. The host's loss before objectives were plugins, unchanged.
#include "objectives.hpp"

namespace jepa::objectives {

namespace {

class Ijepa final : public sdk::Objective {
 public:
  explicit Ijepa(const sdk::Params& /*params*/) {}

  sdk::ObjectiveNeeds needs() const override { return {sdk::TargetKind::ema}; }

  sdk::ObjectiveOutput forward(const sdk::ObjectiveInputs& in, const sdk::StepInfo& /*step*/,
                               sdk::Collective& /*collective*/) override {
    sdk::ObjectiveOutput out;
    out.loss = prediction_term(in, "smooth_l1");
    out.parts.emplace_back("pred", out.loss.detach());
    return out;
  }
};

}  // namespace

void add_ijepa(sdk::PluginBuilder& plugin) {
  plugin.add<Ijepa>("ijepa", 1,
                    "I-JEPA: smooth L1 (beta 1) between the predictions and the EMA target's layer-normed "
                    "tokens; momentum from [optimization] ema",
                    {});
}

}  // namespace jepa::objectives
