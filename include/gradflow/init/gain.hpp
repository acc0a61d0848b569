#pragma once
/// \file
/// Nonlinearity and calculate_gain(): the scale an initializer needs to keep the variance
/// of activations constant through a layer followed by a given nonlinearity.

#include <cmath>
#include <string>

#include "gradflow/core/error.hpp"

namespace gradflow::init {

/// The nonlinearity that follows a layer, for calculate_gain() and the He initializers.
enum class Nonlinearity { Linear, Sigmoid, Tanh, Relu, LeakyRelu, Selu };

/// The recommended gain for `nonlinearity`, with PyTorch's values:
///
/// | nonlinearity | gain |
/// | --- | --- |
/// | Linear, Sigmoid | 1 |
/// | Tanh | 5/3 |
/// | Relu | sqrt(2) |
/// | LeakyRelu | sqrt(2 / (1 + param^2)), param = negative slope (PyTorch's default 0.01) |
/// | Selu | 3/4 |
///
/// \code
///   double g = init::calculate_gain(init::Nonlinearity::LeakyRelu, 0.2);  // sqrt(2/1.04)
/// \endcode
/// `param` is only read for LeakyRelu.
inline double calculate_gain(Nonlinearity nonlinearity, double param = 0.01) {
  switch (nonlinearity) {
    case Nonlinearity::Linear:
    case Nonlinearity::Sigmoid:
      return 1.0;
    case Nonlinearity::Tanh:
      return 5.0 / 3.0;
    case Nonlinearity::Relu:
      return std::sqrt(2.0);
    case Nonlinearity::LeakyRelu:
      if (!std::isfinite(param))
        throw ArgumentError("calculate_gain: leaky_relu slope " + std::to_string(param) +
                            " is not finite");
      return std::sqrt(2.0 / (1.0 + param * param));
    case Nonlinearity::Selu:
      return 0.75;
  }
  throw ArgumentError("calculate_gain: unknown nonlinearity");
}

}  // namespace gradflow::init
