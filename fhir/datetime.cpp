#include "fhir/datetime.hpp"

#include <fmt/format.h>

#include <chrono>

namespace fra::fhir {
namespace {

using namespace std::chrono;

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

std::optional<Micros> days_to_micros(int y, int m, int d) {
  year_month_day ymd{year{y}, month{static_cast<unsigned>(m)}, day{static_cast<unsigned>(d)}};
  if (!ymd.ok()) return std::nullopt;
  return duration_cast<microseconds>(sys_days{ymd}.time_since_epoch()).count();
}

}  // namespace

std::optional<Micros> parse_datetime(std::string_view s) {
  int y = 0, mo = 1, d = 1;
  if (!digits(s, 0, 4, y)) return std::nullopt;
  if (s.size() == 4) return days_to_micros(y, 1, 1);
  if (s[4] != '-' || !digits(s, 5, 2, mo)) return std::nullopt;
  if (s.size() == 7) return days_to_micros(y, mo, 1);
  if (s[7] != '-' || !digits(s, 8, 2, d)) return std::nullopt;
  auto date = days_to_micros(y, mo, d);
  if (!date) return std::nullopt;
  if (s.size() == 10) return date;

  int hh = 0, mm = 0, ss = 0;
  if (s[10] != 'T' || !digits(s, 11, 2, hh) || s.size() < 19 || s[13] != ':' ||
      !digits(s, 14, 2, mm) || s[16] != ':' || !digits(s, 17, 2, ss))
    return std::nullopt;
  if (hh > 23 || mm > 59 || ss > 60) return std::nullopt;
  std::size_t pos = 19;
  Micros frac = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t start = pos;
    Micros scale = 100000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      frac += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  Micros offset = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om) || oh > 14 || om > 59)
      return std::nullopt;
    offset = (s[pos] == '+' ? 1 : -1) * (static_cast<Micros>(oh) * 3600 + om * 60) * 1000000;
    pos += 6;
  } else {
    return std::nullopt;  // FHIR requires a zone when a time is given
  }
  if (pos != s.size()) return std::nullopt;
  return *date + ((static_cast<Micros>(hh) * 60 + mm) * 60 + ss) * 1000000 + frac - offset;
}

std::string format_instant(Micros t) {
  auto tp = sys_time<microseconds>{microseconds{t}};
  auto day_point = floor<days>(tp);
  year_month_day ymd{day_point};
  hh_mm_ss<microseconds> tod{tp - day_point};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                     tod.hours().count(), tod.minutes().count(), tod.seconds().count(),
                     tod.subseconds().count());
}

int year_of(Micros t) {
  auto day_point = floor<days>(sys_time<microseconds>{microseconds{t}});
  return static_cast<int>(year_month_day{day_point}.year());
}

Micros now_micros() {
  return duration_cast<microseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace fra::fhir
