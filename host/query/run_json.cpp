#include "query/run_json.hpp"

#include "query/compare.hpp"

#include <algorithm>
#include <cmath>
#include <set>

namespace jepa::query {

using nlohmann::json;

json number_json(double v) {
  return std::isnan(v) ? json() : json(v);
}

namespace {

json text_or_null(const std::string& s) {
  return s.empty() ? json() : json(s);
}

bool headline_metric(const std::string& k) {
  if (k == "train/loss") return true;
  if (k.rfind("train/", 0) == 0) return false;
  for (const char* skip : {"_images", "feature_dim", "/k", "draws", "/images"}) {
    const std::string s(skip);
    if (k.size() >= s.size() && k.compare(k.size() - s.size(), s.size(), s) == 0) return false;
  }
  return true;
}

}  // namespace

json run_json(const RunRow& r) {
  json j{{"id", r.id},
         {"name", r.name},
         {"status", r.status},
         {"reason", text_or_null(r.reason)},
         {"started_at", r.started_at},
         {"ended_at", text_or_null(r.ended_at)},
         {"steps", r.steps},
         {"seed", r.seed},
         {"sweep", text_or_null(r.sweep)},
         {"params", r.params}};
  if (!r.job_id.empty()) {
    j["slurm_job"] = r.job_id;
    j["slurm_state"] = r.job_state;
  }
  json metrics = json::object();
  for (const auto& [k, v] : r.metrics) metrics[k] = number_json(v);
  j["metrics"] = metrics;
  return j;
}

json run_details_json(const store::Store& store, const RunRow& r) {
  const auto record = store.find_run(r.id);
  if (!record) throw store::StoreError("no run " + std::to_string(r.id));
  json j = run_json(r);
  j["config"] = json::parse(record->config_json, nullptr, false);
  j["config_path"] = record->config_path;
  j["resumed_from"] = record->resumed_from ? json(*record->resumed_from) : json();
  j["environment"] = store.environment(r.id);
  j["plugins"] = json::array();
  for (const auto& p : store.plugins(r.id)) {
    j["plugins"].push_back({{"role", p.role},
                            {"component", p.component_id},
                            {"component_version", p.component_version},
                            {"plugin", p.plugin_name},
                            {"plugin_version", p.plugin_version},
                            {"path", p.path},
                            {"sha256", p.sha256},
                            {"fingerprint", p.fingerprint}});
  }
  j["metric_summary"] = json::array();
  store.query(
      "SELECT key, last_step, last_value, min_value, max_value, count FROM metric_summary WHERE run_id = ? "
      "ORDER BY key",
      {r.id}, [&](const store::Row& q) {
        j["metric_summary"].push_back({{"key", q.text(0)},
                                       {"last_step", q.int64(1)},
                                       {"last", number_json(q.real(2))},
                                       {"min", number_json(q.real(3))},
                                       {"max", number_json(q.real(4))},
                                       {"count", q.int64(5)}});
      });
  j["evaluations"] = json::array();
  for (const auto& e : store.evaluations(r.id)) {
    j["evaluations"].push_back({{"evaluator", e.evaluator},
                                {"metric", e.metric},
                                {"value", number_json(e.value)},
                                {"step", e.step},
                                {"params", json::parse(e.params_json, nullptr, false)}});
  }
  j["artifacts"] = json::array();
  for (const auto& a : store.artifacts(r.id)) {
    j["artifacts"].push_back({{"kind", a.kind},
                              {"path", a.path},
                              {"step", a.step},
                              {"bytes", a.bytes},
                              {"sha256", a.sha256},
                              {"created_at", a.created_at}});
  }
  return j;
}

std::vector<std::string> differing_params(const std::vector<RunRow>& rows) {
  std::set<std::string> keys;
  for (const auto& r : rows) {
    for (const auto& [k, v] : r.params) keys.insert(k);
  }
  std::vector<std::string> out;
  for (const auto& k : keys) {
    if (is_seed_like(k)) continue;
    auto value = [&](const RunRow& r) {
      auto it = r.params.find(k);
      return it == r.params.end() ? std::string("\x01") : it->second;
    };
    for (const auto& r : rows) {
      if (value(r) != value(rows.front())) {
        out.push_back(k);
        break;
      }
    }
  }
  return out;
}

std::vector<std::string> metric_columns(const std::vector<RunRow>& rows) {
  std::set<std::string> keys;
  for (const auto& r : rows) {
    for (const auto& [k, v] : r.metrics) {
      if (headline_metric(k)) keys.insert(k);
    }
  }
  std::vector<std::string> out(keys.begin(), keys.end());
  std::stable_partition(out.begin(), out.end(), [](const std::string& k) { return k != "train/loss"; });
  if (out.size() > 8) out.resize(8);
  return out;
}

std::string short_param(const std::string& key) {
  std::string s = key;
  const auto p = s.find(".params.");
  if (p != std::string::npos) s.erase(p, 7);
  return s;
}

}  // namespace jepa::query
