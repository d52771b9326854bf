#pragma once
// Reading FHIR ndjson (Bulk Data's format: one resource a line), a line at a time, without ever
// holding more than a bounded line in memory.

#include <cstddef>
#include <istream>
#include <string>

namespace fra::fhir {

/// Longest line read: longer ones are reported, not held.
inline constexpr std::size_t kMaxNdjsonLineBytes = 16u << 20;

/// Reads the next line into `line`; a line longer than kMaxNdjsonLineBytes is skipped to its end
/// and reported through `too_long` (with `line` empty). False at end of input.
bool next_ndjson_line(std::istream& in, std::string& line, bool& too_long);

}  // namespace fra::fhir
