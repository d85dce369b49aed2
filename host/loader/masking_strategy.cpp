#include "loader/masking_strategy.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace jepa::loader {

ParameterRejected create_failed(const std::string& label, const std::string& message) {
  std::string reason = sdk::without_backtrace(message);
  std::string key;
  const std::string tag = sdk::kParamErrorTag;
  if (reason.rfind(tag, 0) == 0) {
    const size_t close = reason.find("] ", tag.size());
    if (close != std::string::npos) {
      key = reason.substr(tag.size(), close - tag.size());
      reason = reason.substr(close + 2);
    }
  }
  return ParameterRejected(key.empty() ? fmt::format("{} rejected its parameters: {}", label, reason)
                                       : fmt::format("{} rejected its parameter '{}': {}", label, key, reason),
                           key);
}

MaskingStrategy::MaskingStrategy(const ComponentInfo& component, const ParamSet& params)
    : library_(component.plugin->library),
      instance_(nullptr, Destroy{component.table->destroy}),
      api_(static_cast<const jepa_masking_api*>(component.table->api)),
      label_(component.label()) {
  if (component.kind != Kind::masking) throw PluginError(component.label() + " is not a masking strategy");
  CParamView view(params);
  jepa_error error{};
  void* raw = component.table->create(view.get(), &error);
  if (raw == nullptr) throw create_failed(component.label(), error.message);
  instance_.reset(raw);
}

sdk::MaskSample MaskingStrategy::sample(const sdk::MaskRequest& request) {
  jepa_mask_request req{};
  req.struct_size = sizeof(req);
  req.grid_height = request.grid_height;
  req.grid_width = request.grid_width;
  req.batch_size = request.batch_size;
  req.seed = request.seed;
  req.step = request.step;
  jepa_mask_result res{};
  jepa_error error{};
  std::lock_guard<std::mutex> lock(*sampling_);  // held until the plugin's result is copied out
  if (api_->sample(instance_.get(), &req, &res, &error) != 0) {
    throw PluginError(fmt::format("{}: sample failed: {}", label_, error.message));
  }
  const int64_t cells = static_cast<int64_t>(request.grid_height) * request.grid_width;
  auto bad = [&](const char* why) {
    return PluginError(fmt::format("{}: sample returned an invalid result: {}", label_, why));
  };
  if (res.batch_size != request.batch_size) throw bad("batch size differs from the request");
  if (res.context_blocks < 1 || res.target_blocks < 1) throw bad("no context or no target block");
  if (res.context_length < 0 || res.target_length < 0) throw bad("negative length");
  sdk::MaskSample s;
  s.batch_size = res.batch_size;
  s.context_blocks = res.context_blocks;
  s.context_length = res.context_length;
  s.target_blocks = res.target_blocks;
  s.target_length = res.target_length;
  const size_t n_ctx = static_cast<size_t>(res.context_blocks) * res.batch_size * res.context_length;
  const size_t n_tgt = static_cast<size_t>(res.target_blocks) * res.batch_size * res.target_length;
  if ((n_ctx > 0 && res.context == nullptr) || (n_tgt > 0 && res.target == nullptr)) throw bad("null index array");
  s.context.assign(res.context, res.context + n_ctx);
  s.target.assign(res.target, res.target + n_tgt);
  auto in_range = [cells](int64_t i) { return i >= 0 && i < cells; };
  if (!std::all_of(s.context.begin(), s.context.end(), in_range) ||
      !std::all_of(s.target.begin(), s.target.end(), in_range)) {
    throw bad("patch index outside the grid");
  }
  return s;
}

}  // namespace jepa::loader
