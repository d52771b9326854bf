// Scoring: walking the flat trees, in blocks of rows so that each tree stays in cache while a
// block goes through it, and in as many threads as asked.

#include "adapter/score/model.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cmath>
#include <limits>
#include <thread>

#include "adapter/score/binned.hpp"

namespace fra::score {
namespace {

constexpr std::size_t kBlockRows = 256;

// Splits [0, n) into `threads` contiguous ranges and runs f(begin, end) on each.
template <typename F>
void parallel_rows(std::size_t n, int threads, std::size_t min_rows_per_thread, F&& f) {
  std::size_t t = std::clamp<std::size_t>(static_cast<std::size_t>(std::max(threads, 1)), 1,
                                          std::max<std::size_t>(1, n / min_rows_per_thread));
  if (t <= 1) {
    f(std::size_t{0}, n);
    return;
  }
  std::vector<std::thread> pool;
  std::size_t per = (n + t - 1) / t;
  for (std::size_t i = 1; i < t; ++i) {
    std::size_t b = std::min(n, i * per), e = std::min(n, b + per);
    pool.emplace_back([&f, b, e] { f(b, e); });
  }
  f(std::size_t{0}, std::min(n, per));
  for (auto& th : pool) th.join();
}

}  // namespace

template <bool kGeneric>
inline std::uint32_t Model::leaf(std::uint32_t i, const float* row) const noexcept {
  static_assert(kGeneric, "the fast walks read doubled rows");
  for (;;) {
    const Node& n = nodes_[i];
    if (n.meta & kLeaf) return i;
    i = n.left + static_cast<std::uint32_t>(goes_right(n, row[feature_of(n)]));
  }
}

void Model::expand_row(const float* row, float* doubled) const noexcept {
  // Each feature twice: missing as -inf where it must go left, as +inf where it must go right,
  // so that `x >= threshold` alone decides every numeric split (see Node).
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (std::size_t f = 0; f < num_features_; ++f) {
    const float x = row[f];
    const bool missing = std::isnan(x);
    doubled[2 * f] = missing ? -kInf : x;
    doubled[2 * f + 1] = missing ? kInf : x;
  }
}

template <bool kGeneric>
void Model::margins_block(const float* rows, std::size_t n, float* out) const noexcept {
  const std::size_t g = num_groups_;
  if (binned_) {  // the compact layout is faster row by row than this layout in blocks
    for (std::size_t r = 0; r < n; ++r) margins(rows + r * num_features_, out + r * g);
    return;
  }
  std::fill(out, out + n * g, base_margin_);
  std::uint32_t at[kBlockRows];
  thread_local std::vector<float> doubled;
  const std::size_t width = 2 * num_features_;
  if constexpr (!kGeneric) {
    doubled.resize(n * width);
    for (std::size_t r = 0; r < n; ++r)
      expand_row(rows + r * num_features_, doubled.data() + r * width);
  }
  // Tree by tree over the block: each row still adds its leaves in tree order, in float, as
  // XGBoost does, so results are bit-identical to a row-at-a-time walk.
  for (std::size_t t = 0; t < roots_.size(); ++t) {
    const std::uint32_t root = roots_[t];
    float* o = out + groups_[t];
    if constexpr (kGeneric) {
      for (std::size_t r = 0; r < n; ++r) at[r] = leaf<true>(root, rows + r * num_features_);
    } else {
      // Level by level across the block: the rows' steps are independent, so their loads
      // overlap instead of waiting on each other; a row that reached its leaf stays there.
      std::fill(at, at + n, root);
      const float* x = doubled.data();
      for (std::uint8_t level = 0; level < depths_[t]; ++level) {
        for (std::size_t r = 0; r < n; ++r) {
          const Node& nd = nodes_[at[r]];
          const std::uint32_t right = x[r * width + (nd.meta & kIndexMask)] >= nd.value;
          at[r] = (nd.meta & kLeaf) ? at[r] : nd.left + right;
        }
      }
    }
    for (std::size_t r = 0; r < n; ++r) o[r * g] += nodes_[at[r]].value;
  }
}

void Model::margins(const float* row, float* out) const noexcept {
  std::fill(out, out + num_groups_, base_margin_);
  if (binned_) {
    binned_->add_leaves(row, groups_.data(), out);
    return;
  }
  if (has_categorical_ || !doubled_rows_) {
    for (std::size_t t = 0; t < roots_.size(); ++t)
      out[groups_[t]] += nodes_[leaf<true>(roots_[t], row)].value;
    return;
  }
  thread_local std::vector<float> doubled;
  doubled.resize(2 * num_features_);
  expand_row(row, doubled.data());
  const float* x = doubled.data();
  // One row: walk a group of trees level by level, so that their independent steps overlap;
  // the leaves are then added in tree order.
  constexpr std::size_t kLanes = 16;
  std::uint32_t at[kLanes];
  for (std::size_t t0 = 0; t0 < roots_.size(); t0 += kLanes) {
    const std::size_t k = std::min(kLanes, roots_.size() - t0);
    std::uint8_t depth = 0;
    for (std::size_t i = 0; i < k; ++i) {
      at[i] = roots_[t0 + i];
      depth = std::max(depth, depths_[t0 + i]);
    }
    for (std::uint8_t level = 0; level < depth; ++level) {
      for (std::size_t i = 0; i < k; ++i) {
        const Node& nd = nodes_[at[i]];
        const std::uint32_t right = x[nd.meta & kIndexMask] >= nd.value;
        at[i] = (nd.meta & kLeaf) ? at[i] : nd.left + right;
      }
    }
    for (std::size_t i = 0; i < k; ++i) out[groups_[t0 + i]] += nodes_[at[i]].value;
  }
}

void Model::transform(const float* m, float* out) const noexcept {
  switch (output_) {
    case Output::identity:
      out[0] = m[0];
      return;
    case Output::sigmoid:
      out[0] =
          1.0f / (std::exp(std::min(-m[0], 88.7f)) + 1.0f + 1e-16f);  // XGBoost's common::Sigmoid
      return;
    case Output::exp:
      out[0] = std::exp(m[0]);
      return;
    case Output::softprob: {  // XGBoost's common::Softmax: float exponentials summed in double
      float wmax = m[0];
      for (std::size_t k = 1; k < num_groups_; ++k) wmax = std::fmax(m[k], wmax);
      double wsum = 0;
      for (std::size_t k = 0; k < num_groups_; ++k) {
        out[k] = std::exp(m[k] - wmax);
        wsum += out[k];
      }
      for (std::size_t k = 0; k < num_groups_; ++k) out[k] /= static_cast<float>(wsum);
      return;
    }
    case Output::softmax: {  // the first class with the largest margin
      std::size_t best = 0;
      for (std::size_t k = 1; k < num_groups_; ++k)
        if (m[k] > m[best]) best = k;
      out[0] = static_cast<float>(best);
      return;
    }
  }
}

void Model::predict(const float* row, float* out) const noexcept {
  float stack[16];
  std::vector<float> heap;
  float* m = stack;
  if (num_groups_ > 16) {
    heap.resize(num_groups_);
    m = heap.data();
  }
  margins(row, m);
  transform(m, out);
}

float Model::predict(const float* row) const noexcept {
  assert(num_outputs() == 1);
  float out[1];
  if (num_groups_ == 1) {
    float m;
    margins(row, &m);
    transform(&m, out);
  } else {
    predict(row, out);
  }
  return out[0];
}

void Model::margins_batch(const float* rows, std::size_t n, float* out, int threads) const {
  parallel_rows(n, threads, 2 * kBlockRows, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; r += kBlockRows) {
      std::size_t k = std::min(kBlockRows, e - r);
      if (has_categorical_ || !doubled_rows_)
        margins_block<true>(rows + r * num_features_, k, out + r * num_groups_);
      else
        margins_block<false>(rows + r * num_features_, k, out + r * num_groups_);
    }
  });
}

void Model::predict_batch(const float* rows, std::size_t n, float* out, int threads) const {
  const std::size_t g = num_groups_, o = num_outputs();
  parallel_rows(n, threads, 2 * kBlockRows, [&](std::size_t b, std::size_t e) {
    std::vector<float> m(kBlockRows * g);
    for (std::size_t r = b; r < e; r += kBlockRows) {
      std::size_t k = std::min(kBlockRows, e - r);
      if (has_categorical_ || !doubled_rows_)
        margins_block<true>(rows + r * num_features_, k, m.data());
      else
        margins_block<false>(rows + r * num_features_, k, m.data());
      for (std::size_t i = 0; i < k; ++i) transform(m.data() + i * g, out + (r + i) * o);
    }
  });
}

void Model::contributions_batch(const float* rows, std::size_t n, float* out, int threads) const {
  const std::size_t width = num_groups_ * (num_features_ + 1);
  constexpr std::size_t kShapBlock = 32;
  parallel_rows(n, threads, kShapBlock, [&](std::size_t b, std::size_t e) {
    for (std::size_t r = b; r < e; r += kShapBlock)
      contributions_block(rows + r * num_features_, std::min(kShapBlock, e - r), out + r * width);
  });
}

}  // namespace fra::score
