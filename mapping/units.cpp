#include "mapping/units.hpp"

#include <array>

namespace fra::mapping {
namespace {

// Linear units: value_in_base = value * factor. Temperatures are affine and handled apart.
struct Linear {
  std::string_view code;
  std::string_view dimension;
  double factor;
};

constexpr std::array<Linear, 17> kLinear{{
    {"kg", "mass", 1.0},
    {"g", "mass", 0.001},
    {"[lb_av]", "mass", 0.45359237},
    {"cm", "length", 0.01},
    {"m", "length", 1.0},
    {"[in_i]", "length", 0.0254},
    {"/min", "rate", 1.0},
    {"{beats}/min", "rate", 1.0},
    {"{breaths}/min", "rate", 1.0},
    {"%", "fraction", 1.0},
    {"mm[Hg]", "pressure", 1.0},
    {"kg/m2", "bmi", 1.0},
    {"s", "time", 1.0},
    {"min", "time", 60.0},
    {"h", "time", 3600.0},
    {"d", "time", 86400.0},
    {"wk", "time", 604800.0},
}};

const Linear* find_linear(std::string_view code) {
  for (const auto& l : kLinear)
    if (l.code == code) return &l;
  return nullptr;
}

std::optional<double> to_celsius(double v, std::string_view from) {
  if (from == "Cel") return v;
  if (from == "[degF]") return (v - 32.0) * 5.0 / 9.0;
  if (from == "K") return v - 273.15;
  return std::nullopt;
}

}  // namespace

bool known_unit(std::string_view ucum) {
  return find_linear(ucum) != nullptr || to_celsius(0.0, ucum).has_value() || ucum == "1";
}

std::optional<double> convert_unit(double value, std::string_view from, std::string_view to) {
  if (from == to) return value;
  if (to == "Cel") return to_celsius(value, from);
  if (to == "[degF]") {
    auto c = to_celsius(value, from);
    if (!c) return std::nullopt;
    return *c * 9.0 / 5.0 + 32.0;
  }
  const auto* f = find_linear(from);
  const auto* t = find_linear(to);
  if (f == nullptr || t == nullptr || f->dimension != t->dimension) return std::nullopt;
  return value * f->factor / t->factor;
}

}  // namespace fra::mapping
