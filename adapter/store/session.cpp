#include "adapter/store/session.hpp"

namespace fra::store {

std::string_view to_string(StoreErrorKind k) {
  switch (k) {
    case StoreErrorKind::unavailable:
      return "unavailable";
    case StoreErrorKind::refused:
      return "refused";
    case StoreErrorKind::in_doubt:
      return "in doubt";
    case StoreErrorKind::bad_data:
      return "bad data";
  }
  return "?";
}

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

StoreErrorKind classify_sqlstate(std::string_view state) {
  if (state == "40003") return StoreErrorKind::in_doubt;  // statement completion unknown
  const std::string_view cls = state.substr(0, 2);
  // 08 connection exception, 40 transaction rollback (serialization failure, deadlock),
  // 53 insufficient resources (disk full, out of memory, too many connections), 57 operator
  // intervention (shutdown, cancel), 58 system error (I/O): all pass, so a retry is right.
  if (cls == "08" || cls == "40" || cls == "53" || cls == "57" || cls == "58")
    return StoreErrorKind::unavailable;
  if (cls == "22" || cls == "23") return StoreErrorKind::bad_data;  // data exception, constraint
  return StoreErrorKind::refused;
}

StoreErrorKind classify(const pqxx::failure& e) {
  // libpqxx 6.4: broken_connection and in_doubt_error derive from failure, not from sql_error.
  if (dynamic_cast<const pqxx::in_doubt_error*>(&e) != nullptr) return StoreErrorKind::in_doubt;
  if (dynamic_cast<const pqxx::broken_connection*>(&e) != nullptr)
    return StoreErrorKind::unavailable;
  if (const auto* sql = dynamic_cast<const pqxx::sql_error*>(&e)) {
    if (!sql->sqlstate().empty()) return classify_sqlstate(sql->sqlstate());
    // No SQLSTATE: libpq lost the server before an answer ("server closed the connection").
    return StoreErrorKind::unavailable;
  }
  // A bare failure: libpqxx's own complaints about the connection ("not connected",
  // "Could not obtain client encoding").
  return StoreErrorKind::unavailable;
}

Session::Session(const std::string& url, const std::string& application_name) try : conn_(url) {
  pqxx::nontransaction(conn_).exec("SET application_name = " + conn_.quote(application_name));
} catch (const pqxx::failure& e) {
  throw StoreError(classify(e), "cannot connect to the database: " + first_line(e.what()));
} catch (const std::invalid_argument& e) {  // libpq could not parse the URL
  throw StoreError(StoreErrorKind::refused,
                   "cannot connect to the database: " + first_line(e.what()));
}

void Session::outside_transaction(std::string_view what,
                                  const std::function<void(pqxx::nontransaction&)>& fn) {
  try {
    pqxx::nontransaction n(conn_);
    fn(n);
  } catch (const pqxx::failure& e) {
    throw StoreError(classify(e), std::string(what) + ": " + first_line(e.what()));
  }
}

}  // namespace fra::store
