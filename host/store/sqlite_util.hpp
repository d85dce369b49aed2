// SQLite underneath the results store: connections, statements, busy retries and write
// transactions, times as text, and reading a run's row. Internal to the store room (store/*.cpp);
// nothing outside includes it.
#pragma once

#include "store/store.hpp"

#include <fmt/format.h>
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace jepa::store::detail {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;

// busy_timeout makes SQLite wait for most locks, but some SQLITE_BUSY results bypass the busy
// handler (a read transaction that must upgrade, WAL recovery by another process, switching to
// WAL while another process has the file open). Those are retried from the start of the
// operation, a bounded number of times.
constexpr int kBusyTimeoutMs = 10000;
constexpr int kMaxBusyRetries = 200;

// Thrown for SQLITE_BUSY so that with_retry can tell "try again" from real failures.
struct Busy : StoreError {
  using StoreError::StoreError;
};

struct Conn {
  sqlite3* db;
  const fs::path* path;
};

[[noreturn]] inline void fail(Conn c, int rc, const std::string& what) {
  std::string msg = fmt::format("results store {}: {}: {} (sqlite code {})", c.path->string(), what,
                                c.db ? sqlite3_errmsg(c.db) : sqlite3_errstr(rc), rc);
  if ((rc & 0xff) == SQLITE_BUSY) throw Busy(msg);
  throw StoreError(msg);
}

struct Finalize {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, Finalize>;

// A prepared statement with 1-based bind() and 0-based column getters.
class Statement {
 public:
  Statement(Conn c, const char* sql) : c_(c) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v2(c_.db, sql, -1, &raw, nullptr);
    stmt_.reset(raw);
    if (rc != SQLITE_OK) fail(c_, rc, fmt::format("preparing [{}]", sql));
  }

  Statement& bind(int i, int64_t v) { return check_bind(sqlite3_bind_int64(stmt_.get(), i, v)); }
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v) { return check_bind(sqlite3_bind_double(stmt_.get(), i, v)); }
  Statement& bind(int i, const std::string& v) {
    return check_bind(sqlite3_bind_text(stmt_.get(), i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
  }
  Statement& bind(int i, const char* v) { return bind(i, std::string(v)); }
  // Empty text and absent ids are stored as NULL so `IS NULL` works in the shell.
  Statement& bind_text_or_null(int i, const std::string& v) {
    return v.empty() ? check_bind(sqlite3_bind_null(stmt_.get(), i)) : bind(i, v);
  }
  Statement& bind(int i, std::optional<int64_t> v) {
    return v ? bind(i, *v) : check_bind(sqlite3_bind_null(stmt_.get(), i));
  }

  // True while there is a row to read.
  bool step() {
    int rc = sqlite3_step(stmt_.get());
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(c_, rc, fmt::format("running [{}]", sqlite3_sql(stmt_.get())));
  }
  void run() {
    while (step()) {
    }
  }
  void reset() {
    sqlite3_reset(stmt_.get());
    sqlite3_clear_bindings(stmt_.get());
  }

  sqlite3_stmt* raw() const { return stmt_.get(); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_.get(), col) == SQLITE_NULL; }
  int64_t int64(int col) const { return sqlite3_column_int64(stmt_.get(), col); }
  double real(int col) const {
    return is_null(col) ? std::numeric_limits<double>::quiet_NaN() : sqlite3_column_double(stmt_.get(), col);
  }
  std::string text(int col) const {
    auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_.get(), col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(stmt_.get(), col))) : std::string();
  }
  std::optional<int64_t> optional_int64(int col) const {
    return is_null(col) ? std::nullopt : std::optional<int64_t>(int64(col));
  }

 private:
  Statement& check_bind(int rc) {
    if (rc != SQLITE_OK) fail(c_, rc, fmt::format("binding a parameter of [{}]", sqlite3_sql(stmt_.get())));
    return *this;
  }
  Conn c_;
  StmtPtr stmt_;
};

// Runs fixed SQL (possibly several statements; never with values in it).
inline void exec(Conn c, const char* sql) {
  const char* rest = sql;
  while (rest && *rest) {
    sqlite3_stmt* raw = nullptr;
    const char* tail = nullptr;
    int rc = sqlite3_prepare_v2(c.db, rest, -1, &raw, &tail);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) fail(c, rc, fmt::format("preparing [{}]", rest));
    if (stmt) {
      while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
      }
      if (rc != SQLITE_DONE) fail(c, rc, fmt::format("running [{}]", sqlite3_sql(stmt.get())));
    }
    rest = tail;
  }
}

inline void rollback_quietly(Conn c) {
  if (!sqlite3_get_autocommit(c.db)) sqlite3_exec(c.db, "ROLLBACK", nullptr, nullptr, nullptr);
}

template <class F>
auto with_retry(Conn c, F&& f) -> decltype(f()) {
  // Inside Store::transaction: a busy database restarts the whole transaction there, not this
  // part of it here.
  if (!sqlite3_get_autocommit(c.db)) return f();
  thread_local std::minstd_rand jitter(std::random_device{}());
  for (int attempt = 0;; ++attempt) {
    try {
      return f();
    } catch (const Busy& e) {
      rollback_quietly(c);
      if (attempt >= kMaxBusyRetries) {
        throw StoreError(fmt::format("{} (still busy after {} retries)", e.what(), kMaxBusyRetries));
      }
      // Jitter keeps processes that collided from colliding again in lockstep.
      int ms = std::min(2 + attempt * 2, 50) + static_cast<int>(jitter() % 10);
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    }
  }
}

// BEGIN IMMEDIATE takes the write lock up front (and waits for it through the busy handler), so
// the transaction never has to upgrade a read lock, which is the case busy_timeout cannot cover.
template <class F>
auto write_transaction(Conn c, F&& f) -> decltype(f()) {
  // Joins the transaction of Store::transaction.
  if (!sqlite3_get_autocommit(c.db)) return f();
  return with_retry(c, [&]() -> decltype(f()) {
    exec(c, "BEGIN IMMEDIATE");
    try {
      if constexpr (std::is_void_v<decltype(f())>) {
        f();
        exec(c, "COMMIT");
      } else {
        auto result = f();
        exec(c, "COMMIT");
        return result;
      }
    } catch (...) {
      rollback_quietly(c);
      throw;
    }
  });
}

inline std::string iso_utc(Clock::time_point t) {
  int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  auto frac = static_cast<int>(ms - secs * 1000);
  auto tt = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

inline std::string now_iso() {
  return iso_utc(Clock::now());
}

inline double now_unix_seconds() {
  return std::chrono::duration<double>(Clock::now().time_since_epoch()).count();
}

// The flush interval must not jump with wall-clock changes.
inline double now_steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// After metrics were deleted (the trigger only sees inserts).
inline void rebuild_metric_summary(Conn c, int64_t run) {
  Statement d(c, "DELETE FROM metric_summary WHERE run_id = ?");
  d.bind(1, run).run();
  Statement i(c,
              "INSERT INTO metric_summary (run_id, key, last_step, last_value, min_value, max_value, count) "
              "SELECT m.run_id, m.key, MAX(m.step), "
              "(SELECT l.value FROM metrics l WHERE l.run_id = m.run_id AND l.key = m.key "
              "ORDER BY l.step DESC, l.rowid DESC LIMIT 1), MIN(m.value), MAX(m.value), COUNT(*) "
              "FROM metrics m WHERE m.run_id = ? GROUP BY m.run_id, m.key");
  i.bind(1, run).run();
}

inline const char* const kRunColumns =
    "id, name, status, reason, started_at, ended_at, heartbeat_at, config_json, config_path, seed, last_step, "
    "resumed_from, sweep_id";

inline RunRecord read_run(const Statement& s) {
  RunRecord r;
  r.id = s.int64(0);
  r.name = s.text(1);
  r.status = status_from_name(s.text(2));
  r.reason = s.text(3);
  r.started_at = s.text(4);
  r.ended_at = s.text(5);
  r.heartbeat_at = s.text(6);
  r.config_json = s.text(7);
  r.config_path = s.text(8);
  r.seed = static_cast<uint64_t>(s.int64(9));
  r.last_step = s.int64(10);
  r.resumed_from = s.optional_int64(11);
  r.sweep_id = s.optional_int64(12);
  return r;
}

}  // namespace jepa::store::detail
