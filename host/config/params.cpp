#include "config/params.hpp"

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cstdlib>

namespace jepa::config {

using loader::ParamType;
using loader::ParamValue;

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::optional<int64_t> to_int(const std::string& s) {
  int64_t v = 0;
  const char* end = s.data() + s.size();
  auto [p, ec] = std::from_chars(s.data(), end, v);
  if (ec != std::errc() || p != end || s.empty()) return std::nullopt;
  return v;
}

std::optional<double> to_double(const std::string& s) {
  if (s.empty()) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size()) return std::nullopt;
  return v;
}

std::string valid_keys(const loader::ComponentInfo& c) {
  std::vector<std::string> names;
  for (const auto& p : c.params) names.push_back(p.name);
  return names.empty() ? std::string("(it takes no parameters)") : fmt::format("{}", fmt::join(names, ", "));
}

}  // namespace

std::pair<std::string, std::string> split_assignment(std::string_view text) {
  const auto eq = text.find('=');
  if (eq == std::string_view::npos || trim(text.substr(0, eq)).empty()) {
    throw ConfigError(fmt::format("'{}' is not of the form key=value", text));
  }
  return {trim(text.substr(0, eq)), trim(text.substr(eq + 1))};
}

ParamValue parse_value(std::string_view label, const loader::ParamSchema& schema, std::string_view raw) {
  std::string text = trim(raw);
  auto fail = [&](const std::string& why) {
    return ConfigError(fmt::format("{}: parameter '{}' {} (got '{}'); {}: {}", label, schema.name, why, text,
                                   type_name(schema.type), schema.doc));
  };
  ParamValue value;
  switch (schema.type) {
    case ParamType::integer: {
      const auto v = to_int(text);
      if (!v) throw fail("expects an integer");
      value = *v;
      break;
    }
    case ParamType::real: {
      const auto v = to_double(text);
      if (!v) throw fail("expects a number");
      value = *v;
      break;
    }
    case ParamType::boolean:
      if (text == "true" || text == "1" || text == "yes" || text == "on") {
        value = true;
      } else if (text == "false" || text == "0" || text == "no" || text == "off") {
        value = false;
      } else {
        throw fail("expects true or false");
      }
      break;
    case ParamType::string:
      if (text.size() >= 2 && (text.front() == '"' || text.front() == '\'') && text.back() == text.front()) {
        text = text.substr(1, text.size() - 2);
      }
      value = text;
      break;
    case ParamType::list: {
      std::string body = text;
      if (!body.empty() && body.front() == '[') {
        if (body.back() != ']') throw fail("expects a list like [0.15, 0.2]");
        body = body.substr(1, body.size() - 2);
      }
      std::vector<double> items;
      size_t start = 0;
      while (start <= body.size() && !trim(body).empty()) {
        const size_t comma = body.find(',', start);
        const std::string item = trim(std::string_view(body).substr(start, comma - start));
        const auto v = to_double(item);
        if (!v) throw fail("expects a list of numbers like [0.15, 0.2]");
        items.push_back(*v);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      value = std::move(items);
      break;
    }
  }
  if (std::string err = loader::check_value(schema, value); !err.empty()) {
    throw ConfigError(fmt::format("{}: parameter '{}': {}", label, schema.name, err));
  }
  return value;
}

ParamValue parse_value(const loader::ComponentInfo& component, const loader::ParamSchema& schema,
                       std::string_view text) {
  return parse_value(component.label(), schema, text);
}

loader::ParamSet resolve_params(const loader::ComponentInfo& component,
                                const std::vector<std::pair<std::string, std::string>>& overrides) {
  loader::ParamSet set = loader::ParamSet::defaults(component);
  for (const auto& [key, text] : overrides) {
    const loader::ParamSchema* schema = component.find_param(key);
    if (schema == nullptr) {
      throw ConfigError(
          fmt::format("{}: unknown parameter '{}'; valid keys: {}", component.label(), key, valid_keys(component)));
    }
    for (auto& [name, value] : set.values) {
      if (name == key) value = parse_value(component, *schema, text);
    }
  }
  return set;
}

}  // namespace jepa::config
