#pragma once
/// \file
/// Shape rules shared by the elementwise ops: each dimension equal, or 1 and broadcast.

#include <string>
#include <utility>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"

namespace gradflow::detail {

/// Result shape of an elementwise op on a and b, or ShapeError naming the op.
inline std::pair<Index, Index> broadcast_shape(const char* op, Index ar, Index ac, Index br,
                                               Index bc) {
  auto fit = [](Index x, Index y, Index& out) {
    if (x == y || y == 1) return out = x, true;
    if (x == 1) return out = y, true;
    return false;
  };
  Index rows = 0, cols = 0;
  if (!fit(ar, br, rows) || !fit(ac, bc, cols))
    throw ShapeError(std::string(op) + ": shapes " + shape_str(ar, ac) + " and " +
                     shape_str(br, bc) + " cannot be broadcast (each dimension must match or be 1)");
  return {rows, cols};
}

/// `m` repeated to rows x cols (a lazy expression, no copy).
template <typename M>
auto expand(const M& m, Index rows, Index cols) {
  return m.replicate(rows / m.rows(), cols / m.cols());
}

/// target += g, summing g over the dimensions that were broadcast to reach its shape.
template <typename Target, typename G>
void accumulate_reduced(Target&& target, const G& g) {
  if (target.rows() == g.rows() && target.cols() == g.cols()) {
    target += g;
  } else if (target.rows() == 1 && target.cols() == 1) {
    target(0, 0) += g.sum();
  } else if (target.rows() == 1) {
    target += g.colwise().sum();
  } else {
    target += g.rowwise().sum();
  }
}

}  // namespace gradflow::detail
