// LeJEPA's SIGReg (Balestriero & LeCun 2025) beside the JEPA prediction term: the per-image
// embeddings of the online encoder, through an optional projector, are pushed towards an isotropic
// Gaussian by the Epps-Pulley statistic on random unit directions drawn afresh every step.
//
// Conventions where implementations differ (docs/objectives.md has the table), each a parameter
// and so recorded with the run:
//  - integration "folded": `knots` points on [0, t_max] with doubled trapezoid weights (the
//    official library's EppsPulley, lightly, stable-pretraining; 17 on [0, 3] by default);
//    "symmetric": `knots` points on [-t_max, t_max] (the paper's Algorithm 1: 17 on [-5, 5]).
//    Both weight the squared error by w(t) = exp(-t^2 / 2), as every implementation does.
//  - scale_by_batch: the statistic times the global batch N (LeJEPA); false: without (eb_jepa).
//  - combination "convex": (1 - lambda) pred + lambda sigreg (the paper, lightly);
//    "additive": pred + lambda sigreg (stable-pretraining).
//  - directions: one set of `slices` directions per step, drawn from (run seed, step) on the CPU,
//    so identical on every rank and on every device, and replayed exactly on resume.
//  - the empirical characteristic function is averaged over all ranks (with gradient) before the
//    error is taken, so N ranks of batch B give the statistic of one process of batch N * B.
#include "objectives.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

namespace jepa::objectives {

namespace {

class Sigreg final : public sdk::Objective {
 public:
  explicit Sigreg(const sdk::Params& p)
      : target_(p.get_string("target")),
        on_(p.get_string("sigreg_on")),
        distance_(p.get_string("distance")),
        combination_(p.get_string("combination")),
        lambda_(p.get_float("lambda")),
        slices_(p.get_int("slices")),
        scale_by_batch_(p.get_bool("scale_by_batch")),
        widths_(projector_widths(p, "projector")) {
    if (on_ == "target" && target_ != "online") {
      throw sdk::ParamError("sigreg_on",
                            "\"target\" needs target = \"online\" (a detached or EMA target gives "
                            "SIGReg no gradient); use sigreg_on = \"context\"");
    }
    // The quadrature: knots and weights (trapezoid x w(t)), fixed buffers of the module.
    const int64_t knots = p.get_int("knots");
    const double t_max = p.get_float("t_max");
    const bool folded = p.get_string("integration") == "folded";
    std::vector<float> t(knots);
    std::vector<float> w(knots);
    const double lo = folded ? 0.0 : -t_max;
    const double dt = (t_max - lo) / static_cast<double>(knots - 1);
    for (int64_t i = 0; i < knots; ++i) {
      const double ti = lo + dt * static_cast<double>(i);
      const bool end = i == 0 || i == knots - 1;
      // Folded: the trapezoid rule on [-t_max, t_max] with the knots mirrored, so every knot but
      // t = 0 counts twice (the integrand is even), and t = t_max, an end, once.
      double q = end ? dt / 2 : dt;
      if (folded && i > 0) q *= 2;
      t[i] = static_cast<float>(ti);
      w[i] = static_cast<float>(q * std::exp(-ti * ti / 2));
    }
    t_ = register_buffer("t", torch::tensor(t));
    phi_ = register_buffer("phi", torch::exp(-t_.square() / 2));
    weights_ = register_buffer("weights", torch::tensor(w));
  }

  sdk::ObjectiveNeeds needs() const override { return {target_kind(target_)}; }

  void bind(const sdk::EncoderShape& encoder) override {
    projector_ = register_module("projector", std::make_shared<Projector>(encoder.embed_dim, widths_));
  }

  sdk::ObjectiveOutput forward(const sdk::ObjectiveInputs& in, const sdk::StepInfo& step,
                               sdk::Collective& collective) override {
    const auto pred = prediction_term(in, distance_);
    const auto embeddings =
        on_ == "target" ? pooled(in.target_tokens, in.batch_size) : pooled(in.context_tokens, in.batch_size);
    const auto z = projector_->forward(embeddings);
    const auto sigreg = statistic(z, step, collective).mean();
    sdk::ObjectiveOutput out;
    out.loss = combination_ == "convex" ? (1 - lambda_) * pred + lambda_ * sigreg : pred + lambda_ * sigreg;
    out.parts.emplace_back("pred", pred.detach());
    out.parts.emplace_back("sigreg", sigreg.detach());
    return out;
  }

 private:
  // One Epps-Pulley statistic per direction [slices], from this rank's samples z [B, K].
  torch::Tensor statistic(const torch::Tensor& z, const sdk::StepInfo& step, sdk::Collective& collective) {
    const int64_t dim = z.size(1);
    // A generator per step keyed by (seed, step): nothing to checkpoint, the same on every rank.
    auto gen = at::detail::createCPUGenerator(step.seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(step.step) +
                                              0x5167524547ULL);
    auto directions = at::randn({dim, slices_}, gen, torch::kFloat32);
    directions = (directions / directions.norm(2, 0, true)).to(z.device());
    const auto x = torch::matmul(z.to(torch::kFloat32), directions).unsqueeze(-1) * t_;  // [B, M, T]
    // The empirical characteristic function's real and imaginary parts, averaged over the global batch.
    auto ecf = collective.mean(torch::stack({x.cos().mean(0), x.sin().mean(0)}));  // [2, M, T]
    const auto err = (ecf[0] - phi_).square() + ecf[1].square();
    auto stat = torch::matmul(err, weights_);  // [M]
    if (scale_by_batch_) stat = stat * static_cast<double>(z.size(0) * collective.world_size());
    return stat;
  }

  std::string target_;
  std::string on_;
  std::string distance_;
  std::string combination_;
  double lambda_;
  int64_t slices_;
  bool scale_by_batch_;
  std::vector<double> widths_;
  torch::Tensor t_;
  torch::Tensor phi_;
  torch::Tensor weights_;
  std::shared_ptr<Projector> projector_;
};

}  // namespace

void add_sigreg(sdk::PluginBuilder& plugin) {
  using sdk::ParamSpec;
  plugin.add<Sigreg>(
      "sigreg", 1,
      "LeJEPA's SIGReg (Epps-Pulley on random directions) on the online encoder's per-image embeddings, "
      "plus the JEPA prediction term; no EMA by default",
      {ParamSpec::real("lambda", 0.05, "weight of SIGReg (convex: (1-lambda) pred + lambda sigreg)").range(0, 1e6),
       ParamSpec::string("combination", "convex",
                         "convex: (1-lambda) pred + lambda sigreg (LeJEPA); additive: pred + lambda sigreg",
                         {"convex", "additive"}),
       ParamSpec::integer("slices", 256, "random unit directions, redrawn every step").range(1, 65536),
       ParamSpec::integer("knots", 17, "integration points").range(2, 1025),
       ParamSpec::real("t_max", 3.0, "integration range: [0, t_max] folded, [-t_max, t_max] symmetric")
           .range(0.01, 100),
       ParamSpec::string("integration", "folded",
                         "folded: knots on [0, t_max], weights doubled by symmetry (official library); "
                         "symmetric: knots on [-t_max, t_max] (the paper's Algorithm 1, there 17 on [-5, 5])",
                         {"folded", "symmetric"}),
       ParamSpec::boolean("scale_by_batch", true, "multiply the statistic by the global batch N (LeJEPA)"),
       ParamSpec::string("target", "online",
                         "the prediction term's target: online (LeJEPA: no EMA, no stop-gradient), "
                         "online_detached (stop-gradient), ema (I-JEPA's EMA target, [optimization] ema)",
                         {"online", "online_detached", "ema"}),
       ParamSpec::string("sigreg_on", "target",
                         "whose per-image embeddings SIGReg shapes: target (the online encoder on the whole "
                         "image; needs target = online) or context (the context encoder's tokens)",
                         {"target", "context"}),
       ParamSpec::list("projector", {512, 64}, "MLP widths before SIGReg (BatchNorm + ReLU between); [] = none")
           .range(1, 65536),
       ParamSpec::string("distance", "smooth_l1", "the prediction term: smooth_l1 (I-JEPA), l1 (V-JEPA), mse",
                         {"smooth_l1", "l1", "mse"})});
}

}  // namespace jepa::objectives
