#include "mapping/units.hpp"

#include <array>

namespace fra::mapping {
namespace {

constexpr std::array<VitalSign, 9> kVitals{{
    {"8867-4", "/min", 10, 350},      // heart rate
    {"9279-1", "/min", 1, 100},       // respiratory rate
    {"59408-5", "%", 30, 100},        // oxygen saturation (pulse oximetry)
    {"8310-5", "Cel", 25, 46},        // body temperature
    {"8480-6", "mm[Hg]", 30, 300},    // systolic blood pressure
    {"8462-4", "mm[Hg]", 10, 200},    // diastolic blood pressure
    {"29463-7", "kg", 0.2, 700},      // body weight
    {"39156-5", "kg/m2", 5, 150},     // body mass index
    {"8302-2", "cm", 20, 280},        // body height
}};

// Linear units: value_in_base = value * factor. Temperatures are affine and handled apart.
struct Linear {
  std::string_view code;
  std::string_view dimension;
  double factor;
};

constexpr std::array<Linear, 12> kLinear{{
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

const VitalSign* find_vital_sign(std::string_view loinc) {
  for (const auto& v : kVitals)
    if (v.loinc == loinc) return &v;
  return nullptr;
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
