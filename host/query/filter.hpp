// `--where` filters over runs: a small expression language compiled to an SQL condition whose
// values are all bound parameters, so no user text ever becomes SQL.
//
//   condition  := comparison | condition and condition | condition or condition
//               | not condition | ( condition )
//   comparison := field op value          op: = == != <> < <= > >= like
//   field      := a run column: id name status reason seed sweep steps started_at ended_at
//               | a metric (its key holds a '/'): linear_probe/top1, train/loss
//               | a parameter (its key holds a '.'): optimization.lr, encoder.params.depth
//               | metric:KEY, param:KEY or run:COLUMN to say which explicitly
//   value      := a number, a word, or a quoted string ('...' or "...", a doubled quote
//                 inside is a literal quote)
//
// Metrics compare their latest value (the highest step's). A number compares parameters
// numerically (1e-3 equals 0.001), quoted text compares them as text. `status` is matched
// case-insensitively. Keywords (and, or, not, like) are case-insensitive; && and || work too.
#pragma once

#include "store/store.hpp"

#include <stdexcept>
#include <string>
#include <vector>

namespace jepa::query {

struct FilterError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What a field names.
struct Field {
  enum class Kind { column, metric, param };
  Kind kind = Kind::column;
  std::string key;  // column name, metric key or parameter key
};

// Resolves a field as the grammar above says; throws FilterError for an unknown bare word.
Field resolve_field(const std::string& text);

// The SQL expression of a run column (over the alias `r` of the runs table).
std::string column_sql(const std::string& column);

struct SqlFilter {
  std::string sql = "1";  // a boolean SQL expression over `runs r`
  std::vector<store::SqlValue> binds;
};

// Throws FilterError naming the column of the problem and showing it under a caret.
SqlFilter parse_filter(const std::string& text);

}  // namespace jepa::query
