#pragma once
/// \file
/// Dense: the fully connected layer y = x W^T + b (torch::nn::Linear).

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>

#include "gradflow/core/ops/elementwise.hpp"
#include "gradflow/core/ops/matmul.hpp"
#include "gradflow/init/basic.hpp"
#include "gradflow/init/he.hpp"
#include "gradflow/nn/generator.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::nn {

/// Options of Dense: sizes, whether to add a bias, and the seed of the initial weights.
/// \code
///   Dense<float> layer(DenseOptions(784, 128).bias(false).seed(7));
/// \endcode
class DenseOptions {
 public:
  DenseOptions(Index in_features, Index out_features)
      : in_features_(in_features), out_features_(out_features) {}

  /// Size of each input row.
  DenseOptions& in_features(Index n) { return in_features_ = n, *this; }
  Index in_features() const { return in_features_; }
  /// Size of each output row.
  DenseOptions& out_features(Index n) { return out_features_ = n, *this; }
  Index out_features() const { return out_features_; }
  /// Whether to learn an additive bias b (default true).
  DenseOptions& bias(bool on) { return bias_ = on, *this; }
  bool bias() const { return bias_; }
  /// Seed of the initial weights; without one they come from nn::default_generator().
  DenseOptions& seed(std::uint64_t s) { return seed_ = s, *this; }
  const std::optional<std::uint64_t>& seed() const { return seed_; }

 private:
  Index in_features_, out_features_;
  bool bias_ = true;
  std::optional<std::uint64_t> seed_;
};

/// Fully connected layer: y = x W^T + b for x [batch x in], W [out x in], b [1 x out].
///
/// Parameters "weight" and (when options.bias()) "bias", initialized as PyTorch's Linear:
/// W ~ kaiming_uniform_(a = sqrt 5) = U(-1/sqrt(in), 1/sqrt(in)) and
/// b ~ U(-1/sqrt(in), 1/sqrt(in)). Re-initialize with any gradflow::init function:
/// \code
///   Dense<double> fc(DenseOptions(64, 64));
///   init::kaiming_normal_(fc.weight().value(), gen, 0.0, init::FanMode::FanIn,
///                         init::Nonlinearity::Relu);
///   Var<double> y = fc(tape.constant(x));       // x is [batch x 64]
/// \endcode
/// Backward: dx = dy W, dW = dy^T x, db = column sums of dy.
template <typename T>
class Dense : public Layer<T> {
 public:
  /// Draws the initial weights from options.seed(), or nn::default_generator().
  explicit Dense(const DenseOptions& options) : options_(options) {
    create();
    if (options_.seed()) {
      Generator gen(*options_.seed());
      reset_parameters(gen);
    } else {
      reset_parameters(default_generator());
    }
  }

  /// Draws the initial weights from `gen` (options.seed() is ignored).
  Dense(const DenseOptions& options, Generator& gen) : options_(options) {
    create();
    reset_parameters(gen);
  }

  /// Re-draws W and b from PyTorch's default distribution U(-1/sqrt(in), 1/sqrt(in)).
  void reset_parameters(Generator& gen) {
    init::kaiming_uniform_(weight_->value(), gen, std::sqrt(5.0));
    if (bias_ != nullptr) {
      const double bound = 1.0 / std::sqrt(static_cast<double>(options_.in_features()));
      init::uniform_(bias_->value(), gen, -bound, bound);
    }
  }

  /// y = x W^T + b. Throws ShapeError naming the layer when x is not [batch x in].
  Var<T> forward(Var<T> x) override {
    if (x.cols() != options_.in_features())
      throw ShapeError(describe() + ": input has shape " +
                       gradflow::detail::shape_str(x.rows(), x.cols()) + " but the layer expects " +
                       gradflow::detail::shape_str(x.rows(), options_.in_features()) +
                       " (in_features " + std::to_string(options_.in_features()) + ")");
    Tape<T>& tape = x.tape();
    Var<T> y = matmul_nt(x, tape.param(*weight_, "dense.weight"));
    if (bias_ != nullptr) y = add(y, tape.param(*bias_, "dense.bias"));
    return y;
  }

  /// W, [out x in].
  Parameter<T>& weight() { return *weight_; }
  /// b, [1 x out]; null when the layer has no bias.
  Parameter<T>* bias() { return bias_; }
  const DenseOptions& options() const { return options_; }
  std::string type_name() const override { return "Dense"; }

 private:
  void create() {
    if (options_.in_features() <= 0 || options_.out_features() <= 0)
      throw ArgumentError(describe() + ": sizes must be positive");
    weight_ = &this->register_parameter(
        "weight", Matrix<T>::Zero(options_.out_features(), options_.in_features()));
    if (options_.bias())
      bias_ = &this->register_parameter("bias", Matrix<T>::Zero(1, options_.out_features()));
  }

  std::string describe() const {
    return "Dense(" + std::to_string(options_.in_features()) + " -> " +
           std::to_string(options_.out_features()) + ")";
  }

  DenseOptions options_;
  Parameter<T>* weight_ = nullptr;
  Parameter<T>* bias_ = nullptr;
};

}  // namespace gradflow::nn
