#pragma once
/// \file
/// Adagrad (torch.optim.Adagrad).

#include <vector>

#include "gradflow/optim/optimizer.hpp"

namespace gradflow::optim {

/// Hyper-parameters of Adagrad, with PyTorch's names and defaults.
class AdagradOptions {
 public:
  explicit AdagradOptions(double lr = 1e-2) : lr_(lr) {}
  AdagradOptions& lr(double v) { return lr_ = v, *this; }
  AdagradOptions& lr_decay(double v) { return lr_decay_ = v, *this; }
  AdagradOptions& weight_decay(double v) { return weight_decay_ = v, *this; }
  AdagradOptions& initial_accumulator_value(double v) { return initial_ = v, *this; }
  AdagradOptions& eps(double v) { return eps_ = v, *this; }
  /// Ascends instead of descends (the gradient's sign is flipped first, as in PyTorch).
  AdagradOptions& maximize(bool v) { return maximize_ = v, *this; }
  double lr() const { return lr_; }
  double lr_decay() const { return lr_decay_; }
  double weight_decay() const { return weight_decay_; }
  double initial_accumulator_value() const { return initial_; }
  double eps() const { return eps_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_, lr_decay_ = 0.0, weight_decay_ = 0.0, initial_ = 0.0, eps_ = 1e-10;
  bool maximize_ = false;
};

/// Adagrad (Duchi, Hazan & Singer 2011), PyTorch's rule with step count t:
///   g = -g (maximize),   g = g + weight_decay p,   s = s + g^2
///   p = p - lr / (1 + (t - 1) lr_decay) * g / (sqrt(s) + eps)
template <typename T>
class Adagrad : public Optimizer<T> {
 public:
  Adagrad(std::vector<Parameter<T>*> params, const AdagradOptions& options = AdagradOptions())
      : Optimizer<T>(std::move(params), options.lr(), "Adagrad"), options_(options) {
    this->require(options.lr_decay() >= 0.0, "Adagrad", "lr_decay must be >= 0");
    this->require(options.weight_decay() >= 0.0, "Adagrad", "weight_decay must be >= 0");
    this->require(options.initial_accumulator_value() >= 0.0, "Adagrad",
                  "initial_accumulator_value must be >= 0");
    this->require(options.eps() >= 0.0, "Adagrad", "eps must be >= 0");
    sums_ = this->zeros_like_params(T(options.initial_accumulator_value()));
  }

  void step() override {
    ++this->steps_;
    const T clr = T(this->lr_ / (1.0 + double(this->steps_ - 1) * options_.lr_decay()));
    const T wd = T(options_.weight_decay()), eps = T(options_.eps());
    const T sign = options_.maximize() ? T(-1) : T(1);
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      this->check_shape(i, sums_[i]);
      auto p = this->params_[i]->value().array();
      auto g = sign * this->params_[i]->grad().array();
      auto s = sums_[i].array();
      s += (g + wd * p).square();
      p -= clr * (g + wd * p) / (s.sqrt() + eps);
    }
  }

  const AdagradOptions& options() const { return options_; }

 private:
  AdagradOptions options_;
  std::vector<Matrix<T>> sums_;
};

}  // namespace gradflow::optim
