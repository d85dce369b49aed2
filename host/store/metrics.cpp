// What runs record while they train: metric points (batched by MetricLogger), evaluations and
// artifacts, and the other trials' histories a pruner reads.
#include "store/sqlite_util.hpp"

namespace jepa::store {

using namespace detail;

TrialHistories Store::other_trials(int64_t run, const std::string& metric) const {
  TrialHistories out;
  const auto r = find_run(run);
  if (!r || !r->sweep_id) return out;
  query(
      "SELECT m.run_id, m.step, m.value FROM metrics m WHERE m.key = ? AND m.run_id IN "
      "(SELECT id FROM runs WHERE sweep_id = ? AND id != ?)",
      {metric, *r->sweep_id, run}, [&](const Row& row) { out[row.int64(0)][row.int64(1)] = row.real(2); });
  return out;
}

void Store::log_metrics(int64_t run, const std::vector<MetricPoint>& points) {
  if (points.empty()) return;
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c, "INSERT INTO metrics (run_id, key, step, value, time) VALUES (?, ?, ?, ?, ?)");
    int64_t max_step = points.front().step;
    for (const MetricPoint& p : points) {
      s.reset();
      s.bind(1, run).bind(2, p.key).bind(3, p.step).bind(4, p.value).bind(5, p.time).run();
      max_step = std::max(max_step, p.step);
    }
    Statement u(c, "UPDATE runs SET last_step = MAX(last_step, ?) WHERE id = ?");
    u.bind(1, max_step).bind(2, run).run();
  });
}

void Store::add_evaluation(int64_t run, const EvaluationRecord& e) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO evaluations (run_id, evaluator, metric, value, step, params_json, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run).bind(2, e.evaluator).bind(3, e.metric).bind(4, e.value).bind(5, e.step);
    s.bind(6, e.params_json).bind(7, now_iso()).run();
  });
}

void Store::add_artifact(int64_t run, const ArtifactRecord& a) {
  Conn c{db_.get(), &path_};
  write_transaction(c, [&] {
    Statement s(c,
                "INSERT INTO artifacts (run_id, kind, path, step, bytes, sha256, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)");
    s.bind(1, run).bind(2, a.kind).bind(3, a.path).bind(4, a.step).bind(5, a.bytes);
    s.bind_text_or_null(6, a.sha256).bind(7, a.created_at.empty() ? now_iso() : a.created_at).run();
    // A checkpoint counts as progress too (see RunRecord::last_step).
    Statement u(c, "UPDATE runs SET last_step = MAX(last_step, ?) WHERE id = ?");
    u.bind(1, a.step).bind(2, run).run();
  });
}

std::vector<MetricPoint> Store::metrics(int64_t run, const std::string& key) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<MetricPoint> out;
    // rowid breaks ties so that a step logged twice reads back in logging order.
    Statement q(c, "SELECT step, value, time FROM metrics WHERE run_id = ? AND key = ? ORDER BY step, rowid");
    q.bind(1, run).bind(2, key);
    while (q.step()) out.push_back(MetricPoint{key, q.int64(0), q.real(1), q.real(2)});
    return out;
  });
}

std::vector<EvaluationRecord> Store::evaluations(int64_t run) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<EvaluationRecord> out;
    Statement q(c,
                "SELECT evaluator, metric, value, step, params_json FROM evaluations WHERE run_id = ? "
                "ORDER BY step, rowid");
    q.bind(1, run);
    while (q.step()) out.push_back(EvaluationRecord{q.text(0), q.text(1), q.real(2), q.int64(3), q.text(4)});
    return out;
  });
}

namespace {
ArtifactRecord read_artifact(const Statement& q) {
  return ArtifactRecord{q.text(0), q.text(1), q.int64(2), q.int64(3), q.text(4), q.text(5)};
}
}  // namespace

std::vector<ArtifactRecord> Store::artifacts(int64_t run) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&] {
    std::vector<ArtifactRecord> out;
    Statement q(c,
                "SELECT kind, path, step, bytes, sha256, created_at FROM artifacts WHERE run_id = ? "
                "ORDER BY step, rowid");
    q.bind(1, run);
    while (q.step()) out.push_back(read_artifact(q));
    return out;
  });
}

std::optional<ArtifactRecord> Store::latest_artifact(int64_t run, const std::string& kind) const {
  Conn c{db_.get(), &path_};
  return with_retry(c, [&]() -> std::optional<ArtifactRecord> {
    Statement q(c,
                "SELECT kind, path, step, bytes, sha256, created_at FROM artifacts WHERE run_id = ? AND kind = ? "
                "ORDER BY step DESC, rowid DESC LIMIT 1");
    q.bind(1, run).bind(2, kind);
    if (!q.step()) return std::nullopt;
    return read_artifact(q);
  });
}

MetricLogger::MetricLogger(Recorder& store, int64_t run, size_t max_points, double max_seconds)
    : store_(store), run_(run), max_points_(max_points), max_seconds_(max_seconds), last_flush_(now_steady_seconds()) {
  pending_.reserve(std::min<size_t>(max_points_, 4096));
}

MetricLogger::~MetricLogger() {
  try {
    flush();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "warning: %zu metric points of run %lld were not saved: %s\n", pending_.size(),
                 static_cast<long long>(run_), e.what());
  } catch (...) {
    std::fprintf(stderr, "warning: %zu metric points of run %lld were not saved\n", pending_.size(),
                 static_cast<long long>(run_));
  }
}

void MetricLogger::log(const std::string& key, int64_t step, double value) {
  pending_.push_back(MetricPoint{key, step, value, now_unix_seconds()});
  if (pending_.size() >= max_points_ || now_steady_seconds() - last_flush_ >= max_seconds_) flush();
}

// On failure the points stay pending, so a later flush (or the destructor) tries again.
void MetricLogger::flush() {
  if (!pending_.empty()) store_.log_metrics(run_, pending_);
  pending_.clear();
  last_flush_ = now_steady_seconds();
}

}  // namespace jepa::store
