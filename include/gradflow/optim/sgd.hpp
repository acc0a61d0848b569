#pragma once
/// \file
/// SGD with momentum, dampening, Nesterov momentum and weight decay (torch.optim.SGD).

#include <vector>

#include "gradflow/optim/optimizer.hpp"

namespace gradflow::optim {

/// Hyper-parameters of SGD, with PyTorch's names and defaults.
class SGDOptions {
 public:
  explicit SGDOptions(double lr) : lr_(lr) {}
  SGDOptions& lr(double v) { return lr_ = v, *this; }
  SGDOptions& momentum(double v) { return momentum_ = v, *this; }
  SGDOptions& dampening(double v) { return dampening_ = v, *this; }
  SGDOptions& weight_decay(double v) { return weight_decay_ = v, *this; }
  SGDOptions& nesterov(bool v) { return nesterov_ = v, *this; }
  /// Ascends instead of descends (the gradient's sign is flipped first, as in PyTorch).
  SGDOptions& maximize(bool v) { return maximize_ = v, *this; }
  double lr() const { return lr_; }
  double momentum() const { return momentum_; }
  double dampening() const { return dampening_; }
  double weight_decay() const { return weight_decay_; }
  bool nesterov() const { return nesterov_; }
  bool maximize() const { return maximize_; }

 private:
  double lr_, momentum_ = 0.0, dampening_ = 0.0, weight_decay_ = 0.0;
  bool nesterov_ = false, maximize_ = false;
};

/// Stochastic gradient descent (Nesterov form of Sutskever et al. 2013), PyTorch's rule:
///   d = g + weight_decay p             (g = -g first when maximize)
///   b = d on the first step, else b = momentum b + (1 - dampening) d     (momentum > 0)
///   d = d + momentum b (nesterov) or d = b
///   p = p - lr d
/// \code
///   optim::SGD<float> opt(model.parameters(), optim::SGDOptions(0.1).momentum(0.9));
/// \endcode
template <typename T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Parameter<T>*> params, const SGDOptions& options)
      : Optimizer<T>(std::move(params), options.lr(), "SGD"), options_(options) {
    this->require(options.momentum() >= 0.0, "SGD", "momentum must be >= 0");
    this->require(options.weight_decay() >= 0.0, "SGD", "weight_decay must be >= 0");
    this->require(!options.nesterov() || (options.momentum() > 0.0 && options.dampening() == 0.0),
                  "SGD", "Nesterov momentum requires a momentum and zero dampening");
    if (options.momentum() > 0.0) buffers_ = this->zeros_like_params();
  }

  void step() override {
    const T lr = T(this->lr_), wd = T(options_.weight_decay()), mu = T(options_.momentum());
    const T damp = T(1.0 - options_.dampening());
    const T sign = options_.maximize() ? T(-1) : T(1);
    const bool first = this->steps_ == 0;
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      auto p = this->params_[i]->value().array();
      auto g = sign * this->params_[i]->grad().array();
      if (mu == T(0)) {
        this->check_shape(i, this->params_[i]->value());
        p -= lr * (g + wd * p);
        continue;
      }
      this->check_shape(i, buffers_[i]);
      auto b = buffers_[i].array();
      if (first)
        b = g + wd * p;
      else
        b = mu * b + damp * (g + wd * p);
      if (options_.nesterov())
        p -= lr * ((g + wd * p) + mu * b);
      else
        p -= lr * b;
    }
    ++this->steps_;
  }

  const SGDOptions& options() const { return options_; }

 private:
  SGDOptions options_;
  std::vector<Matrix<T>> buffers_;
};

}  // namespace gradflow::optim
