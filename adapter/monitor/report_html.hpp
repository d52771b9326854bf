#pragma once
// The monitoring report as one HTML page that a reviewer can open offline, archive and print.

#include <string>

#include "adapter/monitor/report.hpp"

namespace fra::monitor {

/// The report as one self-contained HTML page: inline CSS, charts as inline SVG drawn here, no
/// script, font, image or link to anything outside the file. Never fails: what the report lacks
/// (no weeks, no features, no outcome known yet) is drawn as empty axes that say so.
std::string render_html(const Report& r);

}  // namespace fra::monitor
