#pragma once
// Eight tree walks at once with AVX2 gathers; see walk_avx2.cpp.

#include <cstdint>

namespace fra::score::avx2 {

inline constexpr std::uint32_t kLeaf = 1u << 31;
inline constexpr std::uint32_t kDefaultLeft = 1u << 30;
inline constexpr std::uint32_t kFeatureMask = (1u << 29) - 1;

/// True when this processor has AVX2.
bool available();

/// Walks eight lanes `depth` levels down from `start` through `nodes` (Model::Node as three
/// 32-bit words, numeric splits only); lane i reads its features from rows[i], and every
/// rows[i] must lie within 2^31 floats of rows[0]. Writes the node each lane ends at.
void leaves8(const std::uint32_t* nodes, const float* const* rows, const std::uint32_t* start, std::uint32_t depth,
             std::uint32_t* out);

}  // namespace fra::score::avx2
