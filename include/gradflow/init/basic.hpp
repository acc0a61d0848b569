#pragma once
/// \file
/// Plain fills: constant_, zeros_, ones_, uniform_, normal_.

#include <string>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"
#include "gradflow/core/random.hpp"

namespace gradflow::init {

/// Sets every element of `m` to `value`; returns `m`.
/// \code
///   init::constant_(bias, 0.1);
/// \endcode
template <typename T>
Matrix<T>& constant_(Matrix<T>& m, double value) {
  m.setConstant(static_cast<T>(value));
  return m;
}

/// Sets every element of `m` to 0; returns `m`.
template <typename T>
Matrix<T>& zeros_(Matrix<T>& m) {
  return constant_(m, 0.0);
}

/// Sets every element of `m` to 1; returns `m`.
template <typename T>
Matrix<T>& ones_(Matrix<T>& m) {
  return constant_(m, 1.0);
}

/// Fills `m` with draws from U(lo, hi), in column-major order; returns `m`.
/// \code
///   Generator gen(42);
///   init::uniform_(w, gen, -0.1, 0.1);
/// \endcode
template <typename T>
Matrix<T>& uniform_(Matrix<T>& m, Generator& gen, double lo = 0.0, double hi = 1.0) {
  if (!(lo <= hi))
    throw ArgumentError("uniform_: lower bound " + std::to_string(lo) + " above upper bound " +
                        std::to_string(hi));
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(gen.uniform(lo, hi));
  return m;
}

/// Fills `m` with draws from N(mean, stddev^2), in column-major order; returns `m`.
template <typename T>
Matrix<T>& normal_(Matrix<T>& m, Generator& gen, double mean = 0.0, double stddev = 1.0) {
  if (!(stddev >= 0.0))
    throw ArgumentError("normal_: standard deviation " + std::to_string(stddev) + " is negative");
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<T>(gen.normal(mean, stddev));
  return m;
}

}  // namespace gradflow::init
