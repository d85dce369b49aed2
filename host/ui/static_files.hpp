// The page files `jepa ui` serves: its own (host/ui/static, installed to share/jepa-lab/ui) and
// Chart.js from the Debian package, so nothing is fetched at run time.
#pragma once

#include <filesystem>
#include <optional>
#include <string>

namespace jepa::ui {

// $JEPA_UI_STATIC_DIR, else <folder of the executable>/../share/jepa-lab/ui (an install), else
// the source tree's host/ui/static (a build tree). Throws std::runtime_error naming where it
// looked when none holds page.html.
std::filesystem::path find_static_dir();

// $JEPA_CHARTJS, else Debian's libjs-chart.js (/usr/share/javascript/chart.js/chart.min.js).
// Throws std::runtime_error saying which package to install when missing.
std::filesystem::path find_chartjs();

// A path below the static folder made only of plain names: segments of letters, digits, '-',
// '_' and '.', none starting with '.' (so no "..", no hidden files), none empty.
bool valid_static_path(const std::string& relative);

// What a request path below the static folder names, if it is a regular file inside `root`.
// The path must be valid_static_path and the resolved file (symbolic links followed) must still
// lie inside root; nullopt otherwise.
std::optional<std::filesystem::path> resolve_static(const std::filesystem::path& root, const std::string& relative);

// "text/html; charset=utf-8" and the like, from the extension.
std::string content_type(const std::filesystem::path& file);

}  // namespace jepa::ui
