#pragma once
/// \file
/// He (Kaiming) initialization: variance gain^2 / fan, for rectifier networks.

#include <cmath>

#include "gradflow/init/basic.hpp"
#include "gradflow/init/fan.hpp"
#include "gradflow/init/gain.hpp"

namespace gradflow::detail {
inline double kaiming_std(init::Fans f, double a, init::FanMode mode,
                          init::Nonlinearity nonlinearity) {
  const double fan = static_cast<double>(mode == init::FanMode::FanIn ? f.fan_in : f.fan_out);
  return init::calculate_gain(nonlinearity, a) / std::sqrt(fan);
}
}  // namespace gradflow::detail

namespace gradflow::init {

/// Fills the [fan_out x fan_in] matrix `m` from U(-b, b) with b = sqrt(3) * gain / sqrt(fan),
/// gain = calculate_gain(nonlinearity, a) and fan = fan_in or fan_out by `mode`,
/// so Var[w] = gain^2 / fan.
///
/// He, Zhang, Ren & Sun, "Delving Deep into Rectifiers: Surpassing Human-Level Performance
/// on ImageNet Classification", ICCV 2015. `a` is the negative slope of a leaky ReLU (0 for
/// ReLU). PyTorch's Linear uses a = sqrt(5), which gives b = 1 / sqrt(fan_in).
/// \code
///   init::kaiming_uniform_(w, gen, 0.0, init::FanMode::FanIn, init::Nonlinearity::Relu);
/// \endcode
template <typename T>
Matrix<T>& kaiming_uniform_(Matrix<T>& m, Generator& gen, double a = 0.0,
                            FanMode mode = FanMode::FanIn,
                            Nonlinearity nonlinearity = Nonlinearity::LeakyRelu) {
  const double stddev =
      detail::kaiming_std(calculate_fans(m, "kaiming_uniform_"), a, mode, nonlinearity);
  const double bound = std::sqrt(3.0) * stddev;
  return uniform_(m, gen, -bound, bound);
}

/// Fills the [fan_out x fan_in] matrix `m` from N(0, std^2) with std = gain / sqrt(fan)
/// (He et al., ICCV 2015); arguments as kaiming_uniform_.
template <typename T>
Matrix<T>& kaiming_normal_(Matrix<T>& m, Generator& gen, double a = 0.0,
                           FanMode mode = FanMode::FanIn,
                           Nonlinearity nonlinearity = Nonlinearity::LeakyRelu) {
  const double stddev =
      detail::kaiming_std(calculate_fans(m, "kaiming_normal_"), a, mode, nonlinearity);
  return normal_(m, gen, 0.0, stddev);
}

}  // namespace gradflow::init
