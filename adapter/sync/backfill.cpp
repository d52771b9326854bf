#include "adapter/sync/backfill.hpp"

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

#include "adapter/sync/map_page.hpp"
#include "fhir/resources.hpp"
#include "mapping/rows.hpp"

namespace fra::sync {
namespace {

namespace fs = std::filesystem;

bool is_mapped_type(const std::string& type) {
  return type == "Patient" || type == "Observation" || type == "Encounter";
}

// Reads the next line into `line`; a line longer than kMaxLineBytes is skipped to its end and
// reported through `too_long` without being held in memory. False at end of file.
bool next_line(std::istream& in, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  char buf[65536];
  bool any = false;
  for (;;) {
    in.getline(buf, sizeof buf);
    std::streamsize got = in.gcount();
    if (got == 0 && !in) return any;
    any = true;
    bool complete = !in.fail() || in.eof();
    if (complete && got > 0 && buf[got - 1] == '\0') --got;  // getline counts the delimiter
    if (!too_long) {
      line.append(buf, static_cast<std::size_t>(std::max<std::streamsize>(got, 0)));
      if (line.size() > kMaxLineBytes) {
        too_long = true;
        line.clear();
        line.shrink_to_fit();
      }
    }
    if (in.fail() && !in.eof()) {  // the buffer filled before the end of the line
      in.clear();
      continue;
    }
    return true;
  }
}

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
void read_file(std::istream& in, BackfillReport& rep, const mapping::Pseudonymizer& ps,
               const mapping::ObservationCatalog& catalog, std::size_t batch, BatchQueue& queue) {
  std::string line;
  BatchQueue::Batch b;
  std::size_t in_batch = 0;
  auto hand_over = [&] {
    if (in_batch == 0) return true;
    b.page.resource_type = rep.resource_type;
    b.page.max_last_updated = 0;  // a backfill does not move the sync cursors
    b.lines = rep.lines;
    in_batch = 0;
    return queue.push(std::exchange(b, BatchQueue::Batch{}));
  };
  bool too_long = false;
  while (next_line(in, line, too_long)) {
    if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) continue;
    ++rep.lines;
    ++in_batch;
    const std::string type_or_file = rep.resource_type.empty() ? rep.file : rep.resource_type;
    if (too_long) {
      b.page.dead_letters.push_back(
          {type_or_file,
           std::nullopt,
           fmt::format("{}:{}", rep.file, rep.lines),
           make_error("too-large", fmt::format("line is longer than {} bytes", kMaxLineBytes)),
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
             fmt::format("{}:{}", rep.file, rep.lines),
             make_error("not-json", fmt::format("line is not a JSON resource: {}", why)),
             {}});
      } else {
        if (rep.resource_type.empty()) {
          rep.resource_type = fhir::resource_type_of(doc);
          if (!is_mapped_type(
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

std::vector<BackfillReport> backfill_ndjson(const std::string& dir, store::Store& store,
                                            const mapping::Pseudonymizer& ps,
                                            const mapping::ObservationCatalog& catalog,
                                            std::size_t batch, const BackfillProgress& progress) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".ndjson")
      files.push_back(entry.path());
  if (ec)
    throw std::runtime_error(fmt::format("{}: cannot read the folder: {}", dir, ec.message()));
  std::sort(files.begin(), files.end());

  std::vector<BackfillReport> reports;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read", path.string()));
    BackfillReport rep;
    rep.file = path.filename().string();
    if (!mapping::valid_utf8(rep.file)) rep.file = "(file name not UTF-8)";
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] {
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };

    // One thread reads, parses and maps the next batch while this one stores the current.
    BatchQueue queue;
    std::thread reader([&] {
      try {
        read_file(in, rep, ps, catalog, batch, queue);
        queue.finish();
      } catch (...) {
        queue.finish(std::current_exception());
      }
    });
    store::PageCounts counts;
    try {
      while (auto b = queue.pop()) {
        auto c = store.store_page(b->page);
        counts.stored += c.stored;
        counts.unchanged += c.unchanged;
        counts.dead_lettered += c.dead_lettered;
        counts.enqueued += c.enqueued;
        if (progress) progress(rep.file, b->page.resource_type, b->lines, elapsed());
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

}  // namespace fra::sync
