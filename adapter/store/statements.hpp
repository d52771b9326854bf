#pragma once
// The SQL statements of sql/statements/, compiled into the binary and used by name.

#include <string>
#include <string_view>
#include <vector>

namespace fra::store {

/// The text of sql/statements/<name>.sql. A name that is not there is a bug: aborts naming it.
const std::string& statement(std::string_view name);
/// Every statement's name, sorted.
std::vector<std::string> statement_names();

}  // namespace fra::store
