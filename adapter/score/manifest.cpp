#include "adapter/score/manifest.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <rapidjson/document.h>

#include <fstream>
#include <memory>
#include <sstream>

namespace fra::score {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ModelError(fmt::format("{}: cannot read", path));
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string string_field(const rapidjson::Value& v, const char* name, const std::string& where,
                         bool required = true) {
  auto it = v.FindMember(name);
  if (it == v.MemberEnd() || !it->value.IsString()) {
    if (!required) return "";
    throw ModelError(fmt::format("{}.{}: expected a string", where, name));
  }
  return it->value.GetString();
}

}  // namespace

const Band& Manifest::band_for(double p) const {
  for (const auto& b : bands)
    if (p < b.below) return b;
  return bands.back();
}

std::vector<std::string> Manifest::feature_names() const {
  std::vector<std::string> out;
  for (const auto& f : features) out.push_back(f.name);
  return out;
}

std::string sha256_file(const std::string& path) {
  std::string data = read_file(path);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_sha256(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

ModelPackage load_model_package(const std::string& dir) {
  const std::string path = dir + "/manifest.json";
  rapidjson::Document doc;
  std::string text = read_file(path);
  doc.Parse<rapidjson::kParseIterativeFlag>(text.data(), text.size());
  if (doc.HasParseError() || !doc.IsObject())
    throw ModelError(fmt::format("{}: not a JSON object", path));
  const std::string where = "manifest";
  Manifest m;
  m.name = string_field(doc, "name", where);
  m.version = string_field(doc, "version", where);
  m.description = string_field(doc, "description", where, false);
  m.model_file = string_field(doc, "model_file", where);
  m.model_sha256 = string_field(doc, "model_sha256", where);
  auto outcome = doc.FindMember("outcome");
  if (outcome == doc.MemberEnd() || !outcome->value.IsObject())
    throw ModelError(fmt::format("{}: outcome: expected an object", path));
  m.outcome_system = string_field(outcome->value, "system", "manifest.outcome");
  m.outcome_code = string_field(outcome->value, "code", "manifest.outcome");
  m.outcome_display = string_field(outcome->value, "display", "manifest.outcome");
  if (auto out = doc.FindMember("output"); out != doc.MemberEnd()) {
    if (!out->value.IsString() || (std::string_view(out->value.GetString()) != "probability" &&
                                   std::string_view(out->value.GetString()) != "points"))
      throw ModelError(fmt::format("{}: output: expected \"probability\" or \"points\"", path));
    m.points = std::string_view(out->value.GetString()) == "points";
  }
  auto features = doc.FindMember("features");
  if (features == doc.MemberEnd() || !features->value.IsArray() || features->value.Empty())
    throw ModelError(fmt::format("{}: features: expected a non-empty array", path));
  for (rapidjson::SizeType i = 0; i < features->value.Size(); ++i) {
    const auto& f = features->value[i];
    std::string w = fmt::format("manifest.features[{}]", i);
    if (!f.IsObject()) throw ModelError(fmt::format("{}: {}: expected an object", path, w));
    ManifestFeature mf{string_field(f, "name", w), string_field(f, "unit", w),
                       string_field(f, "description", w, false)};
    if (auto mono = f.FindMember("monotone"); mono != f.MemberEnd()) {
      if (!mono->value.IsInt() || std::abs(mono->value.GetInt()) > 1)
        throw ModelError(fmt::format("{}: {}.monotone: expected -1, 0 or 1", path, w));
      mf.monotone = mono->value.GetInt();
    }
    m.features.push_back(std::move(mf));
  }
  if (auto v = doc.FindMember("validation"); v != doc.MemberEnd() && v->value.IsObject()) {
    auto num = [&](const char* key) {
      auto it = v->value.FindMember(key);
      if (it == v->value.MemberEnd() || !it->value.IsNumber())
        throw ModelError(fmt::format("{}: validation.{}: expected a number", path, key));
      return it->value.GetDouble();
    };
    m.validation = Validation{num("auc"), num("calibration_slope"), num("calibration_intercept"),
                              static_cast<long>(num("discharges"))};
  }
  if (auto r = doc.FindMember("reference"); r != doc.MemberEnd() && r->value.IsObject()) {
    auto dist = [&](const rapidjson::Value& v, const std::string& w) {
      Distribution d;
      auto numbers = [&](const char* key) {
        std::vector<double> out;
        auto it = v.FindMember(key);
        if (it == v.MemberEnd() || !it->value.IsArray())
          throw ModelError(fmt::format("{}: {}.{}: expected an array of numbers", path, w, key));
        for (const auto& x : it->value.GetArray()) {
          if (!x.IsNumber())
            throw ModelError(fmt::format("{}: {}.{}: expected numbers", path, w, key));
          out.push_back(x.GetDouble());
        }
        return out;
      };
      d.edges = numbers("edges");
      d.shares = numbers("shares");
      if (d.shares.size() != d.edges.size() + 1)
        throw ModelError(fmt::format("{}: {}: one share more than edges expected", path, w));
      if (auto miss = v.FindMember("missing"); miss != v.MemberEnd() && miss->value.IsNumber())
        d.missing = miss->value.GetDouble();
      return d;
    };
    Reference ref;
    if (auto n = r->value.FindMember("rows"); n != r->value.MemberEnd() && n->value.IsNumber())
      ref.rows = static_cast<long>(n->value.GetDouble());
    if (auto f = r->value.FindMember("features"); f != r->value.MemberEnd() && f->value.IsObject())
      for (auto it = f->value.MemberBegin(); it != f->value.MemberEnd(); ++it)
        ref.features.emplace(
            it->name.GetString(),
            dist(it->value, fmt::format("reference.features.{}", it->name.GetString())));
    if (auto sc = r->value.FindMember("score"); sc != r->value.MemberEnd() && sc->value.IsObject())
      ref.score = dist(sc->value, "reference.score");
    m.reference = std::move(ref);
  }
  auto bands = doc.FindMember("bands");
  if (bands == doc.MemberEnd() || !bands->value.IsArray() || bands->value.Empty())
    throw ModelError(fmt::format("{}: bands: expected a non-empty array", path));
  double prev = m.points ? -1e300 : 0;
  for (rapidjson::SizeType i = 0; i < bands->value.Size(); ++i) {
    const auto& b = bands->value[i];
    std::string w = fmt::format("manifest.bands[{}]", i);
    if (!b.IsObject() || !b.HasMember("below") || !b["below"].IsNumber())
      throw ModelError(fmt::format("{}: {}.below: expected a number", path, w));
    Band band{string_field(b, "code", w), string_field(b, "display", w), b["below"].GetDouble()};
    if (band.below <= prev)
      throw ModelError(fmt::format("{}: {}.below: bands must ascend", path, w));
    prev = band.below;
    m.bands.push_back(band);
  }

  const std::string model_path = dir + "/" + m.model_file;
  std::string actual = sha256_file(model_path);
  if (actual != m.model_sha256)
    throw ModelError(fmt::format("{}: model_sha256 is {} but {} hashes to {}", path, m.model_sha256,
                                 m.model_file, actual));
  Model model = Model::from_file(model_path);
  if (model.num_features() != m.features.size())
    throw ModelError(fmt::format("{}: features: lists {} but the model takes {}", path,
                                 m.features.size(), model.num_features()));
  if (!m.points && !model.outputs_probability())
    throw ModelError(fmt::format("{}: the model's objective {} does not give a probability", path,
                                 model.objective()));
  if (m.points && (model.output() != Output::identity || model.num_outputs() != 1))
    throw ModelError(
        fmt::format("{}: output \"points\" needs an objective whose prediction is "
                    "the margin (reg:squarederror), not {}",
                    path, model.objective()));
  if (!model.feature_names().empty() && model.feature_names() != m.feature_names())
    throw ModelError(
        fmt::format("{}: features: names or order differ from those stored in the model", path));
  return ModelPackage{std::move(m), std::move(model), dir};
}

}  // namespace fra::score
