// The same level-by-level walk as model.cpp, eight lanes at a time with AVX2 gathers, for
// processors that have them (chosen at run time; the portable walk stays the reference and
// gives bit-identical results: only the order of independent steps changes).

#include <immintrin.h>

#include "adapter/score/walk_avx2.hpp"

namespace fra::score::avx2 {

bool available() {
  static const bool yes = __builtin_cpu_supports("avx2");
  return yes;
}

__attribute__((target("avx2"))) void leaves8(const std::uint32_t* nodes, const float* const* rows,
                                             const std::uint32_t* start, std::uint32_t depth, std::uint32_t* out) {
  const __m256i feature_mask = _mm256_set1_epi32(static_cast<int>(kFeatureMask));
  const __m256i default_left = _mm256_set1_epi32(static_cast<int>(kDefaultLeft));
  const __m256i zero = _mm256_setzero_si256();
  const __m256i one = _mm256_set1_epi32(1);
  __m256i at = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(start));
  // Row bases as offsets from the first row, in floats (rows of one block are contiguous).
  alignas(32) int offsets[8];
  for (int i = 0; i < 8; ++i) offsets[i] = static_cast<int>(rows[i] - rows[0]);
  const __m256i row_offset = _mm256_load_si256(reinterpret_cast<const __m256i*>(offsets));
  const int* base = reinterpret_cast<const int*>(nodes);
  for (std::uint32_t level = 0; level < depth; ++level) {
    const __m256i i3 = _mm256_add_epi32(_mm256_add_epi32(at, at), at);
    const __m256 value = _mm256_i32gather_ps(reinterpret_cast<const float*>(base), i3, 4);
    const __m256i left = _mm256_i32gather_epi32(base + 1, i3, 4);
    const __m256i meta = _mm256_i32gather_epi32(base + 2, i3, 4);
    const __m256i feature = _mm256_add_epi32(_mm256_and_si256(meta, feature_mask), row_offset);
    const __m256 x = _mm256_i32gather_ps(rows[0], feature, 4);
    const __m256 ge = _mm256_cmp_ps(x, value, _CMP_GE_OQ);    // false for NaN
    const __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
    const __m256i dl = _mm256_cmpeq_epi32(_mm256_and_si256(meta, default_left), zero);  // all ones: default right
    const __m256i right = _mm256_or_si256(_mm256_castps_si256(ge), _mm256_and_si256(_mm256_castps_si256(nan), dl));
    const __m256i next = _mm256_add_epi32(left, _mm256_and_si256(right, one));
    const __m256i leaf = _mm256_srai_epi32(meta, 31);  // all ones at a leaf: stay
    at = _mm256_blendv_epi8(next, at, leaf);
  }
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), at);
}

}  // namespace fra::score::avx2
