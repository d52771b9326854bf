#include "adapter/store/ingest.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>

#include "adapter/store/sql_values.hpp"
#include "adapter/store/statements.hpp"

namespace fra::store {
namespace {

using detail::append_json_string;
using detail::to_hex;
using fhir::Micros;

std::string version_of(const mapping::Version& v) {
  return v.version_id.empty() ? fhir::format_instant(v.last_updated) : v.version_id;
}

// A page's rows as the JSON arrays ingest_page reads with json_to_recordset: one parameter per
// kind of row, whatever the page's size. Written straight into the arrays (no string a field):
// pseudonyms, hex and numbers need no escaping; text does.
struct PageJson {
  std::string versions = "[", patients = "[", encounters = "[", values = "[", conditions = "[",
              dead = "[";
  int count = 0;

  static auto to(std::string& a) { return std::back_inserter(a); }
  static void open_row(std::string& a) { a += a.size() > 1 ? ",{" : "{"; }
  static void text(std::string& a, const char* name, std::string_view v) {
    fmt::format_to(to(a), "\"{}\":", name);
    append_json_string(a, v);
    a += ',';
  }
  template <typename T>
  static void number(std::string& a, const char* name, const std::optional<T>& v) {
    if (v)
      fmt::format_to(to(a), "\"{}\":{},", name, *v);
    else
      fmt::format_to(to(a), "\"{}\":null,", name);
  }
  static void close_row(std::string& a) { a.back() = '}'; }

  void version(std::string_view type, const mapping::Version& v, std::string_view version_id,
               const mapping::Pseudonym& patient, bool has_values) {
    auto& a = versions;
    open_row(a);
    fmt::format_to(to(a), R"("ord":{},"type":"{}","key":"{}",)", count++, type, v.key.hex);
    text(a, "version", version_id);
    fmt::format_to(to(a), R"("updated":{},"sealed":"{}","patient":"{}","has_values":{}}})",
                   v.last_updated, to_hex(v.sealed), patient.hex, has_values);
  }
};

void add_patient(PageJson& j, const mapping::PatientRecord& p) {
  const std::string version = version_of(p.version);
  j.version("Patient", p.version, version, p.version.key, false);
  auto& a = j.patients;
  PageJson::open_row(a);
  fmt::format_to(PageJson::to(a), R"("key":"{}","sealed":"{}",)", p.version.key.hex,
                 to_hex(p.sealed_reference));
  PageJson::text(a, "version", version);
  PageJson::number(a, "birth_year", p.birth_year);
  if (p.sex) PageJson::text(a, "sex", *p.sex);
  PageJson::close_row(a);
}

void add_observation(PageJson& j, const mapping::ObservationRecord& o) {
  const std::string version = version_of(o.version);
  const int ord = j.count;  // the values name their Observation by its version's row
  j.version("Observation", o.version, version, o.patient, !o.values.empty());
  auto& a = j.values;
  for (const auto& v : o.values) {
    PageJson::open_row(a);
    fmt::format_to(PageJson::to(a), R"("ord":{},"effective":{},)", ord, o.effective);
    if (v.value_code.empty())
      fmt::format_to(PageJson::to(a), R"("value":{:.17g},)", v.value);
    else
      PageJson::text(a, "value_code", v.value_code);
    PageJson::text(a, "code", v.code);
    PageJson::text(a, "unit", v.unit);
    PageJson::close_row(a);
  }
}

void add_encounter(PageJson& j, const mapping::EncounterRecord& e) {
  const std::string version = version_of(e.version);
  j.version("Encounter", e.version, version, e.patient, false);
  auto& a = j.encounters;
  PageJson::open_row(a);
  fmt::format_to(PageJson::to(a), R"("key":"{}","patient":"{}","counts":{},)", e.version.key.hex,
                 e.patient.hex, e.counts);
  PageJson::text(a, "version", version);
  PageJson::text(a, "status", e.status);
  PageJson::text(a, "class_code", e.class_code);
  PageJson::number(a, "start", e.start);
  PageJson::number(a, "stop", e.end);
  fmt::format_to(PageJson::to(a), R"("emergent":{},)", e.emergent);
  PageJson::close_row(a);
}

void add_condition(PageJson& j, const mapping::ConditionRecord& c) {
  const std::string version = version_of(c.version);
  j.version("Condition", c.version, version, c.patient, !c.codes.empty());
  auto& a = j.conditions;
  for (const auto& code : c.codes) {
    PageJson::open_row(a);
    fmt::format_to(PageJson::to(a), R"("key":"{}","patient":"{}","counts":{},"active":{},)",
                   c.version.key.hex, c.patient.hex, c.counts, c.active);
    PageJson::text(a, "version", version);
    PageJson::text(a, "code", code);
    PageJson::number(a, "onset", c.onset);
    PageJson::number(a, "abatement", c.abatement);
    PageJson::close_row(a);
  }
}

// `ord`: the dead letter's place in the page, the order ingest_dead_letters stores them in.
void add_dead_letter(PageJson& j, const DeadLetter& d, int ord) {
  auto& a = j.dead;
  PageJson::open_row(a);
  fmt::format_to(PageJson::to(a), R"("ord":{},)", ord);
  PageJson::text(a, "type", d.resource_type);
  if (d.key) PageJson::text(a, "key", d.key->hex);
  PageJson::text(a, "version", d.version_id);
  PageJson::text(a, "reason_code", d.error.code);
  PageJson::text(a, "reason", d.error.message);
  PageJson::text(a, "pointer", d.error.pointer);
  if (!d.sealed.empty()) PageJson::text(a, "sealed", to_hex(d.sealed));
  PageJson::close_row(a);
}

void add_rows(PageJson& j, const Page& page) {
  for (const auto& p : page.patients) add_patient(j, p);
  for (const auto& o : page.observations) add_observation(j, o);
  for (const auto& e : page.encounters) add_encounter(j, e);
  for (const auto& c : page.conditions) add_condition(j, c);
  int ord = 0;
  for (const auto& d : page.dead_letters) add_dead_letter(j, d, ord++);
  for (auto* a : {&j.versions, &j.patients, &j.encounters, &j.values, &j.conditions, &j.dead})
    *a += ']';
}

// The stripes as a PostgreSQL int[] literal, ascending (ingest_lock takes them in that order).
std::string stripe_array(const std::array<bool, kLockStripes>& held) {
  std::string a = "{";
  for (int s = 0; s < kLockStripes; ++s)
    if (held[s]) a += fmt::format("{}{}", a.size() > 1 ? "," : "", s);
  return a + "}";
}

const std::string& all_stripes() {
  static const std::string all = [] {
    std::array<bool, kLockStripes> held{};
    held.fill(true);
    return stripe_array(held);
  }();
  return all;
}

// The stripes of every resource a page stores or dead-letters.
std::string stripes_of(const Page& page) {
  std::array<bool, kLockStripes> held{};
  for (const auto& p : page.patients) held[lock_stripe(p.version.key)] = true;
  for (const auto& o : page.observations) held[lock_stripe(o.version.key)] = true;
  for (const auto& e : page.encounters) held[lock_stripe(e.version.key)] = true;
  for (const auto& c : page.conditions) held[lock_stripe(c.version.key)] = true;
  for (const auto& d : page.dead_letters)
    if (d.key) held[lock_stripe(*d.key)] = true;
  return stripe_array(held);
}

template <typename T>
void deal(std::vector<T>& from, std::vector<Page>& parts, std::vector<T> Page::*field,
          const auto& key_of) {
  const auto n = static_cast<int>(parts.size());
  for (auto& x : from) {
    const auto* key = key_of(x);
    (parts[key != nullptr ? lock_stripe(*key) % n : 0].*field).push_back(std::move(x));
  }
}

}  // namespace

static_assert((kLockStripes & (kLockStripes - 1)) == 0, "lock_stripe masks by kLockStripes - 1");

int lock_stripe(const mapping::Pseudonym& key) {
  // Pseudonyms are lower-case hex (mapping::to_hex); the mask keeps anything else in range.
  const char c = key.hex.empty() ? '0' : key.hex[0];
  return (c <= '9' ? c - '0' : c - 'a' + 10) & (kLockStripes - 1);
}

std::vector<Page> split_by_stripe(Page page, int parts) {
  std::vector<Page> out(static_cast<std::size_t>(std::max(parts, 1)));
  for (auto& p : out) p.resource_type = page.resource_type;
  out[0].ignored = page.ignored;
  out[0].max_last_updated = page.max_last_updated;
  auto version_key = [](const auto& r) { return &r.version.key; };
  deal(page.patients, out, &Page::patients, version_key);
  deal(page.observations, out, &Page::observations, version_key);
  deal(page.encounters, out, &Page::encounters, version_key);
  deal(page.conditions, out, &Page::conditions, version_key);
  deal(page.dead_letters, out, &Page::dead_letters,
       [](const DeadLetter& d) { return d.key ? &*d.key : nullptr; });
  return out;
}

std::optional<Micros> Ingest::cursor(std::string_view key) {
  return session_.transact("reading the cursor", [&](pqxx::work& w) -> std::optional<Micros> {
    auto r = session_.run(w, "cursor_read", std::string(key));
    if (r.empty()) return std::nullopt;
    return r[0][0].as<Micros>();
  });
}

void Ingest::advance_cursor(std::string_view key, Micros t) {
  // A cursor set without a page (after a bulk export, or where a type's history starts) is an
  // event of its own: the search skips what is before it.
  session_.transact("moving the cursor", [&](pqxx::work& w) {
    session_.run(w, "cursor_advance", std::string(key), t);
    audit_.append(w, "cursor", key, fmt::format(R"({{"cursor": "{}"}})", fhir::format_instant(t)));
  });
}

int Ingest::delete_resources(std::string_view type,
                             const std::vector<std::pair<mapping::Pseudonym, Micros>>& gone,
                             std::string_view cursor_key, Micros cursor) {
  std::string rows = "[";
  for (const auto& [key, at] : gone)
    rows += fmt::format(R"({}{{"key":"{}","at":{}}})", rows.size() > 1 ? "," : "", key.hex, at);
  rows += ']';
  const std::string t(type);
  return session_.transact(fmt::format("removing deleted {} resources", t), [&](pqxx::work& w) {
    session_.run(w, "ingest_lock", all_stripes());
    int held = gone.empty() ? 0 : session_.run(w, "ingest_delete", t, rows)[0][0].as<int>();
    if (cursor > 0) session_.run(w, "cursor_advance", std::string(cursor_key), cursor);
    if (held > 0) audit_.append(w, "delete", t, fmt::format(R"({{"deleted": {}}})", held));
    return held;
  });
}

PageCounts Ingest::store_in(pqxx::work& w, const Page& page, const std::string& stripes) {
  PageJson j;
  add_rows(j, page);
  const int resources = j.count + static_cast<int>(page.dead_letters.size());
  PageCounts c;
  session_.run(w, "ingest_lock", stripes);
  std::vector<std::string> dead_ids;
  if (!page.dead_letters.empty())
    for (const auto& row : session_.run(w, "ingest_dead_letters", j.dead))
      dead_ids.push_back(row[0].as<std::string>());
  c.dead_lettered = static_cast<int>(dead_ids.size());
  auto r = session_.run(w, "ingest_page", j.versions, j.patients, j.encounters, j.values,
                        page.resource_type, page.max_last_updated, j.conditions);
  c.stored = r[0][0].as<int>();
  c.enqueued = r[0][1].as<int>();
  c.unchanged = resources - c.dead_lettered - c.stored;
  c.ignored = page.ignored;
  // The audit events last: the first one locks the chain's head until commit, so taken before
  // the page it would make every other writer wait through this page.
  if (!dead_ids.empty()) audit_.record_dead_letters(w, detail::plain_array(dead_ids));
  audit_.append(
      w, "ingest", page.resource_type,
      fmt::format(
          R"({{"resources": {}, "stored": {}, "unchanged": {}, "dead_lettered": {}, "cursor": "{}"}})",
          resources, c.stored, c.unchanged, c.dead_lettered,
          page.max_last_updated > 0 ? fhir::format_instant(page.max_last_updated) : ""));
  return c;
}

PageCounts Ingest::store_page(const Page& page) {
  return session_.transact(fmt::format("storing a {} page", page.resource_type),
                           [&](pqxx::work& w) { return store_in(w, page, stripes_of(page)); });
}

RefreshCounts Ingest::refresh_patient(const PatientRefresh& r) {
  return session_.transact("storing a patient's refresh", [&](pqxx::work& w) {
    RefreshCounts c;
    // Every stripe: what the server no longer returns is known only inside the transaction.
    c.page = store_in(w, r.page, all_stripes());
    // Tombstones carry the refresh's instant: a copy the server returns later is newer.
    std::map<std::string, std::string> gone;  // type -> [{key, at}]
    const fhir::Micros now = fhir::now_micros();
    for (const auto& row : session_.run(w, "cohort_missing", r.patient.hex, r.window_start,
                                        detail::plain_array(r.returned))) {
      auto& rows = gone[row[0].as<std::string>()];
      rows += fmt::format(R"({}{{"key":"{}","at":{}}})", rows.empty() ? "[" : ",",
                          row[1].as<std::string>(), now);
    }
    for (auto& [type, rows] : gone) {
      rows += ']';
      const int held = session_.run(w, "ingest_delete", type, rows)[0][0].as<int>();
      if (held > 0) audit_.append(w, "delete", type, fmt::format(R"({{"deleted": {}}})", held));
      c.deleted += held;
    }
    session_.run(w, "cohort_release", r.patient.hex, r.due_in_seconds, r.requests);
    return c;
  });
}

}  // namespace fra::store
