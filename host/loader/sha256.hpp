#pragma once

#include <filesystem>
#include <string>

namespace jepa::loader {

// Lower-case hex SHA-256 of a file's bytes; throws std::runtime_error when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace jepa::loader
