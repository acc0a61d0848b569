#pragma once
/// \file
/// Dropout: inverted dropout in training mode, the identity in evaluation mode.

#include <cstdint>
#include <optional>
#include <string>

#include "gradflow/core/ops/dropout.hpp"
#include "gradflow/nn/generator.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::nn {

/// Options of Dropout.
/// \code
///   Dropout<float> drop(DropoutOptions(0.2).seed(3));
/// \endcode
class DropoutOptions {
 public:
  /// Probability p of zeroing each element (default 0.5).
  explicit DropoutOptions(double p = 0.5) : p_(p) {}
  DropoutOptions& p(double value) { return p_ = value, *this; }
  double p() const { return p_; }
  /// Seed of the layer's own mask generator; without one, masks are drawn from
  /// nn::default_generator().
  DropoutOptions& seed(std::uint64_t s) { return seed_ = s, *this; }
  const std::optional<std::uint64_t>& seed() const { return seed_; }

 private:
  double p_;
  std::optional<std::uint64_t> seed_;
};

/// Zeroes each element with probability p and scales the survivors by 1 / (1 - p) in
/// training mode, so evaluation mode is the identity (Srivastava et al., "Dropout: A
/// Simple Way to Prevent Neural Networks from Overfitting", JMLR 2014).
/// Backward: dx = dy * mask / (1 - p).
template <typename T>
class Dropout : public Layer<T> {
 public:
  explicit Dropout(const DropoutOptions& options = DropoutOptions()) : options_(options) {
    if (!(options_.p() >= 0.0 && options_.p() < 1.0))
      throw ArgumentError("Dropout: probability " + std::to_string(options_.p()) +
                          " is outside [0, 1)");
    if (options_.seed()) generator_.emplace(*options_.seed());
  }

  Var<T> forward(Var<T> x) override {
    if (!this->is_training()) return x;
    return dropout(x, options_.p(), generator_ ? *generator_ : default_generator());
  }

  const DropoutOptions& options() const { return options_; }
  std::string type_name() const override { return "Dropout"; }

 private:
  DropoutOptions options_;
  std::optional<Generator> generator_;
};

}  // namespace gradflow::nn
