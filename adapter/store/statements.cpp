#include "adapter/store/statements.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>

namespace fra::store {
namespace {

struct Named {
  const char* name;
  const char* sql;
};

// Generated from sql/statements/*.sql at build time.
constexpr Named kStatements[] = {
#include "statements.inc"
};

const std::map<std::string, std::string, std::less<>>& all() {
  static const auto* m = [] {
    auto* out = new std::map<std::string, std::string, std::less<>>;
    for (const auto& s : kStatements) out->emplace(s.name, s.sql);
    return out;
  }();
  return *m;
}

}  // namespace

const std::string& statement(std::string_view name) {
  auto it = all().find(name);
  if (it == all().end()) {
    std::fprintf(stderr, "%s:%d: no statement sql/statements/%.*s.sql\n", __FILE__, __LINE__,
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return it->second;
}

std::vector<std::string> statement_names() {
  std::vector<std::string> out;
  for (const auto& [name, sql] : all()) out.push_back(name);
  return out;
}

}  // namespace fra::store
