#pragma once
/// \file
/// Xavier (Glorot) initialization: variance 2 / (fan_in + fan_out).

#include <cmath>

#include "gradflow/init/basic.hpp"
#include "gradflow/init/fan.hpp"

namespace gradflow::init {

/// Fills the [fan_out x fan_in] matrix `m` from U(-a, a) with
/// a = gain * sqrt(6 / (fan_in + fan_out)), so Var[w] = gain^2 * 2 / (fan_in + fan_out).
///
/// Glorot & Bengio, "Understanding the difficulty of training deep feedforward neural
/// networks", AISTATS 2010. Suits tanh/sigmoid layers (use calculate_gain for the gain).
/// \code
///   init::xavier_uniform_(w, gen, init::calculate_gain(init::Nonlinearity::Tanh));
/// \endcode
template <typename T>
Matrix<T>& xavier_uniform_(Matrix<T>& m, Generator& gen, double gain = 1.0) {
  const Fans f = calculate_fans(m, "xavier_uniform_");
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(f.fan_in + f.fan_out));
  return uniform_(m, gen, -bound, bound);
}

/// Fills the [fan_out x fan_in] matrix `m` from N(0, std^2) with
/// std = gain * sqrt(2 / (fan_in + fan_out)) (Glorot & Bengio, AISTATS 2010).
template <typename T>
Matrix<T>& xavier_normal_(Matrix<T>& m, Generator& gen, double gain = 1.0) {
  const Fans f = calculate_fans(m, "xavier_normal_");
  const double stddev = gain * std::sqrt(2.0 / static_cast<double>(f.fan_in + f.fan_out));
  return normal_(m, gen, 0.0, stddev);
}

}  // namespace gradflow::init
