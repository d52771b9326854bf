#pragma once
// FHIR date, dateTime and instant values as microseconds since the Unix epoch, UTC.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fra::fhir {

/// Microseconds since 1970-01-01T00:00:00Z.
using Micros = std::int64_t;

/// Parses a FHIR dateTime (YYYY, YYYY-MM, YYYY-MM-DD, or YYYY-MM-DDThh:mm:ss[.f+](Z|±hh:mm))
/// to the start of the period it names, in UTC. Returns nullopt when it is not one.
std::optional<Micros> parse_datetime(std::string_view text);

/// Formats as an instant with microseconds: "2026-11-01T08:30:00.000000Z".
std::string format_instant(Micros t);

/// The year of a parsed instant, in UTC.
int year_of(Micros t);

/// Now, from the system clock.
Micros now_micros();

}  // namespace fra::fhir
