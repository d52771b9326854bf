#pragma once
// The libpqxx connection behind Store, shared by the store's translation units only.

#include <pqxx/pqxx>

#include "adapter/store/store.hpp"

namespace fra::store {

// Helpers the store's translation units share (store.cpp defines them).
std::string first_line(const std::string& s);
std::string to_hex(const std::vector<std::uint8_t>& b);
std::vector<std::uint8_t> from_hex(const std::string& hex);

struct Store::Connection {
  explicit Connection(const std::string& url) : c(url) {}
  pqxx::connection c;
  bool staging_ready = false;  // the temp staging tables exist in this session
};

}  // namespace fra::store
