#include <doctest/doctest.h>

#include "fhir/datetime.hpp"

using fra::fhir::format_instant;
using fra::fhir::parse_datetime;

TEST_CASE("FHIR dateTime precisions parse to the start of the period, in UTC") {
  CHECK(format_instant(*parse_datetime("2026")) == "2026-01-01T00:00:00.000000Z");
  CHECK(format_instant(*parse_datetime("2026-03")) == "2026-03-01T00:00:00.000000Z");
  CHECK(format_instant(*parse_datetime("2026-03-04")) == "2026-03-04T00:00:00.000000Z");
  CHECK(format_instant(*parse_datetime("2026-03-04T05:06:07Z")) == "2026-03-04T05:06:07.000000Z");
  CHECK(format_instant(*parse_datetime("2026-03-04T05:06:07.123Z")) ==
        "2026-03-04T05:06:07.123000Z");
  CHECK(format_instant(*parse_datetime("2026-03-04T05:06:07.1234567Z")) ==
        "2026-03-04T05:06:07.123456Z");
}

TEST_CASE("time zone offsets are applied") {
  CHECK(format_instant(*parse_datetime("2026-03-04T01:00:00+02:00")) ==
        "2026-03-03T23:00:00.000000Z");
  CHECK(format_instant(*parse_datetime("2026-03-04T23:30:00-01:30")) ==
        "2026-03-05T01:00:00.000000Z");
}

TEST_CASE("malformed dateTimes are refused") {
  for (const char* bad : {"", "26", "2026-13", "2026-02-30", "2026-03-04T05:06:07",
                          "2026-03-04T25:00:00Z", "2026-03-04 05:06:07Z", "2026-03-04T05:06:07.Z",
                          "2026-03-04T05:06:07Zjunk", "2026-03-04T05:06:07+2:00", "abcd"})
    CHECK_MESSAGE(!parse_datetime(bad), bad);
}

TEST_CASE("year_of and format_instant agree before and after the epoch") {
  CHECK(fra::fhir::year_of(*parse_datetime("1931-07-01")) == 1931);
  CHECK(format_instant(*parse_datetime("1969-12-31T23:59:59.5Z")) == "1969-12-31T23:59:59.500000Z");
}
