#pragma once
// A small kit for drawing charts as inline SVG text, for the monitoring report's HTML page
// (report_html.cpp): escaping, a plot area that maps data to pixels, axes with round ticks, and
// the marks. Header-only, as fhir/json.hpp is: a few short functions with one user.
//
// Classes the report's Chromium check (tests/check_report_chromium.py) relies on: axes and their
// labels are drawn in a group of class "axis", the text of an empty chart has class "nodata";
// the caller puts data marks in groups of class "mark".

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>

namespace fra::monitor::svg {

/// Opens the group that axes are drawn in.
inline constexpr std::string_view kAxisGroup = R"(<g class="axis" fill="#333" stroke="#444">)";

/// Appends `f` formatted with `a` to `out`.
template <typename... A>
void put(std::string& out, fmt::format_string<A...> f, A&&... a) {
  fmt::format_to(std::back_inserter(out), f, std::forward<A>(a)...);
}

/// `s` with the five characters HTML and SVG give a meaning escaped, for text and attributes.
inline std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    const char* entity = c == '&'    ? "&amp;"
                         : c == '<'  ? "&lt;"
                         : c == '>'  ? "&gt;"
                         : c == '"'  ? "&quot;"
                         : c == '\'' ? "&#39;"
                                     : nullptr;
    if (entity)
      out += entity;
    else
      out += c;
  }
  return out;
}

/// A round step (1, 2 or 5 times a power of ten) giving about `ticks` ticks up to `max`; 1 when
/// `max` is not a positive number.
inline double nice_step(double max, int ticks) {
  if (!(max > 0) || !std::isfinite(max)) return 1;
  const double raw = max / ticks, power = std::pow(10, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= raw * (1 - 1e-9)) return m * power;
  return 10 * power;
}

/// `max` rounded up to a multiple of nice_step(max, ticks); at least one step.
inline double nice_max(double max, int ticks) {
  const double step = nice_step(max, ticks);
  return std::max(step, std::ceil(max / step - 1e-9) * step);
}

/// The plot area of a chart, in pixels, and the data ranges it maps.
struct Plot {
  double left, top, width, height;
  double x0 = 0, x1 = 1, y0 = 0, y1 = 1;
  double x(double v) const { return left + (v - x0) / (x1 - x0) * width; }
  double y(double v) const { return top + height - (v - y0) / (y1 - y0) * height; }
  double right() const { return left + width; }
  double bottom() const { return top + height; }
  /// The x of a point `offset` into the i-th category (a week, a bin) of one unit each.
  double slot(size_t i, double offset = 0.5) const { return x(static_cast<double>(i) + offset); }
};

/// How the ticks of an axis read: every `step`, the value times `scale` followed by `suffix`.
struct Ticks {
  double step;
  double scale = 1;
  std::string_view suffix = "";
};

/// The label of the tick at `v`: "0.25", "20%" (never "-0").
inline std::string tick_label(double v, const Ticks& t) {
  return fmt::format("{:g}{}", std::round(v * t.scale * 1e6) / 1e6 + 0.0, t.suffix);
}

/// Opens an <svg> of `width` by `height` pixels with its id and its <title>.
inline std::string open(std::string_view id, double width, double height, std::string_view title) {
  return fmt::format(R"(<svg id="{0}" viewBox="0 0 {1} {2}" width="{1}" height="{2}" role="img" )"
                     R"(aria-labelledby="{0}-title"><title id="{0}-title">{3}</title>)",
                     id, width, height, escape(title));
}

/// A line; `attrs` (with a leading space) adds attributes.
inline void line(std::string& out, double x1, double y1, double x2, double y2,
                 std::string_view attrs = "") {
  put(out, R"(<line x1="{:.1f}" y1="{:.1f}" x2="{:.1f}" y2="{:.1f}"{}/>)", x1, y1, x2, y2, attrs);
}

/// A text at (x, y); `html` must be escaped already.
inline void text(std::string& out, double x, double y, std::string_view anchor,
                 std::string_view html, std::string_view attrs = "") {
  put(out, R"(<text x="{:.1f}" y="{:.1f}" text-anchor="{}"{}>{}</text>)", x, y, anchor, attrs,
      html);
}

/// A rectangle with a tooltip; a negative height draws nothing.
inline void rect(std::string& out, double x, double y, double w, double h, std::string_view tooltip,
                 std::string_view attrs = "") {
  put(out,
      R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}"{}><title>{}</title></rect>)", x,
      y, std::max(0.0, w), std::max(0.0, h), attrs, escape(tooltip));
}

/// A point of radius `r` with a tooltip.
inline void dot(std::string& out, double x, double y, double r, std::string_view tooltip) {
  put(out, R"(<circle cx="{:.1f}" cy="{:.1f}" r="{}"><title>{}</title></circle>)", x, y, r,
      escape(tooltip));
}

/// Calls f(v) for each multiple of `step` from `from` to `to`.
template <typename F>
void each_tick(double from, double to, double step, F&& f) {
  for (double v = std::ceil(from / step - 1e-9) * step; v <= to + step * 1e-6; v += step) f(v);
}

/// A vertical axis with grid lines across the plot and tick labels on the left; on the right
/// (for a second scale), the labels only.
inline void y_axis(std::string& out, const Plot& p, const Ticks& t, std::string_view caption,
                   bool right = false) {
  out += kAxisGroup;
  const double edge = right ? p.right() : p.left;
  each_tick(p.y0, p.y1, t.step, [&](double v) {
    if (!right) line(out, p.left, p.y(v), p.right(), p.y(v), R"( stroke="#e2e2e2")");
    text(out, edge + (right ? 8 : -8), p.y(v) + 4, right ? "start" : "end", tick_label(v, t));
  });
  line(out, edge, p.top, edge, p.bottom());
  put(out,
      R"x(<text transform="translate({:.1f},{:.1f}) rotate(-90)" text-anchor="middle">)x"
      R"x({}</text></g>)x",
      right ? p.right() + 58 : p.left - 52, p.top + p.height / 2, escape(caption));
}

/// The bottom axis of a continuous scale, with vertical grid lines.
inline void x_axis(std::string& out, const Plot& p, const Ticks& t, std::string_view caption) {
  out += kAxisGroup;
  each_tick(p.x0, p.x1, t.step, [&](double v) {
    line(out, p.x(v), p.top, p.x(v), p.bottom(), R"( stroke="#e2e2e2")");
    text(out, p.x(v), p.bottom() + 16, "middle", tick_label(v, t));
  });
  line(out, p.left, p.bottom(), p.right(), p.bottom());
  text(out, p.left + p.width / 2, p.bottom() + 36, "middle", escape(caption));
  out += "</g>";
}

/// The words of an empty chart, in the middle of its plot, on white so that no grid or
/// reference line runs through them.
inline void no_data(std::string& out, const Plot& p, std::string_view words) {
  const double x = p.left + p.width / 2, y = p.top + p.height / 2,
               w = 9 * static_cast<double>(words.size()) + 20;
  put(out, R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="28" fill="#fff"/>)", x - w / 2,
      y - 20, w);
  text(out, x, y, "middle", escape(words), R"( class="nodata" font-size="16" fill="#666")");
}

/// A legend entry above the plot at `x`, which it moves past itself: a swatch, or a line when
/// `line_style` is "solid" or "dashed".
inline void legend(std::string& out, double& x, std::string_view colour, std::string_view words,
                   std::string_view line_style = "") {
  if (line_style.empty())
    put(out, R"(<rect x="{:.1f}" y="10" width="12" height="12" fill="{}"/>)", x, colour);
  else
    line(out, x, 16, x + 18, 16,
         fmt::format(R"( stroke="{}" stroke-width="2"{})", colour,
                     line_style == "dashed" ? R"( stroke-dasharray="5 3")" : ""));
  text(out, x + 24, 20, "start", escape(words), R"( fill="#333")");
  x += 40 + 7 * static_cast<double>(words.size());
}

}  // namespace fra::monitor::svg
