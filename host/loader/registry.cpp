#include "loader/registry.hpp"

#include "loader/elf_section.hpp"
#include "loader/param_set.hpp"
#include "loader/sha256.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/dll/runtime_symbol_info.hpp>
#include <boost/dll/shared_library.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

namespace jepa::loader {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- component_info.hpp helpers

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::masking:
      return "masking";
    case Kind::encoder:
      return "encoder";
    case Kind::predictor:
      return "predictor";
    case Kind::evaluator:
      return "evaluator";
    case Kind::objective:
      return "objective";
  }
  return "unknown";
}

std::optional<Kind> kind_from_int(int32_t value) {
  switch (value) {
    case JEPA_KIND_MASKING:
      return Kind::masking;
    case JEPA_KIND_ENCODER:
      return Kind::encoder;
    case JEPA_KIND_PREDICTOR:
      return Kind::predictor;
    case JEPA_KIND_EVALUATOR:
      return Kind::evaluator;
    case JEPA_KIND_OBJECTIVE:
      return Kind::objective;
    default:
      return std::nullopt;
  }
}

const char* type_name(ParamType type) {
  switch (type) {
    case ParamType::integer:
      return "int";
    case ParamType::real:
      return "float";
    case ParamType::boolean:
      return "bool";
    case ParamType::string:
      return "string";
    case ParamType::list:
      return "list";
  }
  return "unknown";
}

std::string format_value(const ParamValue& value) {
  struct Visitor {
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(double v) const { return fmt::format("{}", v); }
    std::string operator()(bool v) const { return v ? "true" : "false"; }
    std::string operator()(const std::string& v) const { return v; }
    std::string operator()(const std::vector<double>& v) const { return fmt::format("[{}]", fmt::join(v, ", ")); }
  };
  return std::visit(Visitor{}, value);
}

Fingerprint Fingerprint::from_c(const jepa_fingerprint& fp) {
  auto str = [](const char* s) { return std::string(s != nullptr ? s : "?"); };
  Fingerprint f;
  f.torch_version = str(fp.torch_version);
  f.device = str(fp.device);
  f.cxx11_abi = fp.cxx11_abi;
  f.compiler_id = str(fp.compiler_id);
  f.compiler_major = fp.compiler_major;
  f.cxx_standard = fp.cxx_standard;
  f.sdk_major = fp.sdk_major;
  return f;
}

std::optional<Fingerprint> Fingerprint::from_text(std::string_view text) {
  text = text.substr(0, text.find('\0'));
  std::map<std::string, std::string, std::less<>> fields;
  bool first = true;
  while (!text.empty()) {
    const size_t end = text.find(' ');
    const std::string_view word = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    if (first) {
      if (word != "jepa-fingerprint/1") return std::nullopt;
      first = false;
      continue;
    }
    const size_t eq = word.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    fields.emplace(std::string(word.substr(0, eq)), std::string(word.substr(eq + 1)));
  }
  const auto integer = [&](const char* key) -> std::optional<int64_t> {
    const auto it = fields.find(key);
    if (it == fields.end()) return std::nullopt;
    std::string v = it->second;  // "(-1)" and "201703L" are how the preprocessor spells them
    v.erase(std::remove_if(v.begin(), v.end(), [](char c) { return c == '(' || c == ')' || c == 'L'; }), v.end());
    try {
      size_t used = 0;
      const int64_t n = std::stoll(v, &used);
      if (used != v.size()) return std::nullopt;
      return n;
    } catch (const std::exception&) {
      return std::nullopt;
    }
  };
  const auto abi = integer("cxx11abi");
  const auto major = integer("compiler_major");
  const auto standard = integer("cplusplus");
  const auto sdk = integer("sdk");
  if (!fields.count("torch") || !fields.count("device") || !fields.count("compiler") || !abi || !major || !standard ||
      !sdk) {
    return std::nullopt;
  }
  Fingerprint f;
  f.torch_version = fields["torch"];
  f.device = fields["device"];
  f.cxx11_abi = static_cast<int32_t>(*abi);
  f.compiler_id = fields["compiler"];
  f.compiler_major = static_cast<int32_t>(*major);
  f.cxx_standard = *standard;
  f.sdk_major = static_cast<int32_t>(*sdk);
  return f;
}

std::string Fingerprint::describe() const {
  return fmt::format("torch {}/{}, cxx11abi {}, {} {}, C++{}, sdk {}", torch_version, device, cxx11_abi, compiler_id,
                     compiler_major, cxx_standard, sdk_major);
}

std::vector<std::string> Fingerprint::differences(const Fingerprint& o) const {
  std::vector<std::string> d;
  if (torch_version != o.torch_version) d.emplace_back("torch version");
  if (device != o.device) d.emplace_back("device");
  if (cxx11_abi != o.cxx11_abi) d.emplace_back("_GLIBCXX_USE_CXX11_ABI");
  if (compiler_id != o.compiler_id || compiler_major != o.compiler_major) d.emplace_back("compiler");
  if (cxx_standard != o.cxx_standard) d.emplace_back("C++ standard");
  if (sdk_major != o.sdk_major) d.emplace_back("SDK major");
  return d;
}

const ParamSchema* ComponentInfo::find_param(std::string_view name) const {
  for (const auto& p : params) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

std::string ComponentInfo::label() const {
  return fmt::format("{} '{}' (plugin {})", kind_name(kind), id, plugin != nullptr ? plugin->name : "?");
}

// ---------------------------------------------------------------- search path

std::vector<fs::path> plugin_search_path(const std::vector<fs::path>& extra) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  const fs::path exe_dir = boost::dll::program_location(ec).parent_path();
  if (!ec) {
    for (const fs::path& candidate : {exe_dir / "plugins", exe_dir / ".." / "lib" / "jepa" / "plugins"}) {
      if (fs::is_directory(candidate)) dirs.push_back(candidate);
    }
  }
  if (const char* env = std::getenv("JEPA_PLUGIN_PATH"); env != nullptr) {
    std::stringstream ss(env);
    std::string item;
    while (std::getline(ss, item, ':')) {
      if (!item.empty()) dirs.emplace_back(item);
    }
  }
  dirs.insert(dirs.end(), extra.begin(), extra.end());
  return dirs;
}

// ---------------------------------------------------------------- checking one library

namespace {

// A reason to reject a library; caught by Registry::load and recorded, never propagated.
struct Reject : std::runtime_error {
  using std::runtime_error::runtime_error;
};

#define JEPA_FIELD_END(Struct, field) (offsetof(Struct, field) + sizeof(Struct::field))

std::string c_str(const char* s, const char* what) {
  if (s == nullptr) throw Reject(fmt::format("{} is missing", what));
  return s;
}

ParamValue value_from_c(const jepa_value& v, ParamType type, const std::string& where) {
  switch (type) {
    case ParamType::integer:
      return static_cast<int64_t>(v.int_value);
    case ParamType::real:
      return v.float_value;
    case ParamType::boolean:
      return v.bool_value != 0;
    case ParamType::string:
      return c_str(v.string_value, (where + " default").c_str());
    case ParamType::list:
      if (v.list_length > 0 && v.list_values == nullptr) throw Reject(where + ": list default has no values");
      return std::vector<double>(v.list_values, v.list_values + v.list_length);
  }
  throw Reject(where + ": unknown type");
}

ParamSchema read_param(const jepa_param_spec& s, const std::string& component) {
  if (s.struct_size < JEPA_FIELD_END(jepa_param_spec, doc)) {
    throw Reject(fmt::format("component '{}': parameter spec of {} bytes is too small", component, s.struct_size));
  }
  ParamSchema p;
  p.name = c_str(s.name, "parameter name");
  const std::string where = fmt::format("component '{}' parameter '{}'", component, p.name);
  if (p.name.empty()) throw Reject(fmt::format("component '{}': empty parameter name", component));
  if (s.type < JEPA_PARAM_INT || s.type > JEPA_PARAM_LIST) {
    throw Reject(fmt::format("{}: unknown type {}", where, s.type));
  }
  p.type = static_cast<ParamType>(s.type);
  if (s.default_value.type != s.type) {
    throw Reject(fmt::format("{}: default is of another type than declared ({})", where, type_name(p.type)));
  }
  p.default_value = value_from_c(s.default_value, p.type, where);
  if (s.has_min != 0) p.min = s.min;
  if (s.has_max != 0) p.max = s.max;
  for (uint32_t i = 0; i < s.n_choices; ++i) p.choices.push_back(c_str(s.choices[i], "choice"));
  p.list_length = s.list_length;
  p.doc = s.doc != nullptr ? s.doc : "";
  return p;
}

}  // namespace

void Registry::load(const fs::path& path) {
  auto info = std::make_unique<PluginInfo>();
  info->path = path;
  try {
    try {
      info->sha256 = sha256_file(path);
    } catch (const std::exception& e) {
      throw Reject(e.what());
    }
    // Before loading: a library linked against another LibTorch must never enter this process.
    // Pure C plugins (masking) carry "torch=none" and pass whatever LibTorch the host has.
    std::optional<Fingerprint> note;
    try {
      if (auto text = read_elf_section(path, JEPA_FINGERPRINT_SECTION)) note = Fingerprint::from_text(*text);
    } catch (const std::exception& e) {
      throw Reject(e.what());
    }
    if (note && note->torch_version != "none") {
      const Fingerprint host = host_fingerprint();
      if (note->torch_version != host.torch_version || note->device != host.device) {
        throw Reject(fmt::format(
            "built against another LibTorch, so it was not loaded (that would bring a second LibTorch into "
            "this process); build fingerprint differs ({}): plugin [{}], host [{}]; rebuild the plugin against "
            "the host's LibTorch",
            fmt::join(note->differences(host), ", "), note->describe(), host.describe()));
      }
    }
    auto lib = std::make_shared<boost::dll::shared_library>();
    boost::dll::fs::error_code ec;
    lib->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) throw Reject(fmt::format("cannot be loaded: {}", ec.message()));
    if (!lib->has(JEPA_ENTRY_SYMBOL)) {
      throw Reject("no entry symbol '" JEPA_ENTRY_SYMBOL "' (not a jepa plugin, or built without JEPA_PLUGIN)");
    }
    const auto entry = lib->get<const jepa_plugin_descriptor*()>(JEPA_ENTRY_SYMBOL);
    const jepa_plugin_descriptor* d = entry();
    if (d == nullptr) throw Reject("entry point returned no descriptor (its registration threw)");

    if (d->struct_size < JEPA_FIELD_END(jepa_plugin_descriptor, abi_minor)) {
      throw Reject(fmt::format("descriptor of {} bytes is too small to carry an ABI version", d->struct_size));
    }
    info->abi_major = d->abi_major;
    info->abi_minor = d->abi_minor;
    if (d->abi_major != JEPA_ABI_MAJOR) {
      throw Reject(fmt::format("SDK ABI major {} (plugin) != {} (host): rebuild the plugin against this SDK",
                               d->abi_major, JEPA_ABI_MAJOR));
    }
    if (d->abi_minor > JEPA_ABI_MINOR) {
      throw Reject(fmt::format("SDK ABI {}.{} (plugin) is newer than {}.{} (host): update jepa or rebuild the plugin",
                               d->abi_major, d->abi_minor, JEPA_ABI_MAJOR, JEPA_ABI_MINOR));
    }
    if (d->struct_size < JEPA_FIELD_END(jepa_plugin_descriptor, component_size)) {
      throw Reject(
          fmt::format("descriptor of {} bytes is smaller than ABI {}.0 requires", d->struct_size, JEPA_ABI_MAJOR));
    }
    info->name = c_str(d->name, "plugin name");
    info->version = c_str(d->version, "plugin version");
    info->revision = d->revision != nullptr ? d->revision : "unknown";
    if (d->fingerprint.struct_size < JEPA_FIELD_END(jepa_fingerprint, sdk_major)) {
      throw Reject("build fingerprint is missing or too small");
    }
    info->fingerprint = Fingerprint::from_c(d->fingerprint);

    if (d->n_components > 0 && (d->components == nullptr || d->component_size < JEPA_FIELD_END(jepa_component, api))) {
      throw Reject("component table is missing or its entries are too small");
    }
    const auto* base = reinterpret_cast<const unsigned char*>(d->components);
    bool any_cxx = false;
    std::set<std::pair<Kind, std::string>> own_ids;
    for (uint32_t i = 0; i < d->n_components; ++i) {
      const auto& c = *reinterpret_cast<const jepa_component*>(base + static_cast<size_t>(i) * d->component_size);
      ComponentInfo comp;
      comp.id = c_str(c.id, "component id");
      if (comp.id.empty()) throw Reject("a component has an empty id");
      const auto kind = kind_from_int(c.kind);
      if (!kind) throw Reject(fmt::format("component '{}' has unknown kind {}", comp.id, c.kind));
      comp.kind = *kind;
      comp.version = c.version;
      comp.doc = c.doc != nullptr ? c.doc : "";
      comp.cxx_interface = c.cxx_interface != 0;
      comp.table = &c;
      if (c.create == nullptr || c.destroy == nullptr) {
        throw Reject(fmt::format("component '{}' lacks create/destroy", comp.id));
      }
      if (comp.kind == Kind::masking && !comp.cxx_interface) {
        const auto* api = static_cast<const jepa_masking_api*>(c.api);
        if (api == nullptr || api->struct_size < JEPA_FIELD_END(jepa_masking_api, sample) || api->sample == nullptr) {
          throw Reject(fmt::format("masking component '{}' has no sample() table", comp.id));
        }
      } else if (comp.kind == Kind::masking || !comp.cxx_interface) {
        throw Reject(fmt::format("component '{}': kind {} needs the {} interface", comp.id, kind_name(comp.kind),
                                 comp.kind == Kind::masking ? "C" : "C++"));
      }
      if (!own_ids.emplace(comp.kind, comp.id).second) {
        throw Reject(fmt::format("declares {} '{}' twice", kind_name(comp.kind), comp.id));
      }
      if (c.n_params > 0 && (c.params == nullptr || c.param_spec_size < JEPA_FIELD_END(jepa_param_spec, doc))) {
        throw Reject(fmt::format("component '{}': parameter table is missing or too small", comp.id));
      }
      const auto* pbase = reinterpret_cast<const unsigned char*>(c.params);
      std::set<std::string> names;
      for (uint32_t k = 0; k < c.n_params; ++k) {
        const auto& spec =
            *reinterpret_cast<const jepa_param_spec*>(pbase + static_cast<size_t>(k) * c.param_spec_size);
        ParamSchema p = read_param(spec, comp.id);
        if (!names.insert(p.name).second) {
          throw Reject(fmt::format("component '{}' declares parameter '{}' twice", comp.id, p.name));
        }
        if (std::string err = check_value(p, p.default_value); !err.empty()) {
          throw Reject(fmt::format("component '{}' parameter '{}': invalid default: {}", comp.id, p.name, err));
        }
        comp.params.push_back(std::move(p));
      }
      any_cxx = any_cxx || comp.cxx_interface;
      info->components.push_back(std::move(comp));
    }

    if (any_cxx) {
      const Fingerprint host = host_fingerprint();
      const auto diff = info->fingerprint.differences(host);
      if (!diff.empty()) {
        throw Reject(fmt::format("build fingerprint differs ({}): plugin [{}], host [{}]", fmt::join(diff, ", "),
                                 info->fingerprint.describe(), host.describe()));
      }
    }

    for (const auto& comp : info->components) {
      if (const ComponentInfo* other = find(comp.kind, comp.id)) {
        throw Reject(fmt::format("duplicate {} id '{}': also provided by {} (loaded first)", kind_name(comp.kind),
                                 comp.id, other->plugin->path.string()));
      }
    }
    info->library = std::move(lib);
    for (auto& comp : info->components) comp.plugin = info.get();
    plugins_.push_back(std::move(info));
  } catch (const Reject& r) {
    rejected_.push_back({path, r.what()});
  } catch (const std::exception& e) {
    rejected_.push_back({path, fmt::format("unexpected error while loading: {}", e.what())});
  }
}

Registry Registry::discover(const std::vector<fs::path>& folders) {
  Registry reg;
  std::set<fs::path> seen;
  for (const fs::path& folder : folders) {
    std::error_code ec;
    if (!fs::is_directory(folder, ec)) {
      reg.rejected_.push_back({folder, "plugin folder does not exist"});
      continue;
    }
    reg.searched_.push_back(folder);
    std::vector<fs::path> files;
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      if (entry.is_regular_file() && entry.path().extension() == ".so") files.push_back(entry.path());
    }
    std::sort(files.begin(), files.end());
    for (const fs::path& f : files) {
      const fs::path canonical = fs::weakly_canonical(f, ec);
      if (!seen.insert(ec ? f : canonical).second) continue;
      reg.load(ec ? f : canonical);
    }
  }
  return reg;
}

const ComponentInfo* Registry::find(Kind kind, std::string_view id) const {
  for (const auto& p : plugins_) {
    for (const auto& c : p->components) {
      if (c.kind == kind && c.id == id) return &c;
    }
  }
  return nullptr;
}

std::vector<const ComponentInfo*> Registry::components(Kind kind) const {
  std::vector<const ComponentInfo*> out;
  for (const auto& p : plugins_) {
    for (const auto& c : p->components) {
      if (c.kind == kind) out.push_back(&c);
    }
  }
  std::sort(out.begin(), out.end(), [](auto* a, auto* b) { return a->id < b->id; });
  return out;
}

std::string Registry::available(Kind kind) const {
  std::vector<std::string> ids;
  for (const auto* c : components(kind)) ids.push_back(c->id);
  return ids.empty() ? std::string("(none)") : fmt::format("{}", fmt::join(ids, ", "));
}

}  // namespace jepa::loader
