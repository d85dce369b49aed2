#include "query/runs.hpp"

#include "query/compare.hpp"
#include "query/filter.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <ctime>
#include <limits>

namespace jepa::query {
namespace {

// The JSON array text of a list of ids: bound as one value and read back with json_each, so a
// selection of any size is a single bound parameter.
std::string id_list(const std::vector<int64_t>& ids) {
  return nlohmann::json(ids).dump();
}

std::string order_by(const std::string& sort, std::vector<store::SqlValue>& binds) {
  if (sort.empty()) return "r.id DESC";
  const bool desc = sort[0] == '-';
  const std::string name = desc ? sort.substr(1) : sort;
  Field f;
  try {
    f = resolve_field(name);
  } catch (const FilterError& e) {
    throw FilterError(fmt::format("--sort: {}", e.what()));
  }
  const char* dir = desc ? "DESC" : "ASC";
  switch (f.kind) {
    case Field::Kind::metric: {
      binds.emplace_back(f.key);
      binds.emplace_back(f.key);
      const char* v = "(SELECT s.last_value FROM metric_summary s WHERE s.run_id = r.id AND s.key = ?)";
      return fmt::format("{0} IS NULL, {0} {1}, r.id", v, dir);
    }
    case Field::Kind::param: {
      for (int i = 0; i < 4; ++i) binds.emplace_back(f.key);
      const char* num =
          "(SELECT CAST(p.value AS REAL) FROM params p WHERE p.run_id = r.id AND p.key = ? AND p.value GLOB "
          "'[-+0-9.]*')";
      const char* text = "(SELECT p.value FROM params p WHERE p.run_id = r.id AND p.key = ?)";
      return fmt::format("{0} IS NULL, {0} {2}, {1} IS NULL, {1} {2}, r.id", num, text, dir);
    }
    case Field::Kind::column:
      break;
  }
  return fmt::format("{} {}, r.id", column_sql(f.key), dir);
}

// "2026-11-27T21:03:04.123Z" -> seconds since the epoch (NaN when it does not parse).
double parse_iso(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms) < 6) {
    return std::numeric_limits<double>::quiet_NaN();
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<double>(timegm(&tm)) + ms / 1000.0;
}

}  // namespace

double duration_seconds(const RunRow& row) {
  if (row.ended_at.empty()) return std::numeric_limits<double>::quiet_NaN();
  return parse_iso(row.ended_at) - parse_iso(row.started_at);
}

std::vector<RunRow> select_runs(const store::Store& store, const RunSelection& sel) {
  std::vector<store::SqlValue> binds;
  std::vector<std::string> conditions;

  std::vector<int64_t> explicit_ids;
  for (const auto& r : sel.runs) {
    auto run = store.find_run(r);
    if (!run) throw store::StoreError(fmt::format("no run '{}' in {}", r, store.path().string()));
    explicit_ids.push_back(run->id);
  }
  if (!sel.runs.empty()) {
    conditions.push_back("r.id IN (SELECT value FROM json_each(?))");
    binds.emplace_back(id_list(explicit_ids));
  }
  if (sel.sweep) {
    auto sweep = store.find_sweep(*sel.sweep);
    if (!sweep) throw store::StoreError(fmt::format("no sweep '{}' in {}", *sel.sweep, store.path().string()));
    conditions.push_back("r.sweep_id = ?");
    binds.emplace_back(sweep->id);
  }
  SqlFilter filter = parse_filter(sel.where);
  conditions.push_back(filter.sql);
  binds.insert(binds.end(), filter.binds.begin(), filter.binds.end());

  std::string where;
  for (const auto& c : conditions) where += (where.empty() ? "" : " AND ") + c;
  std::string sql = fmt::format(
      "SELECT r.id, r.name, r.status, r.reason, r.started_at, r.ended_at, r.last_step, r.seed, r.sweep_id, sw.name, "
      "st.job_id, st.job_state FROM runs r LEFT JOIN sweeps sw ON sw.id = r.sweep_id "
      "LEFT JOIN sweep_trials st ON st.run_id = r.id WHERE {} ORDER BY {}",
      where, order_by(sel.sort, binds));
  if (sel.limit > 0) {
    sql += " LIMIT ?";
    binds.emplace_back(sel.limit);
  }

  std::vector<RunRow> rows;
  store.query(sql, binds, [&](const store::Row& q) {
    RunRow r;
    r.id = q.int64(0);
    r.name = q.text(1);
    r.status = q.text(2);
    r.reason = q.text(3);
    r.started_at = q.text(4);
    r.ended_at = q.text(5);
    r.steps = q.int64(6);
    r.seed = static_cast<uint64_t>(q.int64(7));
    if (!q.is_null(8)) r.sweep_id = q.int64(8);
    r.sweep = q.text(9);
    r.job_id = q.text(10) == "submitting" ? std::string() : q.text(10);
    r.job_state = q.text(11);
    rows.push_back(std::move(r));
  });
  // Runs named on the command line keep the order they were named in, unless sorted.
  if (!sel.runs.empty() && sel.sort.empty()) {
    std::stable_sort(rows.begin(), rows.end(), [&](const RunRow& a, const RunRow& b) {
      auto pos = [&](int64_t id) { return std::find(explicit_ids.begin(), explicit_ids.end(), id); };
      return pos(a.id) < pos(b.id);
    });
  }
  if (rows.empty()) return rows;

  std::vector<int64_t> ids;
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < rows.size(); ++i) {
    ids.push_back(rows[i].id);
    index[rows[i].id] = i;
  }
  const std::vector<store::SqlValue> id_bind{id_list(ids)};
  load_params(store, rows, sel.params);
  store.query("SELECT run_id, key, last_value FROM metric_summary WHERE run_id IN (SELECT value FROM json_each(?))",
              id_bind, [&](const store::Row& q) { rows[index.at(q.int64(0))].metrics[q.text(1)] = q.real(2); });
  return rows;
}

void load_params(const store::Store& store, std::vector<RunRow>& rows,
                 const std::optional<std::vector<std::string>>& keys) {
  if (rows.empty() || (keys && keys->empty())) return;
  std::vector<int64_t> ids;
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < rows.size(); ++i) {
    ids.push_back(rows[i].id);
    index[rows[i].id] = i;
  }
  auto add = [&](const store::Row& q) { rows[index.at(q.int64(0))].params[q.text(1)] = q.text(2); };
  if (!keys) {
    store.query("SELECT run_id, key, value FROM params WHERE run_id IN (SELECT value FROM json_each(?))",
                {id_list(ids)}, add);
  } else {
    store.query(
        "SELECT run_id, key, value FROM params WHERE run_id IN (SELECT value FROM json_each(?)) "
        "AND key IN (SELECT value FROM json_each(?))",
        {id_list(ids), nlohmann::json(*keys).dump()}, add);
  }
}

std::vector<std::string> differing_params(const store::Store& store, const std::vector<RunRow>& rows) {
  std::vector<int64_t> ids;
  for (const auto& r : rows) ids.push_back(r.id);
  std::vector<std::string> out;
  store.query(
      "SELECT key FROM params WHERE run_id IN (SELECT value FROM json_each(?)) GROUP BY key "
      "HAVING MIN(value) <> MAX(value) OR COUNT(*) < ? ORDER BY key",
      {id_list(ids), static_cast<int64_t>(rows.size())}, [&](const store::Row& q) {
        if (!is_seed_like(q.text(0))) out.push_back(q.text(0));
      });
  return out;
}

}  // namespace jepa::query
