#pragma once
/// \file
/// Activation layers: Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU.
///
/// Each wraps the op of the same name (gradflow/core/ops/activation.hpp) so it can sit in
/// a Sequential or a Residual; none has parameters.

#include <string>

#include "gradflow/core/ops/activation.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::nn {

/// y = x (a placeholder, e.g. the last "activation" of a regression head).
template <typename T>
class Identity : public Layer<T> {
 public:
  Var<T> forward(Var<T> x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

/// y = 1 / (1 + e^-x).
template <typename T>
class Sigmoid : public Layer<T> {
 public:
  Var<T> forward(Var<T> x) override { return sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

/// y = tanh x.
template <typename T>
class Tanh : public Layer<T> {
 public:
  Var<T> forward(Var<T> x) override { return tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

/// y = max(x, 0) (Nair & Hinton 2010).
template <typename T>
class ReLU : public Layer<T> {
 public:
  Var<T> forward(Var<T> x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

/// Options of LeakyReLU.
class LeakyReLUOptions {
 public:
  /// Slope for x < 0 (default 0.01, as PyTorch).
  LeakyReLUOptions& negative_slope(double s) { return negative_slope_ = s, *this; }
  double negative_slope() const { return negative_slope_; }

 private:
  double negative_slope_ = 0.01;
};

/// y = x for x > 0, negative_slope * x otherwise (Maas et al. 2013).
/// \code
///   LeakyReLU<float> act(LeakyReLUOptions().negative_slope(0.2));
/// \endcode
template <typename T>
class LeakyReLU : public Layer<T> {
 public:
  explicit LeakyReLU(const LeakyReLUOptions& options = {}) : options_(options) {}
  Var<T> forward(Var<T> x) override {
    return leaky_relu(x, static_cast<T>(options_.negative_slope()));
  }
  const LeakyReLUOptions& options() const { return options_; }
  std::string type_name() const override { return "LeakyReLU"; }

 private:
  LeakyReLUOptions options_;
};

/// Options of ELU.
class ELUOptions {
 public:
  /// Scale of the negative part (default 1).
  ELUOptions& alpha(double a) { return alpha_ = a, *this; }
  double alpha() const { return alpha_; }

 private:
  double alpha_ = 1.0;
};

/// y = x for x > 0, alpha (e^x - 1) otherwise (Clevert, Unterthiner & Hochreiter 2016).
template <typename T>
class ELU : public Layer<T> {
 public:
  explicit ELU(const ELUOptions& options = {}) : options_(options) {}
  Var<T> forward(Var<T> x) override { return elu(x, static_cast<T>(options_.alpha())); }
  const ELUOptions& options() const { return options_; }
  std::string type_name() const override { return "ELU"; }

 private:
  ELUOptions options_;
};

/// Options of GELU.
class GELUOptions {
 public:
  /// GeluApproximation::None for the exact x Phi(x) (default), Tanh for the tanh form.
  GELUOptions& approximate(GeluApproximation a) { return approximate_ = a, *this; }
  GeluApproximation approximate() const { return approximate_; }

 private:
  GeluApproximation approximate_ = GeluApproximation::None;
};

/// y = x Phi(x), Phi the standard normal CDF (Hendrycks & Gimpel 2016).
/// \code
///   GELU<double> exact;
///   GELU<double> fast(GELUOptions().approximate(GeluApproximation::Tanh));
/// \endcode
template <typename T>
class GELU : public Layer<T> {
 public:
  explicit GELU(const GELUOptions& options = {}) : options_(options) {}
  Var<T> forward(Var<T> x) override { return gelu(x, options_.approximate()); }
  const GELUOptions& options() const { return options_; }
  std::string type_name() const override { return "GELU"; }

 private:
  GELUOptions options_;
};

}  // namespace gradflow::nn
