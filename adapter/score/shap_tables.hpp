#pragma once
// Precomputed TreeSHAP: for every leaf, what each feature on its path receives, tabulated over
// which of the path's features the row agrees with. A row then costs one pass over the tree's
// splits and, per leaf, one table row: O(d) instead of the O(d^2) of the recursive algorithm
// (the idea of Fast TreeSHAP v2, Yang 2021), for 2^d * d floats per leaf with d distinct
// features on its path.
//
// For a leaf with value v and distinct path features k (zero fraction z_k: the share of cover
// that follows the path at k's splits; one fraction o_k: 1 if the row follows the path at all of
// them), feature j receives
//   v (o_j - z_j) * Q(H \ {j}) * prod_{k not in H, k != j} z_k,
//   Q(M) = sum_{S subset of M} |S|! (d - |S| - 1)! / d! * prod_{k in M \ S} z_k,
// where H is the set of features the row follows. With C(H) the product of z over the features
// the row does not follow, that is (1 - z_j) C(H) v Q(H \ {j}) for a followed j and -C(H) v Q(H)
// for any other. The tables hold that value for every H and j, computed in double.

#include <cstdint>
#include <mutex>
#include <vector>

namespace fra::score {

struct ShapLeaf {
  std::uint32_t node;         // the leaf
  std::uint32_t slot_begin;   // into ShapTables::slot_feature: d entries
  std::uint32_t table_begin;  // into ShapTables::values: 2^d rows of d values
  std::uint32_t d;
};

struct ShapTables {
  std::vector<std::uint8_t> tabled;       // per tree: 1 if its leaves are below
  std::vector<std::uint32_t> leaf_begin;  // per tree, into leaves (size trees + 1)
  std::vector<ShapLeaf> leaves;
  std::vector<std::uint8_t> node_slot;  // per split node: its feature's slot on the path to it
  std::vector<std::uint32_t> slot_feature;
  std::vector<float> values;
};

struct LazyShapTables {
  std::once_flag once;
  ShapTables tables;
};

}  // namespace fra::score
