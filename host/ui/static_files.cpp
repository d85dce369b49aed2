#include "ui/static_files.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <climits>
#include <cstdlib>
#include <stdexcept>
#include <system_error>
#include <vector>

namespace jepa::ui {

namespace fs = std::filesystem;

namespace {

fs::path executable_dir() {
  char buf[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? fs::path(std::string(buf, static_cast<size_t>(n))).parent_path() : fs::path(".");
}

bool plain_segment(const std::string& s) {
  if (s.empty() || s[0] == '.') return false;
  for (const char ch : s) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                    ch == '_' || ch == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

fs::path find_static_dir() {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("JEPA_UI_STATIC_DIR"); env != nullptr && *env != '\0') candidates.emplace_back(env);
  candidates.push_back(executable_dir() / "../share/jepa-lab/ui");
#ifdef JEPA_UI_SOURCE_STATIC_DIR
  candidates.emplace_back(JEPA_UI_SOURCE_STATIC_DIR);
#endif
  std::string looked;
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::is_regular_file(c / "page.html", ec)) return fs::canonical(c);
    looked += (looked.empty() ? "" : ", ") + c.string();
  }
  throw std::runtime_error(
      fmt::format("the page files of jepa ui are missing (looked in {}); set JEPA_UI_STATIC_DIR", looked));
}

fs::path find_chartjs() {
  const char* env = std::getenv("JEPA_CHARTJS");
  const fs::path file = env != nullptr && *env != '\0' ? fs::path(env) : "/usr/share/javascript/chart.js/chart.min.js";
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) {
    throw std::runtime_error(fmt::format(
        "Chart.js not found at {}: install Debian's libjs-chart.js (scripts/install-deps.sh does) or set JEPA_CHARTJS",
        file.string()));
  }
  return fs::canonical(file);
}

bool valid_static_path(const std::string& relative) {
  if (relative.empty() || relative.size() > 256) return false;
  size_t start = 0;
  for (;;) {
    const size_t slash = relative.find('/', start);
    if (!plain_segment(relative.substr(start, slash == std::string::npos ? std::string::npos : slash - start))) {
      return false;
    }
    if (slash == std::string::npos) return true;
    start = slash + 1;
  }
}

std::optional<fs::path> resolve_static(const fs::path& root, const std::string& relative) {
  if (!valid_static_path(relative)) return std::nullopt;
  const fs::path p = root / relative;
  std::error_code ec;
  const fs::path real = fs::canonical(p, ec);
  if (ec || !fs::is_regular_file(real, ec)) return std::nullopt;
  const fs::path real_root = fs::canonical(root, ec);
  if (ec) return std::nullopt;
  // A symbolic link inside the folder must not lead out of it.
  auto r = real_root.begin();
  auto f = real.begin();
  for (; r != real_root.end(); ++r, ++f) {
    if (f == real.end() || *f != *r) return std::nullopt;
  }
  return real;
}

std::string content_type(const fs::path& file) {
  const std::string ext = file.extension().string();
  if (ext == ".html") return "text/html; charset=utf-8";
  if (ext == ".js") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".png") return "image/png";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".json") return "application/json";
  return "application/octet-stream";
}

}  // namespace jepa::ui
