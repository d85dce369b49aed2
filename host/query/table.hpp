// Plain-text tables for the terminal and CSV for spreadsheets.
#pragma once

#include <string>
#include <vector>

namespace jepa::query {

class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) : header_(std::move(header)) {}
  void add_row(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  size_t size() const { return rows_.size(); }
  // Columns padded to their widest cell, two spaces apart, no trailing blanks.
  std::string render() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

// One CSV field (RFC 4180): quoted when it holds a comma, quote, or line break.
std::string csv_field(const std::string& s);
std::string csv_row(const std::vector<std::string>& fields);

// Numbers for tables: up to `digits` significant digits, "-" for NaN.
std::string format_number(double v, int digits = 4);
// Numbers for CSV/JSON-adjacent text: shortest text that reads back to the same double; "" for NaN.
std::string exact_number(double v);
// "12s", "7m05s", "2h03m"; "-" for NaN.
std::string format_duration(double seconds);

}  // namespace jepa::query
