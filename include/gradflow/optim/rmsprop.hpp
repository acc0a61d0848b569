#pragma once
/// \file
/// RMSprop (torch.optim.RMSprop).

#include <vector>

#include "gradflow/optim/optimizer.hpp"

namespace gradflow::optim {

/// Hyper-parameters of RMSprop, with PyTorch's names and defaults.
class RMSpropOptions {
 public:
  explicit RMSpropOptions(double lr = 1e-2) : lr_(lr) {}
  RMSpropOptions& lr(double v) { return lr_ = v, *this; }
  RMSpropOptions& alpha(double v) { return alpha_ = v, *this; }
  RMSpropOptions& eps(double v) { return eps_ = v, *this; }
  RMSpropOptions& weight_decay(double v) { return weight_decay_ = v, *this; }
  RMSpropOptions& momentum(double v) { return momentum_ = v, *this; }
  RMSpropOptions& centered(bool v) { return centered_ = v, *this; }
  /// Ascends instead of descends (the gradient's sign is flipped first, as in PyTorch).
  RMSpropOptions& maximize(bool v) { return maximize_ = v, *this; }
  double lr() const { return lr_; }
  double alpha() const { return alpha_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  double momentum() const { return momentum_; }
  bool centered() const { return centered_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_, alpha_ = 0.99, eps_ = 1e-8, weight_decay_ = 0.0, momentum_ = 0.0;
  bool centered_ = false, maximize_ = false;
};

/// RMSprop (Tieleman & Hinton 2012), PyTorch's rule:
///   g = -g (maximize),   g = g + weight_decay p
///   s = alpha s + (1 - alpha) g^2
///   a = sqrt(s) + eps, or sqrt(s - gbar^2) + eps with gbar = alpha gbar + (1 - alpha) g (centered)
///   b = momentum b + g / a and p = p - lr b (momentum > 0), else p = p - lr g / a
template <typename T>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(std::vector<Parameter<T>*> params, const RMSpropOptions& options = RMSpropOptions())
      : Optimizer<T>(std::move(params), options.lr(), "RMSprop"), options_(options) {
    this->require(options.alpha() >= 0.0, "RMSprop", "alpha must be >= 0");
    this->require(options.eps() >= 0.0, "RMSprop", "eps must be >= 0");
    this->require(options.momentum() >= 0.0, "RMSprop", "momentum must be >= 0");
    this->require(options.weight_decay() >= 0.0, "RMSprop", "weight_decay must be >= 0");
    square_avg_ = this->zeros_like_params();
    if (options.centered()) grad_avg_ = this->zeros_like_params();
    if (options.momentum() > 0.0) buffers_ = this->zeros_like_params();
  }

  void step() override {
    const T lr = T(this->lr_), wd = T(options_.weight_decay()), eps = T(options_.eps());
    const T alpha = T(options_.alpha()), mu = T(options_.momentum());
    const T sign = options_.maximize() ? T(-1) : T(1);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      this->check_shape(i, square_avg_[i]);
      auto p = this->params_[i]->value().array();
      auto g = sign * this->params_[i]->grad().array();
      auto s = square_avg_[i].array();
      s = alpha * s + (T(1) - alpha) * (g + wd * p).square();
      auto apply = [&](const auto& avg) {
        if (mu > T(0)) {
          auto b = buffers_[i].array();
          b = mu * b + (g + wd * p) / avg;
          p -= lr * b;
        } else {
          p -= lr * (g + wd * p) / avg;
        }
      };
      if (options_.centered()) {
        auto ga = grad_avg_[i].array();
        ga = alpha * ga + (T(1) - alpha) * (g + wd * p);
        apply((s - ga.square()).sqrt() + eps);
      } else {
        apply(s.sqrt() + eps);
      }
    }
    ++this->steps_;
  }

  const RMSpropOptions& options() const { return options_; }

 private:
  RMSpropOptions options_;
  std::vector<Matrix<T>> square_avg_, grad_avg_, buffers_;
};

}  // namespace gradflow::optim
