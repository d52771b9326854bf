#include "adapter/cds/trust.hpp"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "fhir/json.hpp"

namespace fra::cds {
namespace {

using fhir::json::string_member;

constexpr fhir::Micros kJwksTtl = 3600LL * 1000000;  // a jku's keys, kept an hour
constexpr fhir::Micros kRefetchGap =
    60LL * 1000000;  // an unknown kid: the jku again, once a minute

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

Result<std::vector<Issuer>> parse_issuers(const std::string& json, const std::string& base_dir) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsArray())
    return make_error("bad-issuers", "cds_hooks.issuers_file: expected a JSON array of issuers");
  std::vector<Issuer> out;
  int n = 0;
  for (const auto& e : doc.GetArray()) {
    ++n;
    Issuer i{string_member(e, "iss").value_or(""), string_member(e, "jwks_file").value_or(""),
             string_member(e, "jku").value_or("")};
    if (i.iss.empty() || i.jwks_file.empty() == i.jku.empty())
      return make_error("bad-issuers",
                        fmt::format("cds_hooks.issuers_file entry {}: needs iss and either "
                                    "jwks_file or jku",
                                    n));
    if (!i.jku.empty() && !i.jku.starts_with("https://") && !i.jku.starts_with("http://"))
      return make_error("bad-issuers",
                        fmt::format("cds_hooks.issuers_file entry {}: jku must be a URL", n));
    if (!i.jwks_file.empty() && std::filesystem::path(i.jwks_file).is_relative())
      i.jwks_file = (std::filesystem::path(base_dir) / i.jwks_file).string();
    out.push_back(std::move(i));
  }
  return out;
}

Trust::Trust(std::vector<Issuer> issuers, std::function<std::string(const std::string&)> fetch,
             std::chrono::seconds skew)
    : issuers_(std::move(issuers)), fetch_(std::move(fetch)), skew_(skew.count() * 1000000LL) {}

const fhir::Jwk* Trust::key_for(const Issuer& issuer, const std::string& kid, fhir::Micros now) {
  auto find = [&]() -> const fhir::Jwk* {
    for (const auto& k : keys_[issuer.iss])
      if (k.kid == kid) return &k;
    return nullptr;
  };
  const bool file = !issuer.jwks_file.empty();
  auto& fetched = fetched_at_[issuer.iss];
  const bool stale = fetched == 0 || (!file && now - fetched > kJwksTtl);
  if (!stale)
    if (const auto* k = find()) return k;
  // Not loaded, expired, or a kid not (yet) in the set: read it again, a jku at most once a
  // minute (a key rotated at the issuer is picked up; a flood of made-up kids is not a flood of
  // fetches).
  if (!stale && now - fetched < kRefetchGap) return nullptr;
  try {
    auto keys = fhir::parse_jwks(file ? read_file(issuer.jwks_file) : fetch_(issuer.jku));
    fetched = now;
    if (keys) keys_[issuer.iss] = std::move(keys).value();
  } catch (const std::exception&) {
    fetched = now;  // unreachable: the keys held stay, and it is asked again in a minute
  }
  return find();
}

std::variant<fhir::JwtClaims, Refusal> Trust::check(const std::string& authorization,
                                                    const std::string& audience, fhir::Micros now) {
  const std::string prefix = "Bearer ";
  if (authorization.size() <= prefix.size() ||
      !std::equal(prefix.begin(), prefix.end(), authorization.begin(),
                  [](char a, char b) { return std::tolower(a) == std::tolower(b); }))
    return Refusal{"no-token", "no bearer token"};
  const std::string token = authorization.substr(prefix.size());
  auto claims = fhir::peek_jwt(token);
  if (!claims) return Refusal{"malformed", claims.error().message};
  const Issuer* issuer = nullptr;
  for (const auto& i : issuers_)
    if (i.iss == claims->iss) issuer = &i;
  if (issuer == nullptr) return Refusal{"unknown-issuer", "the token's iss is not trusted"};
  const fhir::Jwk* key = nullptr;
  {
    std::lock_guard lock(mu_);
    key = key_for(*issuer, claims->kid, now);
    if (key == nullptr)
      return Refusal{"unknown-key", "no key of the issuer's JWK set has the token's kid"};
    if (!fhir::signature_valid(token, claims->alg, *key))
      return Refusal{"signature", "the token's signature does not verify (RS384 or ES384)"};
  }
  if (auto why = fhir::claims_refusal(*claims, audience, now, skew_))
    return Refusal{"claims", *why};
  if (!replays_.first_use(claims->jti, claims->exp + skew_, now))
    return Refusal{"replay", "the token's jti was used before"};
  return std::move(claims).value();
}

}  // namespace fra::cds
