// Charts through gnuplot (a real plotting program, not hand-drawn pixels): training curves
// overlaid, and parameter-versus-metric scatter plots with group means and confidence intervals.
#pragma once

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::report {

struct PlotError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct PlotSeries {
  enum class Style { lines, points, error_bars };
  std::string label;
  Style style = Style::lines;
  std::vector<double> x, y;
  std::vector<double> y_low, y_high;  // error_bars only, one per point
};

struct PlotSpec {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<PlotSeries> series;
  bool log_x = false;
  bool log_y = false;
  std::vector<std::string> x_categories;  // when set, x values are indices into these names
};

// The gnuplot program that draws `spec` into `output` with `terminal` ("pngcairo", "png", "svg").
std::string gnuplot_script(const PlotSpec& spec, const std::filesystem::path& output, const std::string& terminal);

// PNG or SVG by the output's extension (.png, .svg). Throws PlotError when gnuplot is missing or
// fails (with its message), or for another extension.
void render_plot(const PlotSpec& spec, const std::filesystem::path& output);

}  // namespace jepa::report
