// Sweeps and their trials: the trial rows, their runs, pids, SLURM jobs and journal offsets.
#include "store/sqlite_util.hpp"

namespace jepa::store {

using namespace detail;

void Store::add_sweep_trials(int64_t sweep, const std::vector<std::pair<int64_t, std::string>>& trials) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "INSERT OR IGNORE INTO sweep_trials (sweep_id, trial_index, overrides_json) VALUES (?, ?, ?)");
    for (const auto& [index, overrides] : trials) {
      s.reset();
      s.bind(1, sweep).bind(2, index).bind(3, overrides).run();
    }
  });
}

std::vector<SweepTrialRecord> Store::sweep_trials(int64_t sweep) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<SweepTrialRecord> out;
    Statement q(c,
                "SELECT t.trial_index, t.overrides_json, t.run_id, t.pid, r.status, r.reason, t.job_id, t.job_state, "
                "t.journal_offset "
                "FROM sweep_trials t LEFT JOIN runs r ON r.id = t.run_id WHERE t.sweep_id = ? ORDER BY t.trial_index");
    q.bind(1, sweep);
    while (q.step()) {
      SweepTrialRecord t;
      t.index = q.int64(0);
      t.overrides_json = q.text(1);
      t.run_id = q.optional_int64(2);
      t.pid = q.optional_int64(3);
      if (!q.is_null(4)) t.status = status_from_name(q.text(4));
      t.reason = q.text(5);
      t.job_id = q.text(6);
      t.job_state = q.text(7);
      t.journal_offset = q.int64(8);
      out.push_back(std::move(t));
    }
    return out;
  });
}

void Store::set_trial_pid(int64_t sweep, int64_t index, std::optional<int64_t> pid) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweep_trials SET pid = ? WHERE sweep_id = ? AND trial_index = ?");
    s.bind(1, pid).bind(2, sweep).bind(3, index).run();
  });
}

void Store::set_trial_job(int64_t sweep, int64_t index, const std::string& job_id, const std::string& job_state) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweep_trials SET job_id = ?, job_state = ? WHERE sweep_id = ? AND trial_index = ?");
    s.bind_text_or_null(1, job_id).bind_text_or_null(2, job_state).bind(3, sweep).bind(4, index).run();
  });
}

void Store::set_trial_journal_offset(int64_t sweep, int64_t index, int64_t offset) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweep_trials SET journal_offset = ? WHERE sweep_id = ? AND trial_index = ?");
    s.bind(1, offset).bind(2, sweep).bind(3, index).run();
  });
}

std::string Store::sweep_spec_json(int64_t run) const {
  const auto r = find_run(run);
  if (!r || !r->sweep_id) return {};
  const auto sweep = find_sweep(std::to_string(*r->sweep_id));
  return sweep ? sweep->spec_json : std::string();
}

void Store::set_sweep_spec(int64_t sweep, const std::string& spec_json) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweeps SET spec_json = ? WHERE id = ?");
    s.bind(1, spec_json).bind(2, sweep).run();
  });
}

void Store::set_sweep_status(int64_t sweep, const std::string& status) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE sweeps SET status = ? WHERE id = ?");
    s.bind(1, status).bind(2, sweep).run();
  });
}

int64_t Store::create_sweep(const std::string& name, const std::string& spec_json) {
  Conn c{db_.get(), &path_};
  return write_transaction(c, [&] {
    {
      Statement q(c, "SELECT id FROM sweeps WHERE name = ?");
      q.bind(1, name);
      if (q.step())
        throw StoreError(fmt::format("results store {}: a sweep named '{}' exists already (id {})", path_.string(),
                                     name, q.int64(0)));
    }
    Statement s(c, "INSERT INTO sweeps (name, status, created_at, spec_json) VALUES (?, 'RUNNING', ?, ?)");
    s.bind(1, name).bind(2, now_iso()).bind(3, spec_json).run();
    return static_cast<int64_t>(sqlite3_last_insert_rowid(c.db));
  });
}

std::optional<SweepRecord> Store::find_sweep(const std::string& id_or_name) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&]() -> std::optional<SweepRecord> {
    // A name wins over an id so that a sweep named "3" stays reachable.
    Statement q(c,
                "SELECT id, name, status, created_at, spec_json FROM sweeps WHERE name = ?1 "
                "UNION ALL SELECT id, name, status, created_at, spec_json FROM sweeps "
                "WHERE CAST(id AS TEXT) = ?1 LIMIT 1");
    q.bind(1, id_or_name);
    if (!q.step()) return std::nullopt;
    return SweepRecord{q.int64(0), q.text(1), q.text(2), q.text(3), q.text(4)};
  });
}

void Store::set_run_sweep(int64_t run, int64_t sweep) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "UPDATE runs SET sweep_id = ? WHERE id = ?");
    s.bind(1, sweep).bind(2, run).run();
    if (sqlite3_changes(c.db) == 0) throw StoreError(fmt::format("results store {}: no run {}", path_.string(), run));
  });
}

}  // namespace jepa::store
