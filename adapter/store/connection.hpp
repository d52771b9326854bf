#pragma once
// The libpqxx connection behind Store, shared by the store's translation units only.

#include <pqxx/pqxx>

#include "adapter/store/store.hpp"

namespace fra::store {

struct Store::Connection {
  explicit Connection(const std::string& url) : c(url) {}
  pqxx::connection c;
  bool staging_ready = false;  // the temp staging tables exist in this session
};

}  // namespace fra::store
