// libFuzzer target: any bytes given to the model loader either load into a model that scores
// without fault, or are refused with a ModelError. Never a crash, a hang or a leak.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "adapter/score/model.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    auto m =
        fra::score::Model::from_bytes(std::string_view(reinterpret_cast<const char*>(data), size));
    if (m.num_features() > 4096 || m.num_groups() > 64) return 0;
    std::vector<float> row(m.num_features(), 0.5f), out(m.num_groups() * (m.num_features() + 1));
    m.predict(row.data(), out.data());
    m.contributions(row.data(), out.data());
    for (auto& x : row) x = std::nanf("");
    m.predict(row.data(), out.data());
    m.contributions(row.data(), out.data());
  } catch (const fra::score::ModelError&) {
  }
  return 0;
}
