// Facts about where a run ran, stored with it: git revision, host, devices, library versions.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace jepa::train {

// `source_dir`: where to look for the git checkout (the experiment file's folder).
std::map<std::string, std::string> collect_environment(const std::filesystem::path& source_dir,
                                                       const std::string& device);

}  // namespace jepa::train
