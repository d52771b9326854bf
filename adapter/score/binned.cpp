// The binned layout (see binned.hpp): compiled from the model's node array after load, used
// by Model::margins for one row.

#include "adapter/score/binned.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "adapter/score/model.hpp"

namespace fra::score {
namespace {

// FRA_SIMD=0 keeps the portable walk on a machine that has AVX-512: an escape hatch for
// operators, and how the tests check the portable walk on such a machine.
bool simd_allowed() {
  const char* v = std::getenv("FRA_SIMD");
  return v == nullptr || std::string_view(v) != "0";
}

}  // namespace

// For each node of the model, an id of its (feature, threshold) pair, numbered in order of
// first appearance; leaves get ~0. -0 and +0 are one value: they compare equal, so they
// decide alike.
std::vector<std::uint32_t> BinnedForest::distinct_thresholds(const Model& m) {
  std::vector<std::uint32_t> id_of(m.nodes_.size(), ~0u);
  std::unordered_map<std::uint64_t, std::uint32_t> ids;
  for (std::size_t k = 0; k < m.nodes_.size(); ++k) {
    const Model::Node& n = m.nodes_[k];
    if (n.meta & Model::kLeaf) continue;
    const float v = n.value == 0.0f ? 0.0f : n.value;
    const std::uint64_t key =
        std::uint64_t{Model::feature_of(n)} << 32 | std::bit_cast<std::uint32_t>(v);
    id_of[k] = ids.try_emplace(key, static_cast<std::uint32_t>(ids.size())).first->second;
  }
  return id_of;
}

std::unique_ptr<const BinnedForest> BinnedForest::compile(const Model& m, std::string& why_not) {
  auto refuse = [&why_not](std::string reason) {
    why_not = std::move(reason);
    return nullptr;
  };
  // Refused before anything is allocated by feature count: a model may declare far more
  // features than it uses.
  const std::size_t f = m.num_features_;
  if (m.has_categorical_) return refuse("the compact layout has no categorical splits");
  if (m.max_depth_ > kMaxDepth)
    return refuse(fmt::format("depth {} is over the compact layout's {}", m.max_depth_, kMaxDepth));
  if (2 * f > 65536)
    return refuse(fmt::format("{} features: the compact layout takes at most 32,768", f));
  auto out = std::unique_ptr<BinnedForest>(new BinnedForest());
  out->num_features_ = f;
  out->num_trees_ = m.roots_.size();
  // Whole groups of kLanes trees: the last is filled up with trees of padding nodes, which the
  // walks go down but whose leaves they never add.
  out->padded_trees_ = (out->num_trees_ + kLanes - 1) / kLanes * kLanes;
  out->depth_ = m.max_depth_;
  out->one_group_ = m.num_groups_ == 1;
  const std::size_t inner = (std::size_t{1} << out->depth_) - 1, leaves = inner + 1;
  auto layout_bytes = [&](std::size_t node_bytes) {
    return out->padded_trees_ * (inner * node_bytes + leaves * sizeof(float));
  };
  const std::size_t budget = m.nodes_.size() * sizeof(Model::Node);
  const auto too_big = [] {
    return "complete trees would take more memory than the model's own nodes";
  };
  if (layout_bytes(2) > budget) return refuse(too_big());  // even with the narrowest nodes

  // Each feature's distinct thresholds (NaN thresholds are refused at load), and each split's
  // rank among them: one hash of (feature, threshold) over the splits, then a sort of the
  // distinct values alone (a 1000-tree model has 170,000 splits over a few thousand values).
  const std::vector<std::uint32_t> distinct_of = distinct_thresholds(m);
  std::vector<std::vector<float>> cuts(f);
  std::vector<std::uint32_t> rank_of;  // by distinct value
  {
    std::vector<std::pair<std::uint32_t, float>> values;  // (feature, threshold) by distinct id
    for (std::size_t k = 0; k < m.nodes_.size(); ++k)
      if (distinct_of[k] == values.size())
        values.emplace_back(Model::feature_of(m.nodes_[k]), m.nodes_[k].value);
    std::vector<std::vector<std::uint32_t>> ids(f);
    for (std::uint32_t id = 0; id < values.size(); ++id) ids[values[id].first].push_back(id);
    rank_of.resize(values.size());
    for (std::size_t i = 0; i < f; ++i) {
      std::sort(ids[i].begin(), ids[i].end(), [&](std::uint32_t a, std::uint32_t b) {
        return values[a].second < values[b].second;
      });
      for (std::uint32_t r = 0; r < ids[i].size(); ++r) {
        rank_of[ids[i][r]] = r;
        cuts[i].push_back(values[ids[i][r]].second);
      }
    }
  }
  std::size_t widest = 0;
  for (const auto& c : cuts) widest = std::max(widest, c.size());
  // A padding node reads slot 0 against the largest rank, which no bin reaches: it goes left.
  if (widest > 65534)
    return refuse(fmt::format("a feature has {} thresholds, over 65,534", widest));
  out->format_ = 2 * f <= 256 && widest <= 254   ? Format::pair8
                 : 2 * f <= 128 && widest <= 510 ? Format::packed16
                                                 : Format::pair16;
  if (layout_bytes(out->format_ == Format::pair16 ? 4 : 2) > budget) return refuse(too_big());
  switch (out->format_) {
    case Format::pair8:
      out->lay_out<binned::Pair8>(m, distinct_of, rank_of);
      break;
    case Format::packed16:
      out->lay_out<binned::Packed16>(m, distinct_of, rank_of);
      break;
    case Format::pair16:
      out->lay_out<binned::Pair16>(m, distinct_of, rank_of);
      break;
  }

  constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
  for (auto& c : cuts) {
    const auto block = std::bit_ceil(static_cast<std::uint32_t>(c.size()) + 1);
    out->cut_offset_.push_back(static_cast<std::uint32_t>(out->cuts_.size()));
    out->cut_count_.push_back(static_cast<std::uint32_t>(c.size()));
    out->cut_mask_.push_back(block - 1);
    out->cut_top_ = std::max(out->cut_top_, block / 2);
    out->cuts_.push_back(kNaN);
    out->cuts_.insert(out->cuts_.end(), c.begin(), c.end());
    out->cuts_.resize(out->cut_offset_.back() + block, kNaN);
  }

#if defined(__x86_64__)
  // The vector walk holds the row's bins in registers: at most 64 slots.
  out->simd_walk_ = 2 * f <= 64 && simd_allowed() && __builtin_cpu_supports("avx512f") &&
                    __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
  // The vector ranks take two compares of 16 thresholds: at most 256 thresholds a feature,
  // in 16 chunks of 16 and a 17th of NaN (for a value above them all), after one compare
  // against the last threshold of each chunk.
  if (out->simd_walk_ && widest <= 256) {
    out->simd_ranks_ = true;
    out->chunk_last_.assign(f * 16, kNaN);
    out->chunks_.assign(f * 17 * 16, kNaN);
    for (std::size_t i = 0; i < f; ++i) {
      std::copy(cuts[i].begin(), cuts[i].end(),
                out->chunks_.begin() + static_cast<std::ptrdiff_t>(i * 17 * 16));
      for (std::size_t j = 0; j < 16; ++j)
        out->chunk_last_[i * 16 + j] = out->chunks_[i * 17 * 16 + j * 16 + 15];
    }
  }
#endif
  return out;
}

template <typename F>
void BinnedForest::lay_out(const Model& m, const std::vector<std::uint32_t>& distinct_of,
                           const std::vector<std::uint32_t>& rank_of) {
  using Node = typename F::Node;
  const std::size_t inner = (std::size_t{1} << depth_) - 1, leaves = inner + 1;
  // Every node starts as padding: slot 0 against the largest rank, which no bin reaches, so it
  // goes left. A 4-byte gather of the last 2-byte node reads 2 bytes past it.
  std::vector<Node>& store = storage<F>();
  store.resize(F::kStride * padded_trees_ * inner + 2 / sizeof(Node));
  for (std::size_t i = 0; i < padded_trees_ * inner; ++i)
    F::put(&store[F::kStride * i], 0, F::kRankMask);
  leaves_.assign(padded_trees_ * leaves, 0.0f);
  struct Step {
    std::uint32_t node, at, level;
  };
  std::vector<Step> stack;
  for (std::size_t t = 0; t < num_trees_; ++t) {
    // Node s of the i-th tree of a group is node s * kLanes + i.
    const std::size_t group = t / kLanes, lane = t % kLanes;
    const std::size_t node_base = group * kLanes * inner + lane;
    const std::size_t leaf_base = group * kLanes * leaves + lane;
    stack.push_back({m.roots_[t], 0, 0});
    while (!stack.empty()) {
      const Step s = stack.back();
      stack.pop_back();
      const Model::Node& n = m.nodes_[s.node];
      if (s.level == depth_) {
        leaves_[leaf_base + (s.at - inner) * kLanes] = n.value;  // the walk ends at the depth
      } else if (n.meta & Model::kLeaf) {
        stack.push_back({s.node, 2 * s.at + 1, s.level + 1});  // padding: left down to the depth
      } else {
        F::put(&store[F::kStride * (node_base + s.at * kLanes)], n.meta & Model::kIndexMask,
               rank_of[distinct_of[s.node]]);
        stack.push_back({n.left, 2 * s.at + 1, s.level + 1});
        stack.push_back({n.left + 1, 2 * s.at + 2, s.level + 1});
      }
    }
  }
}

namespace {

// Walks a group of kLanes interleaved trees level by level, so that the steps of different
// trees, independent of each other, overlap; unrolled, so that the positions stay in
// registers. A position is kept as kLanes * (heap index, root = 1), which makes a step
// q = 2q + kLanes * right and puts node q/kLanes - 1 of tree i at q + i - kLanes.
template <std::size_t kLanes, typename F>
inline void walk_lanes(const typename F::Node* nodes, unsigned depth, const typename F::Bin* bins,
                       std::size_t* at) noexcept {
  std::size_t q[kLanes];
#pragma GCC unroll 16
  for (std::size_t i = 0; i < kLanes; ++i) q[i] = kLanes;
  for (unsigned level = 0; level < depth; ++level) {
#pragma GCC unroll 16
    for (std::size_t i = 0; i < kLanes; ++i) {
      const typename F::Node* n = nodes + F::kStride * (q[i] + i - kLanes);
      const std::size_t right = F::rank(n) < bins[F::slot(n)];
      q[i] = 2 * q[i] + (kLanes & (0 - right));
    }
  }
#pragma GCC unroll 16
  for (std::size_t i = 0; i < kLanes; ++i) at[i] = q[i] + i;
}

}  // namespace

void BinnedForest::ranks(const float* row, std::uint32_t* rank) const noexcept {
  // A binary search over each feature's block, all features a step at a time and without
  // branches, so that the searches overlap instead of mispredicting.
  const std::size_t nf = num_features_;
  const float* cuts = cuts_.data();
  for (std::size_t f = 0; f < nf; ++f) rank[f] = 0;
  for (std::uint32_t step = cut_top_; step != 0; step >>= 1) {
    for (std::size_t f = 0; f < nf; ++f) {
      const std::uint32_t s = step & cut_mask_[f];
      const std::uint32_t le = cuts[cut_offset_[f] + rank[f] + s] <= row[f];
      rank[f] += s & (0u - le);  // arithmetic, not a branch: the outcome is a coin toss
    }
  }
}

template <typename F>
void BinnedForest::walk(const float* row, const std::uint32_t* groups, float* out) const noexcept {
  using T = typename F::Bin;
  // The row as bins, doubled like Model::expand_row: slot 2f has missing as 0 (below every
  // rank: goes left), slot 2f+1 as the feature's threshold count (above every rank: right).
  constexpr std::size_t kLocal = 256;
  T local[kLocal];
  std::uint32_t rank_local[kLocal / 2];
  thread_local std::vector<T> bins_heap;
  thread_local std::vector<std::uint32_t> rank_heap;
  T* bins = local;
  std::uint32_t* rank = rank_local;
  const std::size_t nf = num_features_;
  if (2 * nf > kLocal) {
    bins_heap.resize(2 * nf);
    rank_heap.resize(nf);
    bins = bins_heap.data();
    rank = rank_heap.data();
  }
#if defined(__x86_64__)
  if (simd_ranks_)
    ranks_avx512(row, rank);
  else
    ranks(row, rank);
#else
  ranks(row, rank);
#endif
  for (std::size_t f = 0; f < nf; ++f) {
    const std::uint32_t missing = std::isnan(row[f]);
    bins[2 * f] = static_cast<T>(rank[f]);  // a NaN was never <= anything: rank 0
    bins[2 * f + 1] = static_cast<T>(rank[f] + (cut_count_[f] & (0u - missing)));
  }

  const std::size_t inner = (std::size_t{1} << depth_) - 1, width = inner + 1;
  std::size_t t0 = 0;
#if defined(__x86_64__)
  if (simd_walk_) {
    walk_avx512<F>(bins, groups, out);
    return;
  }
#endif
  std::size_t at[kLanes];
  float sum = out[0];
  for (; t0 < padded_trees_; t0 += kLanes) {
    walk_lanes<kLanes, F>(nodes<F>() + F::kStride * t0 * inner, depth_, bins, at);
    const float* tl = leaves_.data() + t0 * width;  // leaf of tree i: at[i] - (inner + 1) * kLanes
    const std::size_t first_leaf = (inner + 1) * kLanes;
    const std::size_t real = std::min(kLanes, num_trees_ - t0);
    if (one_group_) {
      for (std::size_t i = 0; i < real; ++i) sum += tl[at[i] - first_leaf];
    } else {
      for (std::size_t i = 0; i < real; ++i) out[groups[t0 + i]] += tl[at[i] - first_leaf];
    }
  }
  if (one_group_) out[0] = sum;
}

void BinnedForest::add_leaves(const float* row, const std::uint32_t* groups,
                              float* out) const noexcept {
  switch (format_) {
    case Format::pair8:
      return walk<binned::Pair8>(row, groups, out);
    case Format::packed16:
      return walk<binned::Packed16>(row, groups, out);
    case Format::pair16:
      return walk<binned::Pair16>(row, groups, out);
  }
}

std::string BinnedForest::describe() const {
  const char* nodes = format_ == Format::pair8      ? "2-byte nodes (8-bit slots and ranks)"
                      : format_ == Format::packed16 ? "2-byte nodes (7-bit slots, 9-bit ranks)"
                                                    : "4-byte nodes (16-bit slots and ranks)";
  return fmt::format(
      "compact layout: {}, {} trees (padded to {}) as complete trees of depth {}; {}", nodes,
      num_trees_, padded_trees_, depth_,
      simd_walk_ ? (simd_ranks_ ? "AVX-512 walk and ranks" : "AVX-512 walk") : "portable walk");
}

std::size_t BinnedForest::memory_bytes() const {
  return sizeof(*this) + (chunk_last_.capacity() + chunks_.capacity()) * sizeof(float) +
         (cut_offset_.capacity() + cut_count_.capacity() + cut_mask_.capacity()) *
             sizeof(std::uint32_t) +
         cuts_.capacity() * sizeof(float) + nodes8_.capacity() +
         nodes16_.capacity() * sizeof(std::uint16_t) + leaves_.capacity() * sizeof(float);
}

}  // namespace fra::score
