#pragma once
// A second, compact layout of a model's trees, for scoring: one row at a time (the latency
// path), and batches row by row. The thresholds of each feature are replaced by their rank among
// that feature's distinct thresholds; a row is turned once into bins (how many of the feature's
// thresholds are <= its value) and a split then reads `bin > rank`, which is exactly `value >=
// threshold`. Every tree is padded to a complete tree of the model's depth, so that a node's
// children are 2i+1 and 2i+2 and a node is only a feature slot and a rank: 2 bytes when the model
// has at most 128 features and 254 thresholds per feature, or 64 features and 510 thresholds (what
// XGBoost's `hist` with its 256 bins gives), else 4. A 1000-tree model of depth 8 then takes
// 1.5 MiB with 2-byte nodes (leaves included), against 4.1 MB of 12-byte nodes.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace fra::score {

class Model;

namespace binned {
// How a node is stored: the row slot its split reads and its threshold's rank, and the type of
// a row's bins. The narrowest that holds the model is used.
// Slot then rank, each a T: 2 bytes for at most 128 features and 254 thresholds a feature,
// 4 bytes for 32,768 features and 65,534 thresholds (the largest rank marks padding).
template <typename T>
struct Pair {
  using Node = T;
  using Bin = T;
  static constexpr std::size_t kStride = 2;  // Node values per node
  static constexpr unsigned kRankShift = 8 * sizeof(T), kRankMask = (1u << kRankShift) - 1,
                            kBytes = 2 * sizeof(T);
  static unsigned slot(const Node* n) { return n[0]; }
  static unsigned rank(const Node* n) { return n[1]; }
  static void put(Node* n, unsigned slot, unsigned rank) {
    n[0] = static_cast<Node>(slot);
    n[1] = static_cast<Node>(rank);
  }
};
using Pair8 = Pair<std::uint8_t>;
using Pair16 = Pair<std::uint16_t>;
// 2 bytes, a 7-bit slot under a 9-bit rank: 64 features, 510 thresholds.
struct Packed16 {
  using Node = std::uint16_t;
  using Bin = std::uint16_t;
  static constexpr std::size_t kStride = 1;
  static constexpr unsigned kRankShift = 7, kRankMask = 0x1FF, kBytes = 2;
  static unsigned slot(const Node* n) { return n[0] & 0x7Fu; }
  static unsigned rank(const Node* n) { return n[0] >> 7; }
  static void put(Node* n, unsigned slot, unsigned rank) {
    n[0] = static_cast<Node>(slot | rank << 7);
  }
};
}  // namespace binned

class BinnedForest {
 public:
  /// Compiles `model`'s trees; nullptr, with the reason in `why_not`, when they do not suit the
  /// layout (categorical splits, depth over kMaxDepth, more than 32,768 features, more
  /// thresholds of a feature than a rank can hold, or padding that would take more memory than
  /// the model's own nodes).
  static std::unique_ptr<const BinnedForest> compile(const Model& model, std::string& why_not);

  /// Adds each tree's leaf for `row` (num_features floats, NaN = missing) to out[group of the
  /// tree], in tree order and in float, so the sums are bit-identical to the node walk's.
  void add_leaves(const float* row, const std::uint32_t* groups, float* out) const noexcept;

  /// Bytes held by the layout.
  std::size_t memory_bytes() const;
  /// One line for `model inspect`: node width, trees and depth, and which walk scores.
  std::string describe() const;

  static constexpr unsigned kMaxDepth = 10;
  /// Trees walked at once, and interleaved in memory in groups of this many.
  static constexpr std::size_t kLanes = 16;

 private:
  static std::vector<std::uint32_t> distinct_thresholds(const Model& model);
  template <typename F>
  void walk(const float* row, const std::uint32_t* groups, float* out) const noexcept;
  // The format's node storage: nodes8_ for 1-byte node values, nodes16_ for 2-byte ones.
  template <typename F>
  std::vector<typename F::Node>& storage() noexcept {
    if constexpr (sizeof(typename F::Node) == 1)
      return nodes8_;
    else
      return nodes16_;
  }
  template <typename F>
  const typename F::Node* nodes() const noexcept {
    return const_cast<BinnedForest*>(this)->storage<F>().data();
  }
  // Fills the format's node storage and the leaves from the model's trees, each split's rank
  // being rank_of[distinct_of[node]].
  template <typename F>
  void lay_out(const Model& model, const std::vector<std::uint32_t>& distinct_of,
               const std::vector<std::uint32_t>& rank_of);
  // Each feature's rank of row's value (how many of its thresholds are <= it; 0 for NaN).
  void ranks(const float* row, std::uint32_t* rank) const noexcept;
  // With AVX-512, in binned_avx512.cpp: the same ranks, and the same walk.
  void ranks_avx512(const float* row, std::uint32_t* rank) const noexcept;
  template <typename F>
  void walk_avx512(const typename F::Bin* bins, const std::uint32_t* groups,
                   float* out) const noexcept;

  std::size_t num_features_ = 0;
  std::size_t num_trees_ = 0;
  std::size_t padded_trees_ = 0;  // num_trees_ rounded up to whole groups of kLanes
  unsigned depth_ = 0;
  // One margin: summed in a register. Adding through memory (out[group] += leaf) waits on a
  // store-to-load round trip each time, which costs more than the add.
  bool one_group_ = false;
  enum class Format : std::uint8_t { pair8, packed16, pair16 } format_ = Format::pair8;
  bool simd_walk_ = false;   // walk with AVX-512 (at most 64 slots, and the CPU has it)
  bool simd_ranks_ = false;  // rank with AVX-512 (also at most 256 thresholds a feature)
  // Per feature, a block of cuts_ of 2^s floats: NaN, the feature's distinct thresholds
  // ascending, NaN up to the end (a NaN is never <= x, so it sorts as above every value).
  std::vector<std::uint32_t> cut_offset_;  // per feature, where its block starts
  std::vector<std::uint32_t> cut_count_;   // per feature, how many thresholds
  std::vector<std::uint32_t> cut_mask_;    // per feature, 2^s - 1
  std::uint32_t cut_top_ = 0;              // half the largest block
  std::vector<float> cuts_;
  // For the AVX-512 ranks: per feature 17 chunks of 16 thresholds, NaN-padded, and the last
  // threshold of each of the first 16.
  std::vector<float> chunks_;
  std::vector<float> chunk_last_;
  // Per tree 2^depth - 1 nodes in the format's storage (binned::Pair8 in nodes8_, the others in
  // nodes16_), then per tree 2^depth leaves. Trees are interleaved in groups of kLanes: node s
  // of the group's i-th tree is node s * kLanes + i.
  std::vector<std::uint8_t> nodes8_;
  std::vector<std::uint16_t> nodes16_;
  std::vector<float> leaves_;
};

}  // namespace fra::score
