#include "train/evaluation.hpp"

#include "loader/cxx_component.hpp"
#include "train/autocast.hpp"

#include <ATen/Context.h>
#include <fmt/format.h>

#include <chrono>
#include <mutex>

namespace jepa::train {

int dataset_channels(const config::Experiment& e) {
  return e.dataset == "fashion_mnist" ? 1 : 3;
}

std::shared_ptr<const data::ImageSource> open_split(const config::Experiment& e, data::Split split) {
  if (e.dataset == "fashion_mnist") {
    return data::open_fashion_mnist(e.path.empty() ? data::fashion_mnist_default_path() : e.path, split);
  }
  return data::open_image_folder(e.path, split);
}

data::Transform make_transform(const config::Experiment& e, bool train) {
  data::Transform t;
  t.image_size = static_cast<int>(e.image_size);
  t.random_crop = train && e.random_crop;
  t.crop_scale = e.crop_scale;
  t.horizontal_flip = e.horizontal_flip;
  t.eval_center_crop = e.eval_transform == "center_crop" || (e.eval_transform == "auto" && e.dataset == "image_folder");
  t.mean = e.mean;
  t.std = e.std;
  return t;
}

torch::Tensor images_tensor(data::Batch& b) {
  // The tensor shares the batch's pooled block and keeps it alive: no copy.
  return torch::from_blob(
      b.images.data(), {b.batch_size, b.channels, b.height, b.width}, [block = b.images.block()](void*) {},
      torch::kFloat32);
}

namespace {

// The frozen encoder's last layers in the run's precision, returned as fp32.
std::function<std::vector<torch::Tensor>(const torch::Tensor&, int64_t)> frozen_encode(
    std::shared_ptr<sdk::Encoder> encoder, torch::Device device, Precision precision) {
  const bool bf16 = precision == Precision::bf16;
  return [encoder = std::move(encoder), device, bf16](const torch::Tensor& images, int64_t layers) {
    torch::NoGradGuard no_grad;
    AutocastScope autocast(device, bf16);
    auto out = encoder->forward_last_layers(images.to(device), layers);
    for (auto& t : out) t = t.to(torch::kFloat32);
    return out;
  };
}

}  // namespace

sdk::EvalInput make_eval_input(const config::Experiment& e, std::shared_ptr<sdk::Encoder> encoder, torch::Device device,
                               Precision precision, int64_t step, const std::shared_ptr<const data::ImageSource>& train,
                               const std::shared_ptr<const data::ImageSource>& test) {
  sdk::EvalInput in;
  const auto transform = make_transform(e, /*train=*/false);
  auto source_of = [train, test](sdk::Split s) { return s == sdk::Split::train ? train : test; };
  in.size = [source_of](sdk::Split s) { return source_of(s)->size(); };
  in.batch = [source_of, transform](sdk::Split s, int64_t begin, int64_t end) {
    data::Batch b = data::load_range(*source_of(s), transform, begin, end);
    auto images = images_tensor(b);
    auto labels = torch::tensor(b.labels, torch::kLong);
    return std::make_pair(images, labels);
  };
  in.encode = frozen_encode(std::move(encoder), device, precision);
  in.step = step;
  in.seed = e.seed;
  in.device = device;
  return in;
}

std::vector<std::pair<std::string, double>> evaluate(const config::ComponentChoice& choice,
                                                     const sdk::EvalInput& input) {
  auto evaluator = loader::create_component<sdk::Evaluator>(*choice.component, choice.params);
  std::vector<std::pair<std::string, double>> out;
  for (const auto& m : evaluator->evaluate(input)) out.emplace_back(choice.id + "/" + m.name, m.value);
  return out;
}

namespace {

// Records `results` ("<id>/<name>" -> value) of `choice` at `step`: evaluations table and metrics.
void record(const config::ComponentChoice& choice, const std::vector<std::pair<std::string, double>>& results,
            store::Recorder& store, int64_t run_id, int64_t step) {
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, v] : choice.params.values) {
    params[k] = std::visit([](const auto& x) { return nlohmann::json(x); }, v);
  }
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::vector<store::MetricPoint> points;
  for (const auto& [key, value] : results) {
    store.add_evaluation(run_id, {choice.id, key.substr(choice.id.size() + 1), value, step, params.dump()});
    points.push_back({key, step, value, now});
  }
  store.log_metrics(run_id, points);
}

std::vector<std::pair<std::string, double>> suffixed(std::vector<std::pair<std::string, double>> results,
                                                     const std::string& suffix) {
  for (auto& r : results) r.first += suffix;
  return results;
}

}  // namespace

std::vector<std::pair<std::string, double>> evaluate_and_record(const config::ComponentChoice& choice,
                                                                const sdk::EvalInput& input, store::Recorder& store,
                                                                int64_t run_id, int64_t step) {
  const auto results = evaluate(choice, input);
  record(choice, results, store, run_id, step);
  return results;
}

std::vector<std::pair<std::string, double>> evaluate_baselines(const config::Experiment& e,
                                                               const config::ComponentChoice& choice,
                                                               std::shared_ptr<sdk::Encoder> initial,
                                                               torch::Device device, Precision precision, int64_t step,
                                                               const sdk::EvalInput& trained, store::Recorder& store,
                                                               int64_t run_id) {
  sdk::EvalInput pixels = trained;
  pixels.encode = [](const torch::Tensor& images, int64_t) {
    return std::vector<torch::Tensor>{images.flatten(1).unsqueeze(1).to(torch::kFloat32)};
  };
  sdk::EvalInput init = trained;
  init.encode = frozen_encode(std::move(initial), device, precision);
  auto out = suffixed(evaluate(choice, pixels), "@raw_pixels");
  const auto random_init = suffixed(evaluate(choice, init), "@random_init");
  out.insert(out.end(), random_init.begin(), random_init.end());
  record(choice, out, store, run_id, step);
  return out;
}

TrainingPause::TrainingPause(torch::nn::Module& encoder, torch::Device device)
    : encoder_(encoder), was_training_(encoder.is_training()) {
  auto save = [this](at::Generator gen) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    generators_.emplace_back(gen, gen.get_state());
  };
  save(at::globalContext().defaultGenerator(torch::kCPU));
  if (!device.is_cpu()) save(at::globalContext().defaultGenerator(device));
  encoder_.eval();
}

TrainingPause::~TrainingPause() {
  encoder_.train(was_training_);
  for (auto& [gen, state] : generators_) {
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
  }
}

std::optional<std::string> check_stop_rule(const config::EvaluationChoice& evaluation,
                                           const std::vector<std::pair<std::string, double>>& results, int64_t step) {
  if (!evaluation.stop_rule) return std::nullopt;
  const config::StopRule& rule = *evaluation.stop_rule;
  const std::string key = evaluation.id + "/" + rule.metric;
  std::vector<std::string> names;
  for (const auto& [name, value] : results) {
    if (name == key) {
      if (!rule.holds(value)) return std::nullopt;
      return fmt::format("stop rule '{}/{}' met at step {} (value {:.4g})", evaluation.id, rule.text(), step, value);
    }
    names.push_back(name.substr(evaluation.id.size() + 1));
  }
  throw std::runtime_error(fmt::format(
      "stop rule '{}/{}': {} reports no metric '{}'; its metrics: {}", evaluation.id, rule.text(), evaluation.id,
      rule.metric, names.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(names, ", "))));
}

}  // namespace jepa::train
