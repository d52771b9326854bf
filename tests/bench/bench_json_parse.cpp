// The ceiling of a CDS Hooks call: parsing its JSON body alone (RapidJSON, as the service does),
// N times; prints the p50 and p95 in microseconds.
//
//   bench_json_parse FILE [N]
#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_json_parse FILE [N]\n");
    return 64;
  }
  std::ifstream in(argv[1]);
  std::stringstream s;
  s << in.rdbuf();
  const std::string body = s.str();
  const int n = argc > 2 ? std::stoi(argv[2]) : 1000;
  std::vector<double> us;
  std::size_t members = 0;
  for (int i = 0; i < n; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    rapidjson::Document doc;
    doc.Parse(body.data(), body.size());
    members += doc.IsObject() ? doc.MemberCount() : 0;
    us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  std::printf("{\"p50_us\": %.1f, \"p95_us\": %.1f, \"bytes\": %zu, \"members\": %zu}\n",
              us[us.size() / 2], us[us.size() * 95 / 100], body.size(), members);
  return 0;
}
