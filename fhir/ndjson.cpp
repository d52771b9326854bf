#include "fhir/ndjson.hpp"

#include <algorithm>

namespace fra::fhir {

bool next_ndjson_line(std::istream& in, std::string& line, bool& too_long) {
  line.clear();
  too_long = false;
  char buf[65536];
  bool any = false;
  for (;;) {
    in.getline(buf, sizeof buf);
    std::streamsize got = in.gcount();
    if (got == 0 && !in) return any;
    any = true;
    bool complete = !in.fail() || in.eof();
    if (complete && got > 0 && buf[got - 1] == '\0') --got;  // getline counts the delimiter
    if (!too_long) {
      line.append(buf, static_cast<std::size_t>(std::max<std::streamsize>(got, 0)));
      if (line.size() > kMaxNdjsonLineBytes) {
        too_long = true;
        line.clear();
        line.shrink_to_fit();
      }
    }
    if (in.fail() && !in.eof()) {  // the buffer filled before the end of the line
      in.clear();
      continue;
    }
    return true;
  }
}

}  // namespace fra::fhir
