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
#include <tuple>
#include <utility>

#include "adapter/source/map_page.hpp"
#include "fhir/ndjson.hpp"
#include "fhir/resource_types.hpp"
#include "fhir/resources.hpp"
#include "mapping/rows.hpp"

namespace fra::source {
namespace {

namespace fs = std::filesystem;

// Batches handed from the reading thread to one writer; at most two wait, so memory stays
// bounded whatever the size of the files.
class BatchQueue {
 public:
  struct Batch {
    store::Page page;
    long lines = 0;  // lines of the file read so far
  };

  /// Waits for room; false when the load was cancelled.
  bool push(Batch b) {
    std::unique_lock lock(m_);
    room_.wait(lock, [&] { return q_.size() < 2 || cancelled_; });
    if (cancelled_) return false;
    q_.push_back(std::move(b));
    ready_.notify_one();
    return true;
  }
  /// Waits for a batch; nullopt once the reader is done and everything was taken, or cancelled.
  std::optional<Batch> pop() {
    std::unique_lock lock(m_);
    ready_.wait(lock, [&] { return !q_.empty() || done_ || cancelled_; });
    if (q_.empty() || cancelled_) return std::nullopt;
    Batch b = std::move(q_.front());
    q_.pop_front();
    room_.notify_one();
    return b;
  }
  void finish() {
    std::lock_guard lock(m_);
    done_ = true;
    ready_.notify_all();
  }
  void cancel() {
    std::lock_guard lock(m_);
    cancelled_ = true;
    room_.notify_all();
    ready_.notify_all();
  }

 private:
  std::mutex m_;
  std::condition_variable ready_, room_;
  std::deque<Batch> q_;
  bool done_ = false, cancelled_ = false;
};

bool empty(const store::Page& p) {
  return p.patients.empty() && p.observations.empty() && p.encounters.empty() &&
         p.conditions.empty() && p.dead_letters.empty();
}

// One file's load: the reader hands over batches; each is split by lock stripe among the
// writers, each a thread with its own connection, which store their parts side by side (a
// resource always goes to the same writer, so its versions stay in file order).
class FileLoad {
 public:
  FileLoad(const std::vector<store::Ingest*>& writers, const BackfillProgress& progress,
           const std::string& origin)
      : queues_(writers.size()), progress_(progress), origin_(origin) {
    for (std::size_t w = 0; w < writers.size(); ++w)
      threads_.emplace_back([this, w, ingest = writers[w]] { write(*ingest, queues_[w]); });
  }
  FileLoad(const FileLoad&) = delete;
  FileLoad& operator=(const FileLoad&) = delete;
  ~FileLoad() {
    cancel();
    join();
  }

  /// Splits a batch among the writers; false once a writer failed.
  bool hand_over(BatchQueue::Batch b) {
    auto parts = store::split_by_stripe(std::move(b.page), static_cast<int>(queues_.size()));
    for (std::size_t w = 0; w < parts.size(); ++w)
      if (!queues_[w].push({std::move(parts[w]), b.lines})) return false;
    return true;
  }
  /// Waits for the writers; rethrows the first writer's error. Returns the counts and
  /// transactions.
  std::pair<store::PageCounts, int> finish() {
    for (auto& q : queues_) q.finish();
    join();
    if (error_) std::rethrow_exception(error_);
    return {counts_, transactions_};
  }

 private:
  void write(store::Ingest& ingest, BatchQueue& queue) {
    try {
      while (auto b = queue.pop()) {
        const bool stored = !empty(b->page);  // else at most a count of ignored lines
        store::PageCounts c;
        if (stored)
          c = ingest.store_page(b->page);
        else
          c.ignored = b->page.ignored;
        std::lock_guard lock(m_);
        transactions_ += stored ? 1 : 0;
        counts_.stored += c.stored;
        counts_.unchanged += c.unchanged;
        counts_.dead_lettered += c.dead_lettered;
        counts_.ignored += c.ignored;
        counts_.enqueued += c.enqueued;
        if (progress_ && b->lines > shown_lines_) {
          shown_lines_ = b->lines;
          progress_(origin_, b->page.resource_type, b->lines, elapsed());
        }
      }
    } catch (...) {
      {
        std::lock_guard lock(m_);
        if (!error_) error_ = std::current_exception();
      }
      cancel();
    }
  }
  void cancel() {
    for (auto& q : queues_) q.cancel();
  }
  void join() {
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  double elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }

  std::vector<BatchQueue> queues_;
  std::vector<std::thread> threads_;
  const BackfillProgress& progress_;
  const std::string& origin_;
  const std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::mutex m_;
  store::PageCounts counts_;
  int transactions_ = 0;
  long shown_lines_ = 0;
  std::exception_ptr error_;
};

// Reads and maps one file into batches of `batch` lines (the producer side).
void read_file(std::istream& in, PullReport& rep, const mapping::Pseudonymizer& ps,
               const mapping::ObservationCatalog& catalog, std::size_t batch, FileLoad& load) {
  std::string line;
  BatchQueue::Batch b;
  std::size_t in_batch = 0;
  auto hand_over = [&] {
    if (in_batch == 0) return true;
    b.page.resource_type = rep.resource_type;
    b.page.max_last_updated = 0;  // a backfill does not move the sync cursors
    b.lines = rep.fetched;
    in_batch = 0;
    return load.hand_over(std::exchange(b, BatchQueue::Batch{}));
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

    // This thread reads, parses and maps the next batch while the writers store the current.
    FileLoad load(writers_, progress_, rep.origin);
    read_file(in, rep, ps_, catalog_, batch_, load);
    std::tie(rep.counts, rep.pages) = load.finish();
    rep.seconds = elapsed();
    reports.push_back(rep);
  }
  return reports;
}

}  // namespace fra::source
