#pragma once
/// \file
/// Adam and AdamW (torch.optim.Adam, torch.optim.AdamW).

#include <cmath>
#include <vector>

#include "gradflow/optim/optimizer.hpp"

namespace gradflow::optim {

namespace detail {
/// Hyper-parameters shared by Adam and AdamW; the setters return the derived options type so
/// that AdamW takes only AdamWOptions (whose default weight_decay differs).
template <typename Derived>
class AdamOptionsBase {
 public:
  Derived& lr(double v) { return lr_ = v, self(); }
  Derived& betas(double beta1, double beta2) { return beta1_ = beta1, beta2_ = beta2, self(); }
  Derived& eps(double v) { return eps_ = v, self(); }
  Derived& weight_decay(double v) { return weight_decay_ = v, self(); }
  Derived& amsgrad(bool v) { return amsgrad_ = v, self(); }
  /// Ascends instead of descends (the gradient's sign is flipped first, as in PyTorch).
  Derived& maximize(bool v) { return maximize_ = v, self(); }
  double lr() const { return lr_; }
  double beta1() const { return beta1_; }
  double beta2() const { return beta2_; }
  double eps() const { return eps_; }
  double weight_decay() const { return weight_decay_; }
  bool amsgrad() const { return amsgrad_; }
  bool maximize() const { return maximize_; }

 protected:
  AdamOptionsBase(double lr, double weight_decay) : lr_(lr), weight_decay_(weight_decay) {}

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  double lr_, beta1_ = 0.9, beta2_ = 0.999, eps_ = 1e-8, weight_decay_;
  bool amsgrad_ = false, maximize_ = false;
};
}  // namespace detail

/// Hyper-parameters of Adam, with PyTorch's names and defaults (weight_decay 0).
class AdamOptions : public detail::AdamOptionsBase<AdamOptions> {
 public:
  explicit AdamOptions(double lr = 1e-3) : AdamOptionsBase(lr, 0.0) {}
};

/// Hyper-parameters of AdamW, with PyTorch's names and defaults (weight_decay 1e-2).
class AdamWOptions : public detail::AdamOptionsBase<AdamWOptions> {
 public:
  explicit AdamWOptions(double lr = 1e-3) : AdamOptionsBase(lr, 1e-2) {}
};

namespace detail {
/// Shared body of Adam (decay added to the gradient) and AdamW (decay applied to p).
template <typename T, typename Options>
class AdamBase : public Optimizer<T> {
 public:
  AdamBase(std::vector<Parameter<T>*> params, const Options& options, bool decoupled,
           const char* name)
      : Optimizer<T>(std::move(params), options.lr(), name),
        options_(options),
        decoupled_(decoupled) {
    this->require(options.eps() >= 0.0, name, "eps must be >= 0");
    this->require(options.beta1() >= 0.0 && options.beta1() < 1.0, name, "beta1 must be in [0, 1)");
    this->require(options.beta2() >= 0.0 && options.beta2() < 1.0, name, "beta2 must be in [0, 1)");
    this->require(options.weight_decay() >= 0.0, name, "weight_decay must be >= 0");
    m_ = this->zeros_like_params();
    v_ = this->zeros_like_params();
    if (options.amsgrad()) v_max_ = this->zeros_like_params();
  }

  void step() override {
    ++this->steps_;
    const double b1 = options_.beta1(), b2 = options_.beta2();
    const T lr = T(this->lr_), wd = T(options_.weight_decay()), eps = T(options_.eps());
    const T sign = options_.maximize() ? T(-1) : T(1);
    const T step_size = T(this->lr_ / (1.0 - std::pow(b1, double(this->steps_))));
    const T bc2_sqrt = T(std::sqrt(1.0 - std::pow(b2, double(this->steps_))));
    for (std::size_t i = 0; i < this->params_.size(); ++i) {
      this->check_shape(i, m_[i]);
      auto p = this->params_[i]->value().array();
      auto g = sign * this->params_[i]->grad().array();
      auto m = m_[i].array();
      auto v = v_[i].array();
      if (decoupled_) {
        p *= T(1) - lr * wd;
        m = T(b1) * m + T(1 - b1) * g;
        v = T(b2) * v + T(1 - b2) * g.square();
      } else {
        m = T(b1) * m + T(1 - b1) * (g + wd * p);
        v = T(b2) * v + T(1 - b2) * (g + wd * p).square();
      }
      if (options_.amsgrad()) {
        auto vmax = v_max_[i].array();
        vmax = vmax.max(v);
        p -= step_size * m / (vmax.sqrt() / bc2_sqrt + eps);
      } else {
        p -= step_size * m / (v.sqrt() / bc2_sqrt + eps);
      }
    }
  }

  const Options& options() const { return options_; }

 private:
  Options options_;
  bool decoupled_;
  std::vector<Matrix<T>> m_, v_, v_max_;
};
}  // namespace detail

/// Adam (Kingma & Ba 2015), PyTorch's rule with step count t:
///   g = -g (maximize),   g = g + weight_decay p
///   m = b1 m + (1 - b1) g,   v = b2 v + (1 - b2) g^2   (amsgrad: v_max = max(v_max, v))
///   p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// \code
///   optim::Adam<float> opt(model.parameters(), optim::AdamOptions(1e-3).betas(0.9, 0.999));
/// \endcode
template <typename T>
class Adam : public detail::AdamBase<T, AdamOptions> {
 public:
  Adam(std::vector<Parameter<T>*> params, const AdamOptions& options = AdamOptions())
      : detail::AdamBase<T, AdamOptions>(std::move(params), options, false, "Adam") {}
};

/// AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay,
///   p = p (1 - lr weight_decay), then Adam's update without decay in the gradient.
/// It takes AdamWOptions only, so the 1e-2 default decay cannot be lost by passing AdamOptions.
/// \code
///   optim::AdamW<float> opt(model.parameters(), optim::AdamWOptions(1e-3).weight_decay(0.05));
/// \endcode
template <typename T>
class AdamW : public detail::AdamBase<T, AdamWOptions> {
 public:
  AdamW(std::vector<Parameter<T>*> params, const AdamWOptions& options = AdamWOptions())
      : detail::AdamBase<T, AdamWOptions>(std::move(params), options, true, "AdamW") {}
};

}  // namespace gradflow::optim
