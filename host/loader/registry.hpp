// Plugin discovery and checking. Every library found is either accepted (its components join
// the registry) or listed as rejected with a one-line reason; one bad library never stops
// discovery.
#pragma once

#include "loader/component_info.hpp"

#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

namespace jepa::loader {

// The folders to search, in order: the plugin folder next to the executable (the build tree's
// plugins/, or an install's lib/jepa/plugins), each entry of $JEPA_PLUGIN_PATH, then `extra`
// (--plugin-path).
std::vector<std::filesystem::path> plugin_search_path(const std::vector<std::filesystem::path>& extra);

// The host's own build fingerprint (LibTorch version, CUDA/cpu, C++ ABI, compiler, standard).
Fingerprint host_fingerprint();

class Registry {
 public:
  // Loads every *.so in `folders` (not recursive; a file seen twice is loaded once).
  static Registry discover(const std::vector<std::filesystem::path>& folders);

  const std::vector<std::unique_ptr<PluginInfo>>& plugins() const { return plugins_; }
  const std::vector<Rejection>& rejected() const { return rejected_; }
  const std::vector<std::filesystem::path>& searched() const { return searched_; }

  const ComponentInfo* find(Kind kind, std::string_view id) const;
  std::vector<const ComponentInfo*> components(Kind kind) const;
  // "a, b, c" or "(none)": for error messages that list what is available.
  std::string available(Kind kind) const;

 private:
  void load(const std::filesystem::path& path);

  std::vector<std::unique_ptr<PluginInfo>> plugins_;
  std::vector<Rejection> rejected_;
  std::vector<std::filesystem::path> searched_;
};

}  // namespace jepa::loader
