// `fhir-risk-adapter monitor report`: the model's monitoring report from the store, as one
// self-contained HTML page or as JSON (docs/operations.md#monitoring).
#include <fmt/format.h>

#include <cstdio>
#include <fstream>

#include "adapter/app/commands.hpp"
#include "adapter/app/failure.hpp"
#include "adapter/app/setup.hpp"
#include "adapter/monitor/monitor.hpp"
#include "adapter/monitor/report_html.hpp"

namespace fra::app {

int monitor_report(const std::string& file, const std::string& output, const std::string& since,
                   const std::string& format) {
  auto cfg = load_config(file);
  if (!cfg) return kExitConfig;
  auto model = model_package(*cfg);
  if (!model) return kExitConfig;
  monitor::Options o;
  o.now = fhir::now_micros();
  o.since = o.now - 91LL * 86400 * 1000000;  // a quarter by default
  if (!since.empty()) {
    auto t = fhir::parse_datetime(since);
    if (!t) {
      error_line(fmt::format("--since: '{}' is not a date (YYYY-MM-DD)", since));
      return kExitUsage;
    }
    o.since = *t;
  }
  try {
    auto features = sync::bind_model(*model, cfg->features.definitions, cfg->features.catalog);
    store::Store db(cfg->database.url);
    if (!schema_current(db, file)) return kExitConfig;
    const auto report = monitor::compute(db, *model, features, o);
    const std::string text =
        format == "json" ? monitor::to_json(report) + "\n" : monitor::render_html(report);
    // Only a complete file takes the name asked for.
    {
      std::ofstream out(output + ".partial", std::ios::binary);
      out << text;
      if (!out) {
        error_line(fmt::format("{}: cannot write", output));
        return kExitCantCreate;
      }
    }
    if (std::rename((output + ".partial").c_str(), output.c_str()) != 0) {
      error_line(fmt::format("{}: cannot write", output));
      return kExitCantCreate;
    }
    db.session.set_actor("fhir-risk-adapter monitor report");
    db.audit.append("monitor-report", model->manifest.name,
                    fmt::format(R"({{"since": "{}", "format": "{}", "patients": {}}})",
                                report.since, format, report.patients));
    fmt::print(
        "wrote {}: {} scores of {} patients since {}, {} features compared, {} index "
        "events with a known outcome\n",
        output, report.scores, report.patients, report.since, report.drift.size(),
        report.performance.empty() ? 0 : report.performance.front().n);
  } catch (const std::invalid_argument& e) {
    error_line(e.what());
    return kExitConfig;
  } catch (const store::StoreError&) {
    return environment_failure();
  }
  return kExitOk;
}

}  // namespace fra::app
