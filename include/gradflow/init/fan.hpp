#pragma once
/// \file
/// Fan-in and fan-out of a weight matrix, the sizes the variance-scaling initializers use.

#include <string>

#include "gradflow/config.hpp"
#include "gradflow/core/error.hpp"

namespace gradflow::init {

/// Which fan the He initializers scale by: FanIn keeps the variance of the forward
/// activations, FanOut that of the backward gradients.
enum class FanMode { FanIn, FanOut };

/// Fan-in and fan-out of one weight.
struct Fans {
  Index fan_in = 0;
  Index fan_out = 0;
};

/// Fans of a [fan_out x fan_in] weight (PyTorch's layout: y = x W^T).
/// Throws ArgumentError for an empty matrix.
template <typename T>
Fans calculate_fans(const Matrix<T>& weight, const char* who = "init") {
  if (weight.size() == 0)
    throw ArgumentError(std::string(who) + ": cannot initialize an empty matrix " +
                        ::gradflow::detail::shape_str(weight.rows(), weight.cols()));
  return Fans{weight.cols(), weight.rows()};
}

}  // namespace gradflow::init
