#pragma once
// The ingest repository: pages of mapped resources, deletions and the sync cursors, each in
// one transaction with its audit event.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "adapter/store/audit_log.hpp"
#include "adapter/store/session.hpp"
#include "fhir/datetime.hpp"
#include "fhir/result.hpp"
#include "mapping/rows.hpp"

namespace fra::store {

/// A resource that could not be mapped: kept by type, pseudonym and reason only.
struct DeadLetter {
  std::string resource_type;
  std::optional<mapping::Pseudonym> key;
  std::string version_id;
  fra::Error error;
  std::vector<std::uint8_t> sealed;  ///< "<type>/<id>" sealed, for `rekey`; empty without an id
};

/// Everything one search page produced, mapped.
struct Page {
  std::string resource_type;
  std::vector<mapping::PatientRecord> patients;
  std::vector<mapping::ObservationRecord> observations;
  std::vector<mapping::EncounterRecord> encounters;
  std::vector<mapping::ConditionRecord> conditions;
  std::vector<DeadLetter> dead_letters;
  int ignored = 0;                    ///< resources no feature reads (counted, never dead letters)
  fhir::Micros max_last_updated = 0;  ///< the cursor this page lets us reach
};

struct PageCounts {
  int stored = 0;     ///< new resources or new versions
  int unchanged = 0;  ///< versions already stored (overlap, re-fetch)
  int dead_lettered = 0;
  int enqueued = 0;  ///< patients newly put on the scoring queue
  int ignored = 0;   ///< resources no feature reads
};

/// One patient's refresh by a per-patient sync (source::PatientSync).
struct PatientRefresh {
  Page page;  ///< everything the server returned for the patient, mapped (no cursor)
  mapping::Pseudonym patient;
  fhir::Micros window_start = 0;      ///< the searches' `date=ge`
  std::vector<std::string> returned;  ///< keys of the Observations and Encounters returned
  int requests = 0;                   ///< FHIR requests the refresh took
  int due_in_seconds = 0;             ///< until the patient's next refresh
};

struct RefreshCounts {
  PageCounts page;
  int deleted = 0;  ///< held resources inside the window the server no longer returned
};

/// Ingest takes turns by stripes of the resource key space. A transaction that stores or removes
/// resources first locks the stripes of their keys (a pseudonym's first hex digit: 16 stripes),
/// in ascending order, so no two transactions store versions of one resource at once (a page's
/// statement reads the rows it replaces as they were when it began), while transactions on
/// disjoint stripes, such as a backfill's writers, run side by side.
inline constexpr int kLockStripes = 16;
int lock_stripe(const mapping::Pseudonym& key);

/// Splits a page into `parts` pages: a resource (or dead letter) goes to part
/// lock_stripe(key) % parts; a dead letter without a key, the count of ignored resources and the
/// cursor go to part 0. The page's order is kept within each part.
std::vector<Page> split_by_stripe(Page page, int parts);

class Ingest {
 public:
  Ingest(Session& session, AuditLog& audit) : session_(session), audit_(audit) {}

  /// The cursor of a resource type (or "<type>/_history"), nullopt before the first sync.
  std::optional<fhir::Micros> cursor(std::string_view key);
  /// Moves a cursor forward to `t` (never back), audited: after a bulk export that reflects
  /// the server as of `t`, or where a type's history starts.
  void advance_cursor(std::string_view key, fhir::Micros t);
  /// Removes deleted resources of a type (their rows, keeping a tombstone version so that an
  /// older copy seen later is not taken back), queues their patients, and moves `cursor_key` to
  /// `cursor` (0: leaves it), in one transaction. Returns how many of them the store held.
  int delete_resources(std::string_view resource_type,
                       const std::vector<std::pair<mapping::Pseudonym, fhir::Micros>>& gone,
                       std::string_view cursor_key, fhir::Micros cursor);
  /// Stores a page and advances the cursor in the same transaction.
  PageCounts store_page(const Page& page);
  /// Stores a patient's refresh, removes what the server no longer returns inside the window
  /// (tombstones, rescore) and releases the patient's lease with its next due time, in one
  /// transaction.
  RefreshCounts refresh_patient(const PatientRefresh& r);

 private:
  /// `stripes`: the lock stripes to hold, a PostgreSQL int[] literal in ascending order.
  PageCounts store_in(pqxx::work& w, const Page& page, const std::string& stripes);

  Session& session_;
  AuditLog& audit_;
};

}  // namespace fra::store
