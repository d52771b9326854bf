#include "adapter/source/ndjson_files.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "adapter/source/map_page.hpp"
#include "fhir/ndjson.hpp"
#include "fhir/resource_types.hpp"
#include "fhir/resources.hpp"
#include "mapping/rows.hpp"

namespace fra::source {
namespace {

namespace fs = std::filesystem;

// Batches handed from the reading thread to the storing one; at most two wait, so memory stays
// bounded whatever the size of the files.
class BatchQueue {
 public:
  struct Batch {
    store::Page page;
    long lines = 0;  // lines of the file read so far
  };

  /// Waits for room; false when the consumer gave up.
  bool push(Batch b) {
    std::unique_lock lock(m_);
    room_.wait(lock, [&] { return q_.size() < 2 || cancelled_; });
    if (cancelled_) return false;
    q_.push_back(std::move(b));
    ready_.notify_one();
    return true;
  }
  /// Waits for a batch; nullopt once the producer is done and everything was taken.
  std::optional<Batch> pop() {
    std::unique_lock lock(m_);
    ready_.wait(lock, [&] { return !q_.empty() || done_; });
    if (q_.empty()) return std::nullopt;
    Batch b = std::move(q_.front());
    q_.pop_front();
    room_.notify_one();
    return b;
  }
  void finish(std::exception_ptr error = nullptr) {
    std::lock_guard lock(m_);
    done_ = true;
    error_ = error;
    ready_.notify_all();
  }
  void cancel() {
    std::lock_guard lock(m_);
    cancelled_ = true;
    room_.notify_all();
  }
  std::exception_ptr error() {
    std::lock_guard lock(m_);
    return error_;
  }

 private:
  std::mutex m_;
  std::condition_variable ready_, room_;
  std::deque<Batch> q_;
  bool done_ = false, cancelled_ = false;
  std::exception_ptr error_;
};

// Reads and maps one file into batches of `batch` lines (the producer side).
void read_file(std::istream& in, PullReport& rep, const mapping::Pseudonymizer& ps,
               const mapping::ObservationCatalog& catalog, std::size_t batch, BatchQueue& queue) {
  std::string line;
  BatchQueue::Batch b;
  std::size_t in_batch = 0;
  auto hand_over = [&] {
    if (in_batch == 0) return true;
    b.page.resource_type = rep.resource_type;
    b.page.max_last_updated = 0;  // a backfill does not move the sync cursors
    b.lines = rep.fetched;
    in_batch = 0;
    return queue.push(std::exchange(b, BatchQueue::Batch{}));
  };
  bool too_long = false;
  while (fhir::next_ndjson_line(in, line, too_long)) {
    if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++rep.fetched;
    ++in_batch;
    const std::string type_or_file = rep.resource_type.empty() ? rep.origin : rep.resource_type;
    if (too_long) {
      b.page.dead_letters.push_back(
          {type_or_file,
           std::nullopt,
           fmt::format("{}:{}", rep.origin, rep.fetched),
           make_error("too-large",
                      fmt::format("line is longer than {} bytes", fhir::kMaxNdjsonLineBytes)),
           {}});
    } else {
      // A document per line: a reused one would keep every line's memory in its pool.
      rapidjson::Document doc;
      doc.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
      if (doc.HasParseError() || !doc.IsObject()) {
        std::string why = doc.HasParseError() ? rapidjson::GetParseError_En(doc.GetParseError())
                                              : "not an object";
        b.page.dead_letters.push_back(
            {type_or_file,
             std::nullopt,
             fmt::format("{}:{}", rep.origin, rep.fetched),
             make_error("not-json", fmt::format("line is not a JSON resource: {}", why)),
             {}});
      } else {
        if (rep.resource_type.empty()) {
          rep.resource_type = fhir::resource_type_of(doc);
          if (!fhir::is_read_type(
                  rep.resource_type)) {  // a type the adapter has no use for: skip the file
            rep.resource_type =
                mapping::valid_utf8(rep.resource_type) && rep.resource_type.size() <= 64
                    ? rep.resource_type
                    : "(unknown)";
            rep.skipped = true;
            return;
          }
        }
        map_resource(rep.resource_type, doc, ps, catalog, b.page);
      }
    }
    if (in_batch >= batch && !hand_over()) return;
  }
  hand_over();
}

}  // namespace

std::vector<PullReport> NdjsonFiles::pull(const std::atomic<bool>* stop) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".ndjson")
      files.push_back(entry.path());
  if (ec)
    throw std::runtime_error(fmt::format("{}: cannot read the folder: {}", dir_, ec.message()));
  std::sort(files.begin(), files.end());

  std::vector<PullReport> reports;
  for (const auto& path : files) {
    if (stopping(stop)) break;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read", path.string()));
    PullReport rep;
    rep.origin = path.filename().string();
    if (!mapping::valid_utf8(rep.origin)) rep.origin = "(file name not UTF-8)";
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };

    // One thread reads, parses and maps the next batch while this one stores the current.
    BatchQueue queue;
    std::thread reader([&] {
      try {
        read_file(in, rep, ps_, catalog_, batch_, queue);
        queue.finish();
      } catch (...) {
        queue.finish(std::current_exception());
      }
    });
    store::PageCounts counts;
    try {
      while (auto b = queue.pop()) {
        auto c = ingest_.store_page(b->page);
        ++rep.pages;
        counts.stored += c.stored;
        counts.unchanged += c.unchanged;
        counts.dead_lettered += c.dead_lettered;
        counts.ignored += c.ignored;
        counts.enqueued += c.enqueued;
        if (progress_) progress_(rep.origin, b->page.resource_type, b->lines, elapsed());
      }
    } catch (...) {
      queue.cancel();
      reader.join();
      throw;
    }
    reader.join();
    if (auto error = queue.error()) std::rethrow_exception(error);
    rep.counts = counts;
    rep.seconds = elapsed();
    reports.push_back(rep);
  }
  return reports;
}

}  // namespace fra::source
