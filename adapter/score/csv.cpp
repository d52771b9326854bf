#include "adapter/score/csv.hpp"

#include <fmt/format.h>

#include <charconv>
#include <limits>
#include <stdexcept>

namespace fra::score {
namespace {

std::vector<std::string> split_line(const std::string& line) {
  std::vector<std::string> cells;
  std::string cur;
  for (char c : line) {
    if (c == ',') {
      cells.push_back(cur);
      cur.clear();
    } else if (c != '\r' && c != '"') {
      cur += c;
    }
  }
  cells.push_back(cur);
  return cells;
}

float parse_cell(const std::string& cell, std::size_t line, std::size_t col) {
  std::string_view s(cell);
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  if (s.empty() || s == "NaN" || s == "nan" || s == "NA")
    return std::numeric_limits<float>::quiet_NaN();
  if (s == "inf" || s == "+inf" || s == "Infinity") return std::numeric_limits<float>::infinity();
  if (s == "-inf" || s == "-Infinity") return -std::numeric_limits<float>::infinity();
  if (s.front() == '+') s.remove_prefix(1);
  float v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) {
    return s.front() == '-' ? -std::numeric_limits<float>::infinity()
                            : std::numeric_limits<float>::infinity();
  }
  if (ec != std::errc() || ptr != s.data() + s.size())
    throw std::runtime_error(fmt::format("line {}, column {}: not a number", line, col));
  return v;
}

}  // namespace

std::vector<float> read_feature_csv(const std::string& text,
                                    const std::vector<std::string>& features, std::size_t& rows) {
  std::size_t pos = 0, line_no = 0;
  auto next_line = [&](std::string& out) {
    if (pos >= text.size()) return false;
    auto end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    out = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    return true;
  };
  std::string line;
  if (!next_line(line))
    throw std::runtime_error("the CSV is empty: a header naming the features is required");
  auto header = split_line(line);
  std::vector<std::size_t> column_of;
  for (const auto& f : features) {
    std::size_t found = header.size();
    for (std::size_t c = 0; c < header.size(); ++c)
      if (header[c] == f) found = c;
    if (found == header.size())
      throw std::runtime_error(fmt::format("the header has no column '{}'", f));
    column_of.push_back(found);
  }
  std::vector<float> out;
  rows = 0;
  while (next_line(line)) {
    if (line.empty() || line == "\r") continue;
    auto cells = split_line(line);
    if (cells.size() != header.size())
      throw std::runtime_error(fmt::format("line {}: {} cells, the header has {}", line_no,
                                           cells.size(), header.size()));
    for (std::size_t c : column_of) out.push_back(parse_cell(cells[c], line_no, c + 1));
    ++rows;
  }
  return out;
}

std::string score_csv(const Model& model, const std::vector<std::string>& features,
                      const std::string& text, const CsvOptions& options) {
  if (features.size() != model.num_features())
    throw std::runtime_error(fmt::format("{} feature names for a model of {} features",
                                         features.size(), model.num_features()));
  std::size_t rows = 0;
  auto x = read_feature_csv(text, features, rows);
  const std::size_t g = model.num_groups(), o = model.num_outputs(), f = model.num_features();
  const bool multi = g > 1;

  std::vector<std::string> header;
  switch (model.output()) {
    case Output::sigmoid:
      header.emplace_back("probability");
      break;
    case Output::softprob:
      for (std::size_t k = 0; k < g; ++k) header.push_back(fmt::format("prob_{}", k));
      break;
    case Output::softmax:
      header.emplace_back("class");
      break;
    default:
      header.emplace_back("prediction");
      break;
  }
  if (options.margin) {
    if (multi)
      for (std::size_t k = 0; k < g; ++k) header.push_back(fmt::format("margin_{}", k));
    else
      header.emplace_back("margin");
  }
  if (options.contributions) {
    for (std::size_t k = 0; k < g; ++k) {
      std::string prefix = multi ? fmt::format("contrib_{}_", k) : "contrib_";
      for (const auto& name : features) header.push_back(prefix + name);
      header.push_back(prefix + "bias");
    }
  }

  std::vector<float> y(rows * o), m, c;
  if (options.margin) m.resize(rows * g);
  if (options.row_by_row) {
    for (std::size_t r = 0; r < rows; ++r) {
      model.predict(x.data() + r * f, y.data() + r * o);
      if (options.margin) model.margins(x.data() + r * f, m.data() + r * g);
    }
  } else {
    model.predict_batch(x.data(), rows, y.data(), options.threads);
    if (options.margin) model.margins_batch(x.data(), rows, m.data(), options.threads);
  }
  if (options.contributions) {
    c.resize(rows * g * (f + 1));
    model.contributions_batch(x.data(), rows, c.data(), options.threads);
  }

  std::string out;
  for (std::size_t i = 0; i < header.size(); ++i) out += (i ? "," : "") + header[i];
  out += "\n";
  auto put = [&out](const float* v, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) fmt::format_to(std::back_inserter(out), ",{:.9g}", v[i]);
  };
  for (std::size_t r = 0; r < rows; ++r) {
    std::size_t mark = out.size();
    put(y.data() + r * o, o);
    if (options.margin) put(m.data() + r * g, g);
    if (options.contributions) put(c.data() + r * g * (f + 1), g * (f + 1));
    out.erase(mark, 1);  // the leading comma
    out += "\n";
  }
  return out;
}

}  // namespace fra::score
