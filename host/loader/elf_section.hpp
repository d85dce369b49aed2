// Reads one named section of an ELF shared library from the file, without loading it.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace jepa::loader {

// The section's bytes; nullopt when the file is not a 64-bit little-endian ELF file or has no
// such section. Throws std::runtime_error when the file cannot be read or its headers are cut short.
std::optional<std::string> read_elf_section(const std::filesystem::path& path, std::string_view name);

}  // namespace jepa::loader
