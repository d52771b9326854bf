#pragma once
// Precomputed TreeSHAP: for every leaf, the Shapley weights of its path as a table over which
// of the path's features the row agrees with. A row then costs O(path length) per leaf instead
// of the O(path length^2) of the recursive algorithm (the idea of Fast TreeSHAP v2, Yang 2021),
// for the memory of 2^d floats per leaf with d distinct features on its path.
//
// For a leaf with value v and distinct path features k (zero fraction z_k: the share of cover
// that follows the path at k's splits; one fraction o_k: 1 if the row follows the path at all of
// them), feature j receives
//   v (o_j - z_j) * Q(H \ {j}) * prod_{k cold, k != j} z_k,
//   Q(M) = sum_{S subset of M} |S|! (d - |S| - 1)! / d! * prod_{k in M \ S} z_k,
// where H is the set of features the row follows. With C(H) the product of z over the features
// the row does not follow, that is (1 - z_j) C(H) v Q(H \ {j}) for a followed j and -C(H) v Q(H)
// for any other: the tables hold v Q(M) and C(M) for every subset M.

#include <cstdint>
#include <mutex>
#include <vector>

namespace fra::score {

struct ShapPathNode {
  std::uint32_t node;   // an internal node on the path
  std::uint8_t slot;    // which distinct feature of the path it splits on
  std::uint8_t right;   // 1 if the path goes right there
};

struct ShapLeaf {
  std::uint32_t path_begin;   // into ShapTables::path
  std::uint32_t slot_begin;   // into ShapTables::slot_feature / slot_zero
  std::uint32_t table_begin;  // into ShapTables::table and cold: 2^d entries each
  std::uint8_t path_len;
  std::uint8_t d;
};

struct ShapTables {
  std::vector<std::uint8_t> tabled;       // per tree: 1 if its leaves are below
  std::vector<std::uint32_t> leaf_begin;  // per tree, into leaves (size trees + 1)
  std::vector<ShapLeaf> leaves;
  std::vector<ShapPathNode> path;
  std::vector<std::uint32_t> slot_feature;
  std::vector<float> slot_one_minus_zero;  // 1 - z per slot
  std::vector<float> table;                // v Q(M)
  std::vector<float> cold;                 // C(M): product of z over the slots not in M
};

struct LazyShapTables {
  std::once_flag once;
  ShapTables tables;
};

}  // namespace fra::score
