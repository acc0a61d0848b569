#pragma once
/// \file
/// Inverted dropout as a mask multiply.

#include <string>

#include "gradflow/core/ops/elementwise.hpp"
#include "gradflow/core/random.hpp"

namespace gradflow {

/// Zeroes each element with probability p and scales the rest by 1/(1-p), so the
/// expected value is unchanged and evaluation needs no rescaling (Srivastava et al. 2014).
/// The mask is a constant on the tape. Backward: dx = g * mask.
template <typename T>
Var<T> dropout(Var<T> a, double p, Generator& gen) {
  if (!(p >= 0.0 && p < 1.0))
    throw ArgumentError("dropout: probability " + std::to_string(p) + " is outside [0, 1)");
  if (p == 0.0) return a;
  Tape<T>& t = a.tape();
  const T keep_scale = T(1.0 / (1.0 - p));
  Var<T> mask = t.apply(
      "dropout_mask", {}, a.rows(), a.cols(),
      [&gen, p, keep_scale](MatrixMap<T> out) {
        for (Index i = 0; i < out.size(); ++i)
          out.data()[i] = gen.uniform() < p ? T(0) : keep_scale;
      },
      [](Tape<T>&, Var<T>) {});
  return mul(a, mask);
}

}  // namespace gradflow
