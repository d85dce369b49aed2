// The results store (store.hpp): what the other store files share: write transactions that join
// an open one, and the read-only queries of the query room. The rest by concern: schema.cpp
// (schema, migrations, opening), runs.cpp, metrics.cpp, sweeps.cpp; sqlite_util.hpp underneath.
#include "store/sqlite_util.hpp"

namespace jepa::store {

using namespace detail;

void Store::transaction(const std::function<void()>& f) {
  Conn c{db_.get(), &path_};
  write_transaction(c, f);
}

bool Row::is_null(int col) const {
  return sqlite3_column_type(stmt_, col) == SQLITE_NULL;
}

int64_t Row::int64(int col) const {
  return sqlite3_column_int64(stmt_, col);
}

double Row::real(int col) const {
  return is_null(col) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_, col);
}

std::string Row::text(int col) const {
  auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, col));
  return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_, col))) : std::string();
}

void Store::query(const std::string& sql, const std::vector<SqlValue>& binds,
                  const std::function<void(const Row&)>& on_row) const {
  Conn c{db_.get(), &path_};
  with_retry(c, [&] {
    Statement q(c, sql.c_str());
    if (!sqlite3_stmt_readonly(q.raw())) {
      throw StoreError(fmt::format("results store {}: refusing a query that writes: [{}]", path_.string(), sql));
    }
    for (size_t i = 0; i < binds.size(); ++i) {
      const int at = static_cast<int>(i) + 1;
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
              q.bind(at, std::optional<int64_t>());
            } else {
              q.bind(at, v);
            }
          },
          binds[i]);
    }
    // A busy retry restarts the query, which is only safe before the caller saw any row.
    bool delivered = false;
    for (;;) {
      bool more = false;
      try {
        more = q.step();
      } catch (const Busy& e) {
        if (delivered) throw StoreError(e.what());
        throw;
      }
      if (!more) break;
      delivered = true;
      on_row(Row(q.raw()));
    }
  });
}

}  // namespace jepa::store
