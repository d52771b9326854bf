#include "adapter/sync/backfill.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

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

}  // namespace

std::vector<BackfillReport> backfill_ndjson(const std::string& dir, store::Store& store,
                                            const mapping::Pseudonymizer& ps, std::size_t batch,
                                            const BackfillProgress& progress) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file() && entry.path().extension() == ".ndjson") files.push_back(entry.path());
  if (ec) throw std::runtime_error(fmt::format("{}: cannot read the folder: {}", dir, ec.message()));
  std::sort(files.begin(), files.end());

  std::vector<BackfillReport> reports;
  rapidjson::Document doc;
  std::string line;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error(fmt::format("{}: cannot read", path.string()));
    BackfillReport rep;
    rep.file = path.filename().string();
    if (!mapping::valid_utf8(rep.file)) rep.file = "(file name not UTF-8)";
    const auto t0 = std::chrono::steady_clock::now();
    auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
    store::Page page;
    std::size_t in_page = 0;
    auto flush = [&] {
      if (in_page == 0) return;
      page.resource_type = rep.resource_type;
      page.max_last_updated = 0;  // a backfill does not move the sync cursors
      auto c = store.store_page(page);
      rep.counts.stored += c.stored;
      rep.counts.unchanged += c.unchanged;
      rep.counts.dead_lettered += c.dead_lettered;
      rep.counts.enqueued += c.enqueued;
      page = store::Page{};
      in_page = 0;
      if (progress) progress(rep.file, rep.resource_type, rep.lines, elapsed());
    };
    bool too_long = false;
    while (next_line(in, line, too_long)) {
      if (!too_long && line.find_first_not_of(" \t\r") == std::string::npos) continue;
      ++rep.lines;
      ++in_page;
      const std::string type_or_file = rep.resource_type.empty() ? rep.file : rep.resource_type;
      if (too_long) {
        page.dead_letters.push_back({type_or_file, std::nullopt, fmt::format("{}:{}", rep.file, rep.lines),
                                     make_error("too-large", fmt::format("line is longer than {} bytes", kMaxLineBytes))});
      } else {
        doc.Parse<rapidjson::kParseIterativeFlag>(line.data(), line.size());
        if (doc.HasParseError() || !doc.IsObject()) {
          std::string why = doc.HasParseError() ? rapidjson::GetParseError_En(doc.GetParseError()) : "not an object";
          page.dead_letters.push_back({type_or_file, std::nullopt, fmt::format("{}:{}", rep.file, rep.lines),
                                       make_error("not-json", fmt::format("line is not a JSON resource: {}", why))});
        } else {
          if (rep.resource_type.empty()) {
            rep.resource_type = fhir::resource_type_of(doc);
            if (!is_mapped_type(rep.resource_type)) {  // a type the adapter has no use for: skip the file
              rep.resource_type = mapping::valid_utf8(rep.resource_type) && rep.resource_type.size() <= 64
                                      ? rep.resource_type
                                      : "(unknown)";
              rep.skipped = true;
              page = store::Page{};
              in_page = 0;
              break;
            }
          }
          map_resource(rep.resource_type, doc, ps, page);
        }
      }
      if (in_page >= batch) flush();
    }
    flush();
    rep.seconds = elapsed();
    reports.push_back(rep);
  }
  return reports;
}

}  // namespace fra::sync
