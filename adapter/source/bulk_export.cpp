#include "adapter/source/bulk_export.hpp"

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>

#include "fhir/resource_types.hpp"

namespace fra::source {
namespace {

// A folder of its own in /tmp, removed with everything in it when it goes out of scope.
class ScratchFolder {
 public:
  ScratchFolder() {
    char tmpl[] = "/tmp/fra-export.XXXXXX";
    if (::mkdtemp(tmpl) == nullptr)
      throw std::runtime_error("cannot make a folder for the export's files in /tmp");
    path_ = tmpl;
  }
  ~ScratchFolder() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchFolder(const ScratchFolder&) = delete;
  ScratchFolder& operator=(const ScratchFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

std::vector<PullReport> BulkExport::pull(const std::atomic<bool>* stop) {
  ScratchFolder scratch;
  std::vector<std::string> types;
  for (const auto& t : fhir::read_types(catalog_.conditions)) types.emplace_back(t.name);
  exported_ =
      fhir::run_bulk_export(client_, kickoff_, types, scratch.path(), 3600,
                            [](const std::string& p) { spdlog::info("bulk export: {}", p); });
  auto reports = NdjsonFiles(scratch.path(), writers_, ps_, catalog_, batch_, progress_).pull(stop);
  // The store now holds the server as of the export: the next sync starts there.
  if (exported_->transaction_time > 0 && !stopping(stop))
    for (const auto& t : types) writers_.front()->advance_cursor(t, exported_->transaction_time);
  return reports;
}

}  // namespace fra::source
