#include <curl/curl.h>
#include <doctest/doctest.h>

#include "fhir/retry.hpp"

using fra::fhir::Action;
using namespace std::chrono;

TEST_CASE("classify: every HTTP status row") {
  struct Row {
    long status;
    Action action;
  };
  for (auto [status, action] :
       {Row{200, Action::done}, Row{201, Action::done}, Row{204, Action::done},
        Row{404, Action::done}, Row{410, Action::done}, Row{412, Action::done},
        Row{408, Action::retry}, Row{425, Action::retry}, Row{429, Action::retry},
        Row{500, Action::retry}, Row{502, Action::retry}, Row{503, Action::retry},
        Row{504, Action::retry}, Row{400, Action::fail}, Row{401, Action::fail},
        Row{403, Action::fail}, Row{405, Action::fail}, Row{422, Action::fail},
        Row{501, Action::fail}})
    CHECK_MESSAGE(fra::fhir::classify_status(status) == action, status);
}

TEST_CASE("classify: transport errors") {
  CHECK(fra::fhir::classify_transport(CURLE_COULDNT_CONNECT) == Action::retry);
  CHECK(fra::fhir::classify_transport(CURLE_OPERATION_TIMEDOUT) == Action::retry);
  CHECK(fra::fhir::classify_transport(CURLE_RECV_ERROR) == Action::retry);
  CHECK(fra::fhir::classify_transport(CURLE_GOT_NOTHING) == Action::retry);
  CHECK(fra::fhir::classify_transport(CURLE_PEER_FAILED_VERIFICATION) == Action::fail);
  CHECK(fra::fhir::classify_transport(CURLE_URL_MALFORMAT) == Action::fail);
}

TEST_CASE("Retry-After: seconds and HTTP dates") {
  auto now = system_clock::from_time_t(1445412480);  // Wed, 21 Oct 2015 07:28:00 GMT
  CHECK(*fra::fhir::parse_retry_after("120", now) == seconds(120));
  CHECK(*fra::fhir::parse_retry_after(" 3 ", now) == seconds(3));
  CHECK(*fra::fhir::parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now) == seconds(10));
  CHECK(*fra::fhir::parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now) == milliseconds(0));
  CHECK(!fra::fhir::parse_retry_after("", now));
  CHECK(!fra::fhir::parse_retry_after("soon", now));
}

TEST_CASE("backoff grows, is capped, jitters, and yields to a longer Retry-After") {
  CHECK(fra::fhir::backoff(1, milliseconds(100), seconds(5), 0.999999, std::nullopt) ==
        milliseconds(99));
  CHECK(fra::fhir::backoff(3, milliseconds(100), seconds(5), 0.999999, std::nullopt) ==
        milliseconds(399));
  CHECK(fra::fhir::backoff(20, milliseconds(100), seconds(5), 0.999999, std::nullopt) ==
        milliseconds(4999));
  CHECK(fra::fhir::backoff(2, milliseconds(100), seconds(5), 0.0, std::nullopt) == milliseconds(0));
  CHECK(fra::fhir::backoff(1, milliseconds(100), seconds(5), 0.5, seconds(2)) == seconds(2));
}
