#include "report/plot.hpp"

#include <fmt/format.h>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace jepa::report {
namespace fs = std::filesystem;
namespace {

// A gnuplot single-quoted string: only the quote itself needs escaping (doubled).
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char ch : s) {
    if (ch == '\'') q += '\'';
    if (ch == '\n' || ch == '\r') {
      q += ' ';
      continue;
    }
    q += ch;
  }
  return q + "'";
}

std::string lower_extension(const fs::path& p) {
  std::string e = p.extension().string();
  for (auto& ch : e) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return e;
}

// A temporary file removed when this goes out of scope.
class TempFile {
 public:
  explicit TempFile(const char* pattern) {
    std::string t = (fs::temp_directory_path() / pattern).string();
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    const int fd = mkstemp(buf.data());
    if (fd < 0) throw PlotError(fmt::format("cannot create a temporary file in {}: {}", t, std::strerror(errno)));
    ::close(fd);
    path_ = buf.data();
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs `gnuplot script` with its output into `log`; returns the exit status (127: not found).
int run_gnuplot(const fs::path& script, const fs::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::string prog = "gnuplot";
  std::string arg = script.string();
  char* argv[] = {prog.data(), arg.data(), nullptr};
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return rc == ENOENT ? 127 : 126;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 126;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

std::string gnuplot_script(const PlotSpec& spec, const fs::path& output, const std::string& terminal) {
  std::string s;
  if (terminal == "svg") {
    s += "set terminal svg size 1000,600 dynamic noenhanced font 'sans,12' background rgb 'white'\n";
  } else if (terminal == "pngcairo") {
    s += "set terminal pngcairo size 1000,600 noenhanced font 'sans,11'\n";
  } else {
    s += "set terminal png size 1000,600 noenhanced\n";
  }
  s += "set output " + quoted(output.string()) + "\n";
  if (!spec.title.empty()) s += "set title " + quoted(spec.title) + "\n";
  s += "set xlabel " + quoted(spec.x_label) + "\nset ylabel " + quoted(spec.y_label) + "\n";
  s += "set grid\nset key inside top right opaque box\nset datafile missing 'NaN'\n";
  if (spec.log_x) s += "set logscale x\n";
  if (spec.log_y) s += "set logscale y\n";
  if (!spec.x_categories.empty()) {
    s += "set xtics (";
    for (size_t i = 0; i < spec.x_categories.size(); ++i) {
      s += fmt::format("{}{} {}", i ? ", " : "", quoted(spec.x_categories[i]), i);
    }
    s += fmt::format(")\nset xrange [-0.5:{}]\n", static_cast<double>(spec.x_categories.size()) - 0.5);
  }
  for (size_t i = 0; i < spec.series.size(); ++i) {
    const auto& se = spec.series[i];
    s += fmt::format("$d{} << EOD\n", i);
    for (size_t k = 0; k < se.x.size(); ++k) {
      if (!std::isfinite(se.x[k]) || !std::isfinite(se.y[k])) continue;
      if (se.style == PlotSeries::Style::error_bars) {
        s += fmt::format("{:.17g} {:.17g} {:.17g} {:.17g}\n", se.x[k], se.y[k], se.y_low[k], se.y_high[k]);
      } else {
        s += fmt::format("{:.17g} {:.17g}\n", se.x[k], se.y[k]);
      }
    }
    s += "EOD\n";
  }
  s += "plot ";
  for (size_t i = 0; i < spec.series.size(); ++i) {
    const auto& se = spec.series[i];
    const char* how = se.style == PlotSeries::Style::lines    ? "using 1:2 with lines lw 2"
                      : se.style == PlotSeries::Style::points ? "using 1:2 with points pt 7 ps 1.2"
                                                              : "using 1:2:3:4 with yerrorbars lw 2 pt 5 ps 1.5";
    s += fmt::format("{}$d{} {} title {}", i ? ", \\\n     " : "", i, how, quoted(se.label));
  }
  if (spec.series.empty()) s += "NaN notitle";
  return s + "\n";
}

void render_plot(const PlotSpec& spec, const fs::path& output) {
  const std::string ext = lower_extension(output);
  if (ext != ".png" && ext != ".svg") {
    throw PlotError(fmt::format("{}: the output must end in .png or .svg", output.string()));
  }
  if (output.has_parent_path()) fs::create_directories(output.parent_path());
  TempFile script("jepa-plot-XXXXXX");
  TempFile log("jepa-plot-log-XXXXXX");
  // pngcairo draws anti-aliased lines; plain png (libgd) is the fallback on builds without cairo.
  const std::vector<std::string> terminals =
      ext == ".svg" ? std::vector<std::string>{"svg"} : std::vector<std::string>{"pngcairo", "png"};
  std::string last_error;
  for (const auto& terminal : terminals) {
    {
      std::ofstream out(script.path());
      out << gnuplot_script(spec, output, terminal);
    }
    const int rc = run_gnuplot(script.path(), log.path());
    if (rc == 127) {
      throw PlotError(
          "gnuplot was not found on PATH: install it (Debian: apt-get install gnuplot-nox; "
          "scripts/install-deps.sh does this)");
    }
    if (rc == 0 && fs::exists(output) && fs::file_size(output) > 0) return;
    last_error = read_all(log.path());
  }
  throw PlotError(fmt::format("gnuplot failed to draw {}:\n{}", output.string(), last_error));
}

}  // namespace jepa::report
