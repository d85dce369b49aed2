// `jepa plugins`: every plugin found, its components and parameters, and what was rejected.
#include "cli/commands.hpp"
#include "loader/registry.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <iostream>

namespace jepa::cli {

namespace {

using nlohmann::json;

json value_json(const loader::ParamValue& v) {
  return std::visit([](const auto& x) { return json(x); }, v);
}

json fingerprint_json(const loader::Fingerprint& f) {
  return {{"torch_version", f.torch_version},
          {"device", f.device},
          {"cxx11_abi", f.cxx11_abi},
          {"compiler", f.compiler_id},
          {"compiler_major", f.compiler_major},
          {"cxx_standard", f.cxx_standard},
          {"sdk_major", f.sdk_major}};
}

json component_json(const loader::ComponentInfo& c) {
  json params = json::array();
  for (const auto& p : c.params) {
    json j{{"name", p.name},
           {"type", loader::type_name(p.type)},
           {"default", value_json(p.default_value)},
           {"doc", p.doc}};
    if (p.min) j["min"] = *p.min;
    if (p.max) j["max"] = *p.max;
    if (!p.choices.empty()) j["choices"] = p.choices;
    if (p.list_length != 0) j["list_length"] = p.list_length;
    params.push_back(std::move(j));
  }
  return {{"kind", loader::kind_name(c.kind)},
          {"id", c.id},
          {"version", c.version},
          {"doc", c.doc},
          {"interface", c.cxx_interface ? "c++" : "c"},
          {"params", std::move(params)}};
}

std::string range_text(const loader::ParamSchema& p) {
  if (!p.choices.empty()) return fmt::format("{{{}}}", fmt::join(p.choices, ", "));
  if (p.min || p.max) {
    return fmt::format("[{}, {}]", p.min ? fmt::format("{}", *p.min) : "-inf",
                       p.max ? fmt::format("{}", *p.max) : "inf");
  }
  return "";
}

int run_plugins(const GlobalOptions& global, bool as_json) {
  const loader::Registry reg = discover_plugins(global);
  if (as_json) {
    json out;
    out["searched"] = json::array();
    for (const auto& d : reg.searched()) out["searched"].push_back(d.string());
    out["host"] = {{"abi", fmt::format("{}.{}", JEPA_ABI_MAJOR, JEPA_ABI_MINOR)},
                   {"fingerprint", fingerprint_json(loader::host_fingerprint())}};
    out["plugins"] = json::array();
    for (const auto& p : reg.plugins()) {
      json comps = json::array();
      for (const auto& c : p->components) comps.push_back(component_json(c));
      out["plugins"].push_back({{"path", p->path.string()},
                                {"name", p->name},
                                {"version", p->version},
                                {"revision", p->revision},
                                {"sha256", p->sha256},
                                {"abi", fmt::format("{}.{}", p->abi_major, p->abi_minor)},
                                {"fingerprint", fingerprint_json(p->fingerprint)},
                                {"components", std::move(comps)}});
    }
    out["rejected"] = json::array();
    for (const auto& r : reg.rejected()) out["rejected"].push_back({{"path", r.path.string()}, {"reason", r.reason}});
    std::cout << out.dump(2) << "\n";
    return 0;
  }

  std::vector<std::string> searched;
  for (const auto& d : reg.searched()) searched.push_back(d.string());
  fmt::print("Searched: {}\n",
             searched.empty() ? std::string("(no plugin folder found)") : fmt::format("{}", fmt::join(searched, ", ")));
  fmt::print("Host: SDK ABI {}.{}, {}\n\n", JEPA_ABI_MAJOR, JEPA_ABI_MINOR, loader::host_fingerprint().describe());
  fmt::print("Plugins ({}):\n", reg.plugins().size());
  for (const auto& p : reg.plugins()) {
    fmt::print("\n  {} {} (revision {})\n", p->name, p->version, p->revision);
    fmt::print("    path    {}\n    sha256  {}\n    build   ABI {}.{}, {}\n", p->path.string(), p->sha256, p->abi_major,
               p->abi_minor, p->fingerprint.describe());
    for (const auto& c : p->components) {
      fmt::print("    {} '{}' v{} ({} interface): {}\n", loader::kind_name(c.kind), c.id, c.version,
                 c.cxx_interface ? "C++" : "C", c.doc);
      for (const auto& prm : c.params) {
        fmt::print("      {:<16} {:<6} {:<14} {:<22} {}\n", prm.name, loader::type_name(prm.type),
                   loader::format_value(prm.default_value), range_text(prm), prm.doc);
      }
    }
  }
  if (!reg.rejected().empty()) {
    fmt::print("\nRejected ({}):\n", reg.rejected().size());
    for (const auto& r : reg.rejected()) fmt::print("  {}\n    {}\n", r.path.string(), r.reason);
  }
  return 0;
}

}  // namespace

Command add_plugins_command(CLI::App& parent, const GlobalOptions& global) {
  auto* sub = parent.add_subcommand("plugins", "List plugins, their components and parameters, and rejected libraries");
  auto as_json = std::make_shared<bool>(false);
  sub->add_flag("--json", *as_json, "Print the same as JSON");
  sub->footer(
      "Each plugin is shown with its path, version, the sha256 of its file and the build fingerprint\n"
      "it was compiled with; each component with its kind, id, behaviour version and parameters\n"
      "(name, type, default, allowed values, doc). Libraries that fail a check are listed as\n"
      "rejected with the reason; they are never loaded into a run.");
  return {sub, [&global, as_json] { return run_plugins(global, *as_json); }};
}

}  // namespace jepa::cli
