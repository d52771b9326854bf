#include "adapter/source/system_search.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <future>

#include "adapter/source/fetch_page.hpp"
#include "adapter/source/map_page.hpp"
#include "fhir/resource_types.hpp"

namespace fra::source {
namespace {

// A search page and the rows it maps to.
struct Mapped {
  fhir::SearchPage page;
  store::Page rows;
};

}  // namespace

SystemSearch::SystemSearch(fhir::Client& client, store::Ingest& ingest,
                           const mapping::Pseudonymizer& ps,
                           const mapping::ObservationCatalog& catalog, SearchOptions options)
    : client_(client),
      ahead_(std::make_unique<fhir::Client>(client.options())),
      ingest_(ingest),
      ps_(ps),
      catalog_(catalog),
      options_(options),
      deletions_(client, ingest, ps, options) {
  ahead_->on_retry(client.on_retry());
}

std::vector<PullReport> SystemSearch::pull(const std::atomic<bool>* stop) {
  std::vector<PullReport> out;
  for (const auto& t : fhir::read_types(catalog_.conditions)) {
    out.push_back(pull_type(std::string(t.name), stop));
    if (stopping(stop)) break;
  }
  return out;
}

PullReport SystemSearch::pull_type(const std::string& type, const std::atomic<bool>* stop) {
  const auto t0 = std::chrono::steady_clock::now();
  PullReport rep;
  rep.origin = rep.resource_type = type;
  rep.cursor_before = ingest_.cursor(type);
  std::string url = fmt::format("{}?_sort=_lastUpdated&_count={}", type, options_.page_size);
  // Search from a little before the cursor: a server whose clock or commit order lags can give a
  // resource an earlier lastUpdated than one already seen. Versions already stored are skipped.
  if (rep.cursor_before)
    url += "&_lastUpdated=ge" +
           search_instant(*rep.cursor_before - options_.overlap_seconds * 1000000LL);
  // A page is fetched and mapped on another connection and thread while the one before is
  // stored: the store, the mapping and the server work at the same time.
  auto fetch_and_map = [this, &type](fhir::Client& client, const std::string& at) {
    Mapped m{fetch_page(client, at), {}};
    m.rows = map_page(type, m.page, ps_, catalog_);
    return m;
  };
  Mapped current = fetch_and_map(client_, url);
  for (;;) {
    const std::string next = current.page.next.value_or("");
    std::future<Mapped> ahead;
    if (!next.empty())
      ahead = std::async(std::launch::async, [&, next] { return fetch_and_map(*ahead_, next); });
    store::PageCounts c = ingest_.store_page(current.rows);
    ++rep.pages;
    rep.fetched += static_cast<long>(current.page.resources.size());
    rep.counts.stored += c.stored;
    rep.counts.unchanged += c.unchanged;
    rep.counts.dead_lettered += c.dead_lettered;
    rep.counts.ignored += c.ignored;
    rep.counts.enqueued += c.enqueued;
    spdlog::debug("{} page {}: {} resources, {} stored, {} unchanged, {} dead-lettered", type,
                  rep.pages, current.page.resources.size(), c.stored, c.unchanged, c.dead_lettered);
    if (next.empty()) break;
    current = ahead.get();
    if (stopping(stop)) break;  // the cursor keeps the last page stored; the next run goes on
  }
  rep.cursor_after = ingest_.cursor(type);
  // Deletions are followed from where a complete search ended: a search cut short by a stop
  // would start the history there and bring tombstones of resources never stored.
  if (fhir::deletions_followed(type) && !stopping(stop))
    rep.deleted = deletions_.follow(type, rep.cursor_after);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

}  // namespace fra::source
