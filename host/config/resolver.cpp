// Reading an experiment: the TOML file (or the stored JSON form) and `--set` overrides, resolved
// against the key table (experiment_keys.hpp) and the plugins' schemas, with file:line:column in
// every error. The format is described at the top of experiment.cpp.
#include "config/experiment.hpp"

#include "config/experiment_keys.hpp"
#include "config/params.hpp"
#include "config/toml_file.hpp"
#include "config/toml_values.hpp"

#include "data/dataset.hpp"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <set>
#include <sstream>

namespace jepa::config {

namespace fs = std::filesystem;
using namespace detail;
using nlohmann::json;

namespace {

// Where an error is: "<file>:<line>:<col>: " in a file, "stored config: " for the JSON form.
class Where {
 public:
  static Where file(std::string name) { return Where(std::move(name), false); }
  static Where stored() { return Where("", true); }

  bool is_stored() const { return stored_; }
  std::string at(const toml::source_region& r) const {
    if (stored_) return "stored config: ";
    // Line 0 means no position (a section that is absent): point at the start of the file.
    return fmt::format("{}:{}:{}: ", file_, std::max<uint32_t>(r.begin.line, 1), std::max<uint32_t>(r.begin.column, 1));
  }

 private:
  Where(std::string file, bool stored) : file_(std::move(file)), stored_(stored) {}
  std::string file_;
  bool stored_;
};

// One key of a TOML table, with its position.
struct Entry {
  const toml::key* key;
  const toml::node* node;
};

// A table's entries in file order, so the first problem reported is the first in the file.
std::vector<Entry> ordered(const toml::table& table) {
  std::vector<Entry> out;
  for (auto&& [k, v] : table) out.push_back({&k, &v});
  std::stable_sort(out.begin(), out.end(), [](const Entry& a, const Entry& b) {
    const auto& pa = a.key->source().begin;
    const auto& pb = b.key->source().begin;
    return pa.line != pb.line ? pa.line < pb.line : pa.column < pb.column;
  });
  return out;
}

std::optional<Entry> find_entry(const toml::table* table, std::string_view name) {
  if (table == nullptr) return std::nullopt;
  for (auto&& [k, v] : *table) {
    if (k.str() == name) return Entry{&k, &v};
  }
  return std::nullopt;
}

// A plugin choice in the making: [masking], [encoder], [predictor] or one [[evaluation]].
struct Slot {
  std::string section;       // "encoder", "evaluation.0"
  std::string title;         // "[encoder]", "[evaluation.0]"
  std::string params_title;  // "[encoder.params]", "[evaluation.0]"
  std::string id_key;        // "plugin"
  Kind kind = Kind::masking;
  bool inline_params = false;           // a file's [[evaluation]]: parameters sit next to `evaluator`
  const toml::table* table = nullptr;   // the section, null when absent
  const toml::table* params = nullptr;  // where its parameters are, null when none
  // A file's [[evaluation]] may also hold a `params` table, for parameters named like a host key.
  const toml::table* sub_params = nullptr;
  toml::source_region region{};  // of the section, for "missing key" errors (line 0: absent)
  std::optional<std::string> id;
  std::string id_origin;   // error prefix of wherever the id was set
  bool defaulted = false;  // the section's default plugin, not named anywhere
  std::optional<Entry> version;
  std::map<std::string, ParamValue> param_overrides;
  const loader::ComponentInfo* component = nullptr;
  // [[evaluation]] only: every, at_end, stop_when as given by the file or --set.
  std::map<std::string, ParamValue> evaluation_values;
  std::set<std::string> evaluation_overridden;           // by --set: the file's value is not read
  std::map<std::string, std::string> evaluation_origin;  // error prefix of where each was given
};

// One --set.
struct Assignment {
  std::string text;
  std::vector<std::string> path;
  std::string value;
  std::string origin() const { return fmt::format("--set {}: ", text); }
};

Assignment parse_assignment(const std::string& text) {
  Assignment a;
  a.text = text;
  try {
    auto [k, v] = split_assignment(text);
    a.value = std::move(v);
    std::stringstream parts(k);
    for (std::string part; std::getline(parts, part, '.');) a.path.push_back(part);
    if (a.path.size() < 2 || std::any_of(a.path.begin(), a.path.end(), [](const auto& p) { return p.empty(); })) {
      throw ConfigError(fmt::format("'{}' is not a key like section.key (valid sections: {})", k, section_names()));
    }
  } catch (const ConfigError& e) {
    throw ConfigError(a.origin() + e.what());
  }
  return a;
}

class Resolver {
 public:
  Resolver(const toml::table& root, Where where, const loader::Registry& registry)
      : root_(root), where_(std::move(where)), registry_(registry) {}

  Experiment run(const std::vector<std::string>& override_texts, const std::string& default_name) {
    check_top_level();
    make_slots();
    std::vector<Assignment> overrides;
    for (const auto& text : override_texts) overrides.push_back(parse_assignment(text));
    // Ids first: which schema a parameter override is parsed with depends on the final plugin.
    for (const auto& a : overrides) apply_id_override(a);
    for (auto& slot : slots_) resolve_id(slot);
    for (const auto& a : overrides) apply_value_override(a);
    read_host_sections();
    for (auto& slot : slots_) read_params(slot);
    for (auto& slot : slots_) {
      if (slot.kind == Kind::evaluator) read_evaluation_keys(slot);
    }
    return build(default_name);
  }

 private:
  std::string at(const Entry& e) const { return where_.at(e.key->source()); }
  std::string at(const toml::source_region& r) const { return where_.at(r); }

  void check_top_level() {
    for (const Entry& e : ordered(root_)) {
      const std::string name(e.key->str());
      // The sweep reader owns [sweep]; its keys are no part of the experiment.
      if (name == kSweep && e.node->is_table() && !where_.is_stored()) continue;
      if (!is_section(name)) {
        if (e.node->is_table()) {
          throw ConfigError(fmt::format("{}unknown section [{}]; valid sections: {}", at(e), name, section_names()));
        }
        std::string hint;
        for (const auto& s : host_sections()) {
          if (s.find(name) != nullptr) hint = fmt::format(" ('{}' belongs in [{}])", name, s.name);
        }
        throw ConfigError(
            fmt::format("{}key '{}' is outside any section{}; valid sections: {}", at(e), name, hint, section_names()));
      }
      if (name == kEvaluation) {
        const auto* array = e.node->as_array();
        const bool tables = array != nullptr &&
                            std::all_of(array->begin(), array->end(), [](const toml::node& n) { return n.is_table(); });
        if (!tables) {
          throw ConfigError(
              fmt::format("{}[evaluation] must be a list of tables: write each as [[evaluation]]", at(e)));
        }
      } else if (!e.node->is_table()) {
        throw ConfigError(fmt::format("{}[{}] must be a table, not a value", at(e), name));
      }
    }
  }

  void make_slots() {
    for (const auto& s : kPluginSections) {
      Slot slot;
      slot.section = s.name;
      slot.title = fmt::format("[{}]", s.name);
      slot.params_title = fmt::format("[{}.{}]", s.name, kParamsKey);
      slot.id_key = s.id_key;
      slot.kind = s.kind;
      slot.table = root_[s.name].as_table();
      if (slot.table != nullptr) {
        slot.region = slot.table->source();
        if (auto p = find_entry(slot.table, kParamsKey)) {
          slot.params = p->node->as_table();
          if (slot.params == nullptr) {
            throw ConfigError(fmt::format("{}{} {}: expects a table of {} parameters ([{}.{}])", at(*p), slot.title,
                                          kParamsKey, loader::kind_name(s.kind), s.name, kParamsKey));
          }
        }
      }
      read_id(slot);
      if (!slot.id && s.default_id != nullptr) {
        slot.id = s.default_id;
        slot.id_origin = at(slot.region);
        slot.defaulted = true;
      }
      slots_.push_back(std::move(slot));
    }
    if (const auto* array = root_[kEvaluation].as_array()) {
      for (size_t i = 0; i < array->size(); ++i) {
        Slot slot;
        slot.section = fmt::format("{}.{}", kEvaluation, i);
        slot.title = fmt::format("[{}]", slot.section);
        slot.id_key = kEvaluatorKey;
        slot.kind = Kind::evaluator;
        slot.table = (*array)[i].as_table();
        slot.region = slot.table->source();
        // The stored form nests parameters under "params" like the other plugin sections.
        slot.inline_params = !where_.is_stored();
        if (slot.inline_params) {
          slot.params = slot.table;
          slot.params_title = slot.title;
          if (auto p = find_entry(slot.table, kParamsKey)) {
            slot.sub_params = p->node->as_table();
            if (slot.sub_params == nullptr) {
              throw ConfigError(
                  fmt::format("{}{} {}: expects a table of evaluator parameters", at(*p), slot.title, kParamsKey));
            }
          }
        } else {
          slot.params_title = fmt::format("[{}.{}]", slot.section, kParamsKey);
          if (auto p = find_entry(slot.table, kParamsKey)) {
            slot.params = p->node->as_table();
            if (slot.params == nullptr) {
              throw ConfigError(fmt::format("{}{} {}: expects a table", at(*p), slot.title, kParamsKey));
            }
          }
        }
        read_id(slot);
        slots_.push_back(std::move(slot));
      }
    }
  }

  void read_id(Slot& slot) {
    auto e = find_entry(slot.table, slot.id_key);
    if (!e) return;
    const auto* s = e->node->as_string();
    if (s == nullptr) {
      throw ConfigError(fmt::format("{}{} {}: expects a value of type string (a {} id)", at(*e), slot.title,
                                    slot.id_key, noun(slot.kind)));
    }
    slot.id = s->get();
    slot.id_origin = at(*e);
  }

  Slot* plugin_slot(const std::string& section) {
    for (auto& s : slots_) {
      if (s.section == section) return &s;
    }
    return nullptr;
  }

  // For "evaluation.<i>...": the slot, or an error naming the valid indices.
  Slot& evaluation_slot(const Assignment& a) {
    const size_t count = slots_.size() - std::size(kPluginSections);
    const std::string& index = a.path[1];
    const bool digits = !index.empty() &&
                        std::all_of(index.begin(), index.end(), [](unsigned char ch) { return std::isdigit(ch) != 0; });
    Slot* slot =
        digits && index.size() < 6 ? plugin_slot(fmt::format("{}.{}", kEvaluation, std::stoul(index))) : nullptr;
    if (slot == nullptr || a.path.size() < 3) {
      const std::string valid =
          count == 0 ? std::string("the experiment has no [[evaluation]]")
                     : fmt::format("the experiment has {} [[evaluation]] (indices 0..{})", count, count - 1);
      throw ConfigError(fmt::format("{}expects evaluation.<index>.<key>; {}", a.origin(), valid));
    }
    return *slot;
  }

  void apply_id_override(const Assignment& a) {
    Slot* slot = nullptr;
    if (const auto* s = find_plugin_section(a.path[0]); s != nullptr && a.path.size() == 2 && a.path[1] == s->id_key) {
      slot = plugin_slot(s->name);
    } else if (a.path[0] == kEvaluation && a.path.size() == 3 && a.path[2] == kEvaluatorKey) {
      slot = &evaluation_slot(a);
    }
    if (slot == nullptr) return;
    ParamSchema id_schema;
    id_schema.name = slot->id_key;
    id_schema.type = ParamType::string;
    slot->id = std::get<std::string>(parse_value(slot->title, id_schema, a.value));
    slot->id_origin = a.origin();
    slot->defaulted = false;
  }

  void resolve_id(Slot& slot) {
    if (!slot.id) {
      throw ConfigError(fmt::format("{}{} missing required key '{}'; available: {}", at(slot.region), slot.title,
                                    slot.id_key, registry_.available(slot.kind)));
    }
    slot.component = registry_.find(slot.kind, *slot.id);
    if (slot.component == nullptr) {
      throw ConfigError(fmt::format("{}{} {}: unknown {} '{}'; available: {}", slot.id_origin, slot.title, slot.id_key,
                                    noun(slot.kind), *slot.id, registry_.available(slot.kind)));
    }
    // A stored config without the section predates it and ran the default's behaviour.
    if (where_.is_stored() && !(slot.defaulted && slot.table == nullptr)) check_version(slot);
  }

  // A stored run names the behaviour version it ran with; another version would not reproduce it.
  void check_version(Slot& slot) {
    auto e = find_entry(slot.table, kVersionKey);
    if (!e) {
      throw ConfigError(fmt::format("{}{} missing required key '{}'", at(slot.region), slot.title, kVersionKey));
    }
    const auto* v = e->node->as_integer();
    if (v == nullptr) {
      throw ConfigError(fmt::format("{}{} {}: expects a value of type int", at(*e), slot.title, kVersionKey));
    }
    if (v->get() != static_cast<int64_t>(slot.component->version)) {
      throw ConfigError(fmt::format("{}{} {}: the run used version {} of {}, which now has version {}", at(*e),
                                    slot.title, kVersionKey, v->get(), slot.component->label(),
                                    slot.component->version));
    }
  }

  void apply_value_override(const Assignment& a) {
    const std::string& section = a.path[0];
    try {
      if (const HostSection* host = find_host_section(section)) {
        const std::string name = fmt::format("{}", fmt::join(a.path.begin() + 1, a.path.end(), "."));
        const HostKey* k = host->find(name);
        if (k == nullptr) {
          throw ConfigError(fmt::format("[{}] unknown key '{}'; valid keys: {}", section, name, host->key_names()));
        }
        const std::string title = fmt::format("[{}]", section);
        ParamValue v = parse_value(title, k->schema, a.value);
        if (std::string err = check_host_value(*k, v); !err.empty()) {
          throw ConfigError(fmt::format("{} {}: {}", title, name, err));
        }
        host_values_[section + "." + name] = std::move(v);
        host_origin_[section + "." + name] = a.origin();
        return;
      }
      if (const PluginSection* plugin = find_plugin_section(section)) {
        Slot& slot = *plugin_slot(plugin->name);
        if (a.path.size() == 2 && a.path[1] == slot.id_key) return;  // applied already
        if (a.path.size() == 3 && a.path[1] == kParamsKey) return set_param(slot, a.path[2], a.value);
        const std::string name = fmt::format("{}", fmt::join(a.path.begin() + 1, a.path.end(), "."));
        const std::string hint = slot.component->find_param(name) != nullptr
                                     ? fmt::format(" (did you mean {}.{}.{}?)", section, kParamsKey, name)
                                     : "";
        std::vector<std::string> valid{slot.id_key};
        for (const auto& p : slot.component->params) valid.push_back(fmt::format("{}.{}", kParamsKey, p.name));
        throw ConfigError(
            fmt::format("{} unknown key '{}'; valid keys: {}{}", slot.title, name, fmt::join(valid, ", "), hint));
      }
      if (section == kEvaluation) {
        Slot& slot = evaluation_slot(a);
        if (a.path.size() == 3 && a.path[2] == kEvaluatorKey) return;  // applied already
        if (a.path.size() == 3) {
          if (const ParamSchema* k = find_evaluation_key(a.path[2])) {
            ParamValue v = parse_value(slot.title, *k, a.value);
            if (std::string err = check_evaluation_value(*k, v); !err.empty()) {
              throw ConfigError(fmt::format("{} {}: {}", slot.title, k->name, err));
            }
            slot.evaluation_values[k->name] = std::move(v);
            slot.evaluation_overridden.insert(k->name);
            slot.evaluation_origin[k->name] = a.origin();
            return;
          }
          return set_param(slot, a.path[2], a.value);
        }
        if (a.path.size() == 4 && a.path[2] == kParamsKey) return set_param(slot, a.path[3], a.value);
        throw ConfigError(fmt::format("expects evaluation.<index>.<key> or evaluation.<index>.params.<key>"));
      }
      throw ConfigError(fmt::format("unknown section [{}]; valid sections: {}", section, section_names()));
    } catch (const ConfigError& e) {
      const std::string what = e.what();
      throw ConfigError(what.rfind("--set ", 0) == 0 ? what : a.origin() + what);
    }
  }

  void set_param(Slot& slot, const std::string& name, const std::string& text) {
    const ParamSchema* schema = slot.component->find_param(name);
    if (schema == nullptr) {
      throw ConfigError(fmt::format("{} unknown key '{}' for {}; valid keys: {}", slot.params_title, name,
                                    slot.component->label(), param_names(*slot.component)));
    }
    slot.param_overrides[name] = parse_value(*slot.component, *schema, text);
  }

  void read_host_sections() {
    for (const HostSection& section : host_sections()) {
      const toml::table* table = root_[section.name].as_table();
      if (table == nullptr) continue;
      for (const Entry& e : ordered(*table)) {
        const std::string name(e.key->str());
        const HostKey* k = section.find(name);
        if (k == nullptr) {
          throw ConfigError(
              fmt::format("{}[{}] unknown key '{}'; valid keys: {}", at(e), section.name, name, section.key_names()));
        }
        const std::string path = section.name + "." + name;
        if (host_values_.count(path) != 0) continue;  // --set replaces it unseen
        const auto value = from_toml(*e.node, k->schema.type);
        const std::string err =
            value ? check_host_value(*k, *value) : fmt::format("expects a value of type {}", type_name(k->schema.type));
        if (!err.empty()) throw ConfigError(fmt::format("{}[{}] {}: {}", at(e), section.name, name, err));
        host_values_[path] = *value;
        host_origin_[path] = at(e);
      }
    }
  }

  void read_params(Slot& slot) {
    const loader::ComponentInfo& c = *slot.component;
    // Keys of the section itself (the params live in a sub-table, except inline [[evaluation]]).
    if (slot.table != nullptr && !slot.inline_params) {
      for (const Entry& e : ordered(*slot.table)) {
        const std::string name(e.key->str());
        if (name == slot.id_key || name == kParamsKey || (where_.is_stored() && name == kVersionKey)) continue;
        const bool evaluation = slot.kind == Kind::evaluator;
        if (evaluation && find_evaluation_key(name) != nullptr) continue;  // read_evaluation_keys
        const std::string hint =
            c.find_param(name) != nullptr ? fmt::format(" (parameters go in {})", slot.params_title) : "";
        throw ConfigError(fmt::format("{}{} unknown key '{}'; valid keys: {}, {}{}{}", at(e), slot.title, name,
                                      slot.id_key, evaluation ? evaluation_key_names() + ", " : "", kParamsKey, hint));
      }
    }
    loader::ParamSet set = loader::ParamSet::defaults(c);
    auto assign_param = [&](const std::string& name, ParamValue v) {
      for (auto& [n, value] : set.values) {
        if (n == name) value = std::move(v);
      }
    };
    std::map<std::string, bool> given;
    const auto read_table = [&](const toml::table& table, const std::string& title, bool beside_id) {
      for (const Entry& e : ordered(table)) {
        const std::string name(e.key->str());
        if (beside_id && (name == slot.id_key || name == kParamsKey || find_evaluation_key(name) != nullptr)) continue;
        const ParamSchema* schema = c.find_param(name);
        if (schema == nullptr) {
          throw ConfigError(
              fmt::format("{}{} unknown key '{}' for {}; valid keys: {}{}", at(e), title, name, c.label(),
                          beside_id ? fmt::format("{}, {}, {}, ", slot.id_key, evaluation_key_names(), kParamsKey) : "",
                          param_names(c)));
        }
        if (given[name]) throw ConfigError(fmt::format("{}{} {}: given twice", at(e), title, name));
        given[name] = true;
        if (slot.param_overrides.count(name) != 0) continue;
        const auto value = from_toml(*e.node, schema->type);
        const std::string err = value ? loader::check_value(*schema, *value)
                                      : fmt::format("expects a value of type {}", type_name(schema->type));
        if (!err.empty()) throw ConfigError(fmt::format("{}{} {}: {}", at(e), title, name, err));
        assign_param(name, *value);
      }
    };
    if (slot.params != nullptr) read_table(*slot.params, slot.params_title, slot.inline_params);
    if (slot.sub_params != nullptr) {
      read_table(*slot.sub_params, fmt::format("[{}.{}]", slot.section, kParamsKey), false);
    }
    for (const auto& [name, value] : slot.param_overrides) assign_param(name, value);
    chosen_.push_back({*slot.id, std::move(set), slot.component});
  }

  // Absent keys keep their defaults, so a run stored before these keys existed still loads.
  void read_evaluation_keys(Slot& slot) {
    for (const Entry& e : ordered(*slot.table)) {
      const std::string name(e.key->str());
      const ParamSchema* k = find_evaluation_key(name);
      if (k == nullptr || slot.evaluation_overridden.count(name) != 0) continue;
      const auto value = from_toml(*e.node, k->type);
      const std::string err =
          value ? check_evaluation_value(*k, *value) : fmt::format("expects a value of type {}", type_name(k->type));
      if (!err.empty()) throw ConfigError(fmt::format("{}{} {}: {}", at(e), slot.title, name, err));
      slot.evaluation_values[name] = *value;
      slot.evaluation_origin[name] = at(e);
    }
  }

  EvaluationChoice evaluation_choice(const Slot& slot, const ComponentChoice& chosen) const {
    EvaluationChoice ev;
    static_cast<ComponentChoice&>(ev) = chosen;
    const auto value = [&](const char* name) {
      const auto it = slot.evaluation_values.find(name);
      return it != slot.evaluation_values.end() ? it->second : find_evaluation_key(name)->default_value;
    };
    ev.every = std::get<int64_t>(value("every"));
    ev.at_end = std::get<bool>(value("at_end"));
    ev.stop_when = std::get<std::string>(value("stop_when"));
    ev.stop_rule = parse_stop_rule(ev.stop_when);
    ev.baselines = std::get<bool>(value("baselines"));
    // Rules are checked after evaluations during training only: without those it would be inert.
    if (ev.stop_rule && ev.every == 0) {
      const auto it = slot.evaluation_origin.find("stop_when");
      throw ConfigError(
          fmt::format("{}{} stop_when: needs every > 0 (the rule is checked after each evaluation during "
                      "training, and every = 0 runs none)",
                      it != slot.evaluation_origin.end() ? it->second : at(slot.region), slot.title));
    }
    return ev;
  }

  Experiment build(const std::string& default_name) {
    Experiment e;
    for (const HostSection& section : host_sections()) {
      for (const HostKey& k : section.keys) {
        const auto it = host_values_.find(section.name + "." + k.schema.name);
        k.store(e, it != host_values_.end() ? it->second : k.schema.default_value);
      }
    }
    for (size_t i = 0; i < std::size(kPluginSections); ++i) e.*kPluginSections[i].member = chosen_[i];
    for (size_t i = std::size(kPluginSections); i < chosen_.size(); ++i) {
      e.evaluators.push_back(evaluation_choice(slots_[i], chosen_[i]));
    }
    finish_data(e);
    if (e.name.empty()) e.name = default_name;
    return e;
  }

  // Rules that tie [data] keys together.
  void finish_data(Experiment& e) {
    const auto origin = [&](const std::string& key) {
      const auto it = host_origin_.find("data." + key);
      if (it != host_origin_.end()) return it->second;
      const toml::table* table = root_["data"].as_table();
      return at(table != nullptr ? table->source() : toml::source_region{});
    };
    const bool folder = e.dataset == "image_folder";
    if (e.path.empty()) {
      if (folder) {
        throw ConfigError(
            fmt::format("{}[data] path: required when dataset = \"image_folder\" (the folder holding train/ and val/)",
                        origin("path")));
      }
      e.path = data::fashion_mnist_default_path();
    }
    // Fashion-MNIST's statistics make no sense for RGB photos: switch unless the user chose.
    if (folder && host_values_.count("data.mean") == 0) e.mean = kImagenetMean;
    if (folder && host_values_.count("data.std") == 0) e.std = kImagenetStd;
    const size_t channels = folder ? 3 : 1;
    for (const auto& [name, values] : {std::pair{"mean", &e.mean}, std::pair{"std", &e.std}}) {
      if (values->size() != 1 && values->size() != channels) {
        throw ConfigError(fmt::format("{}[data] {}: has {} values; {} images have {} channel{}, so give 1 value{}",
                                      origin(name), name, values->size(), e.dataset, channels, channels == 1 ? "" : "s",
                                      channels == 1 ? "" : fmt::format(" (shared) or {}", channels)));
      }
    }
  }

  const toml::table& root_;
  Where where_;
  const loader::Registry& registry_;
  std::vector<Slot> slots_;                         // masking, encoder, predictor, then each [[evaluation]]
  std::vector<ComponentChoice> chosen_;             // in the same order
  std::map<std::string, ParamValue> host_values_;   // "data.mean" -> value given in the file or by --set
  std::map<std::string, std::string> host_origin_;  // "data.mean" -> error prefix of where it was given
};

}  // namespace

Experiment load_experiment(const fs::path& file, const std::vector<std::string>& overrides,
                           const loader::Registry& registry) {
  const toml::table root = read_toml_file<ConfigError>(file, "experiment");
  Experiment e = Resolver(root, Where::file(file.string()), registry).run(overrides, file.stem().string());
  e.source = file;
  e.resolved = resolved_json(e);
  return e;
}

Experiment experiment_from_json(const json& resolved, const loader::Registry& registry) {
  if (!resolved.is_object()) throw ConfigError("stored config: expects a JSON object of sections");
  const toml::table root = json_to_toml(resolved, "");
  Experiment e = Resolver(root, Where::stored(), registry).run({}, "");
  e.resolved = resolved_json(e);
  return e;
}

}  // namespace jepa::config
