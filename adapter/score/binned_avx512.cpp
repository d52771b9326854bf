// The AVX-512 parts of the binned layout (see binned.hpp), compiled for AVX-512 whatever the
// build's target and used only when the CPU has it (BinnedForest::compile checks).

#if defined(__x86_64__)

// GCC 12's own AVX-512 headers start some intrinsics from _mm512_undefined_*() and then warn
// that it may be used uninitialised (GCC bug 105593): the warning is about the header.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>

#include "adapter/score/binned.hpp"

namespace fra::score {
namespace simd {

#define FRA_AVX512_MEMBER __attribute__((target("avx512f,avx512bw,avx512vbmi")))
#define FRA_AVX512 __attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline)) inline

// 16 nodes from consecutive memory, each as a 32-bit lane: the slot in the low bits, the rank
// above it (from F::kRankShift).
template <typename F>
FRA_AVX512 __m512i load_nodes(const typename F::Node* p) {
  if constexpr (F::kBytes == 2)
    return _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  else
    return _mm512_loadu_si512(p);
}

// Which of 16 nodes send the row right: the bin of each node's slot, looked up in the row's
// bins held in two registers, above the node's rank.
// The permutes read the low 6 bits of each byte or word of `node`: the slot's (below 64).
template <typename F>
FRA_AVX512 __mmask16 goes_right(__m512i node, __m512i table_lo, __m512i table_hi) {
  const __m512i bin_mask = _mm512_set1_epi32(sizeof(typename F::Bin) == 1 ? 0xFF : 0xFFFF);
  __m512i bin;
  if constexpr (sizeof(typename F::Bin) == 1)
    bin = _mm512_permutexvar_epi8(node, table_lo);
  else
    bin = _mm512_permutex2var_epi16(table_lo, node, table_hi);
  bin = _mm512_and_si512(bin, bin_mask);
  const __m512i rank = _mm512_and_si512(_mm512_srli_epi32(node, F::kRankShift),
                                        _mm512_set1_epi32(static_cast<int>(F::kRankMask)));
  return _mm512_cmpgt_epu32_mask(bin, rank);
}

// How many of a feature's thresholds are <= x (broadcast in every lane).
FRA_AVX512 std::uint32_t count_le(const float* chunk_last, const float* chunks, __m512 v) {
  const auto whole = static_cast<std::uint32_t>(
      __builtin_popcount(_mm512_cmp_ps_mask(_mm512_loadu_ps(chunk_last), v, _CMP_LE_OQ)));
  const auto part = static_cast<std::uint32_t>(
      __builtin_popcount(_mm512_cmp_ps_mask(_mm512_loadu_ps(chunks + 16 * whole), v, _CMP_LE_OQ)));
  return 16 * whole + part;
}

}  // namespace simd

// The same walk, 16 trees a vector, kGroups vectors at a time (a gather's latency is long and
// the vectors are independent): one gather reads the nodes (slot and rank), one permute looks
// the slots up in the row's bins (at most 64 slots, held in registers), one compare decides.
// The leaves are gathered, then added one by one in tree order.
template <typename F>
FRA_AVX512_MEMBER void BinnedForest::walk_avx512(const typename F::Bin* bins,
                                                 const std::uint32_t* groups,
                                                 float* out) const noexcept {
  using T = typename F::Bin;
  constexpr std::size_t kStride = F::kStride;
  const std::size_t trees = padded_trees_;
  alignas(64) T table_values[128 / sizeof(T)] = {};
  std::copy(bins, bins + 2 * num_features_, table_values);
  const __m512i table_lo = _mm512_load_si512(table_values);
  const __m512i table_hi = _mm512_load_si512(table_values + 64 / sizeof(T));
  const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m512i lanes = _mm512_set1_epi32(static_cast<int>(kLanes));
  const std::size_t inner = (std::size_t{1} << depth_) - 1, width = inner + 1;
  const __m512i leaf_start = _mm512_set1_epi32(static_cast<int>(kLanes * width));
  const __m512i group_stride = _mm512_set1_epi32(static_cast<int>(kLanes * inner));
  const typename F::Node* nodes = this->nodes<F>();

  constexpr std::size_t kGroups = 16;
  constexpr unsigned kDirect = 3;
  __m512i offset[kGroups];
  for (std::size_t j = 0; j < kGroups; ++j)
    offset[j] = _mm512_sub_epi32(  // node q/kLanes - 1 of tree i of group j: q + offset[j]
        _mm512_add_epi32(lane,
                         _mm512_mullo_epi32(group_stride, _mm512_set1_epi32(static_cast<int>(j)))),
        lanes);
  alignas(64) float leaf[kGroups * kLanes];
  float sum = out[0];
  for (std::size_t t0 = 0; t0 < trees; t0 += kGroups * kLanes) {
    const std::size_t g = std::min(kGroups, (trees - t0) / kLanes);
    // As in walk_lanes: q = kLanes * heap index; node q/kLanes - 1 of tree i is node
    // q + i - kLanes of the group (offset[j] holds i - kLanes and the group's start).
    const typename F::Node* base = nodes + kStride * (t0 * inner);
    // The first kDirect levels read their candidates with plain loads (a level's node of the
    // 16 trees at one slot is 16 consecutive nodes) and pick among them by the decisions so far.
    __m512i q[kGroups];
    __mmask16 took[kGroups][kDirect];
    const unsigned direct = std::min<unsigned>(depth_, kDirect);
    for (std::size_t j = 0; j < g; ++j) {
      const typename F::Node* tree_base =
          base + kStride * (j * kLanes * inner);  // slot 0 of the group
      const std::size_t slot = kStride * kLanes;  // one slot of the group's 16 trees
      for (unsigned level = 0; level < direct; ++level) {
        __m512i node;
        if (level == 0) {
          node = simd::load_nodes<F>(tree_base);
        } else if (level == 1) {
          node = _mm512_mask_blend_epi32(took[j][0], simd::load_nodes<F>(tree_base + slot),
                                         simd::load_nodes<F>(tree_base + 2 * slot));
        } else {
          const __m512i left =
              _mm512_mask_blend_epi32(took[j][1], simd::load_nodes<F>(tree_base + 3 * slot),
                                      simd::load_nodes<F>(tree_base + 4 * slot));
          const __m512i right =
              _mm512_mask_blend_epi32(took[j][1], simd::load_nodes<F>(tree_base + 5 * slot),
                                      simd::load_nodes<F>(tree_base + 6 * slot));
          node = _mm512_mask_blend_epi32(took[j][0], left, right);
        }
        took[j][level] = simd::goes_right<F>(node, table_lo, table_hi);
      }
      q[j] = lanes;
      for (unsigned level = 0; level < direct; ++level) {
        q[j] = _mm512_add_epi32(q[j], q[j]);
        q[j] = _mm512_mask_add_epi32(q[j], took[j][level], q[j], lanes);
      }
    }
    for (unsigned level = direct; level < depth_; ++level) {
      for (std::size_t j = 0; j < g; ++j) {
        const __m512i node =
            _mm512_i32gather_epi32(_mm512_add_epi32(q[j], offset[j]), base, F::kBytes);
        const __mmask16 right = simd::goes_right<F>(node, table_lo, table_hi);
        q[j] = _mm512_add_epi32(q[j], q[j]);
        q[j] = _mm512_mask_add_epi32(q[j], right, q[j], lanes);
      }
    }
    for (std::size_t j = 0; j < g; ++j) {
      const __m512i at = _mm512_sub_epi32(_mm512_add_epi32(q[j], lane), leaf_start);
      _mm512_store_ps(leaf + j * kLanes,
                      _mm512_i32gather_ps(at, leaves_.data() + (t0 + j * kLanes) * width, 4));
    }
    const std::size_t real = std::min(g * kLanes, num_trees_ - t0);
    if (one_group_) {
      for (std::size_t i = 0; i < real; ++i) sum += leaf[i];
    } else {
      for (std::size_t i = 0; i < real; ++i) out[groups[t0 + i]] += leaf[i];
    }
  }
  if (one_group_) out[0] = sum;
}

FRA_AVX512_MEMBER void BinnedForest::ranks_avx512(const float* row,
                                                  std::uint32_t* rank) const noexcept {
  // One compare against the last threshold of each chunk counts the chunks wholly <= x, a
  // second within the next chunk counts the rest. NaN compares false: a missing value ranks 0.
  for (std::size_t f = 0; f < num_features_; ++f) {
    rank[f] = simd::count_le(chunk_last_.data() + f * 16, chunks_.data() + f * 17 * 16,
                             _mm512_set1_ps(row[f]));
  }
}

template void BinnedForest::walk_avx512<binned::Pair8>(const std::uint8_t*, const std::uint32_t*,
                                                       float*) const noexcept;
template void BinnedForest::walk_avx512<binned::Packed16>(const std::uint16_t*,
                                                          const std::uint32_t*,
                                                          float*) const noexcept;
template void BinnedForest::walk_avx512<binned::Pair16>(const std::uint16_t*, const std::uint32_t*,
                                                        float*) const noexcept;

}  // namespace fra::score

#endif
