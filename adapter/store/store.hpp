#pragma once
// The PostgreSQL feature store: one Session (the connection and its one boundary, transact) and
// the repositories on it, one per stage of the data flow.

#include <string>

#include "adapter/store/admin.hpp"
#include "adapter/store/alerts.hpp"
#include "adapter/store/audit_log.hpp"
#include "adapter/store/cohort.hpp"
#include "adapter/store/ingest.hpp"
#include "adapter/store/monitoring.hpp"
#include "adapter/store/scores.hpp"
#include "adapter/store/session.hpp"
#include "adapter/store/writeback_state.hpp"

namespace fra::store {

struct Store {
  /// Connects. Throws StoreError (unavailable or refused) with the server's first line.
  explicit Store(const std::string& url, const std::string& application_name = "fhir-risk-adapter")
      : session(url, application_name) {}
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  Session session;
  AuditLog audit{session};                   ///< the only writer of audit_log; verification
  Ingest ingest{session, audit};             ///< pages, deletions, cursors
  Cohort cohort{session, audit};             ///< the cohort and its refresh queue
  Scores scores{session, audit};             ///< the scoring queue, stored inputs, scores
  WritebackState writeback{session, audit};  ///< what the sinks still have to deliver
  Alerts alerts{session, audit};             ///< alerts raised and still to send
  Monitoring monitoring{session};            ///< what production shows of a model (read only)
  Admin admin{session, audit};               ///< migrations, key fingerprint, purge, rekey
};

}  // namespace fra::store
