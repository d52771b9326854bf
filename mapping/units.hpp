#pragma once
// Conversion between the UCUM units that measurements arrive in.

#include <optional>
#include <string_view>

namespace fra::mapping {

inline constexpr std::string_view kUcumSystem = "http://unitsofmeasure.org";

/// True when convert_unit knows the unit.
bool known_unit(std::string_view ucum);

/// Converts a value between UCUM units of the same dimension. nullopt when they are not
/// convertible or a unit is unknown.
std::optional<double> convert_unit(double value, std::string_view from, std::string_view to);

}  // namespace fra::mapping
