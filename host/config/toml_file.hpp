// Reading a TOML file with errors in the project's "file:line:column: message" form; shared by
// experiment files and sweep specs. `Error` is the exception type the caller reports with.
#pragma once

#include <fmt/format.h>
#include <toml++/toml.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <system_error>

namespace jepa::config {

template <class Error>
toml::table read_toml_file(const std::filesystem::path& file, const char* what) {
  std::error_code ec;
  std::ifstream in(file, std::ios::binary);
  if (!std::filesystem::is_regular_file(file, ec) || !in) {
    throw Error(fmt::format("{}: cannot open {} file", file.string(), what));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    return toml::parse(text.str(), file.string());
  } catch (const toml::parse_error& e) {
    throw Error(fmt::format("{}:{}:{}: TOML syntax error: {}", file.string(), e.source().begin.line,
                            e.source().begin.column, e.description()));
  }
}

}  // namespace jepa::config
