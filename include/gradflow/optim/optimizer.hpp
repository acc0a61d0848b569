#pragma once
/// \file
/// Optimizer: the base of every parameter-update rule.

#include <string>
#include <utility>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/core/parameter.hpp"

namespace gradflow::optim {

/// Base of SGD, Adam, AdamW, RMSprop and Adagrad: holds the parameters and the learning
/// rate that schedules drive. Per-parameter state is allocated once, at construction, so
/// step() allocates nothing.
template <typename T>
class Optimizer {
 public:
  Optimizer(std::vector<Parameter<T>*> params, double lr, const char* name)
      : params_(std::move(params)), lr_(lr), name_(name) {
    if (!(lr >= 0.0))
      throw ArgumentError(std::string(name) + ": invalid learning rate " + std::to_string(lr));
    for (Parameter<T>* p : params_)
      if (p == nullptr) throw ArgumentError(std::string(name) + ": null parameter");
  }
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;
  virtual ~Optimizer() = default;

  /// Applies one update to every parameter from its current gradient.
  virtual void step() = 0;

  /// Sets every parameter's gradient to zero.
  void zero_grad() {
    for (Parameter<T>* p : params_) p->zero_grad();
  }

  double lr() const { return lr_; }
  /// Changes the learning rate (what schedules call).
  void set_lr(double lr) {
    if (!(lr >= 0.0)) throw ArgumentError(name_ + ": invalid learning rate " + std::to_string(lr));
    lr_ = lr;
  }

  const std::vector<Parameter<T>*>& parameters() const { return params_; }
  /// Number of step() calls so far.
  long steps() const { return steps_; }

 protected:
  /// One zero matrix per parameter, shaped like it (momentum buffers and the like).
  std::vector<Matrix<T>> zeros_like_params(T fill = T(0)) const {
    std::vector<Matrix<T>> out;
    out.reserve(params_.size());
    for (const Parameter<T>* p : params_)
      out.push_back(Matrix<T>::Constant(p->rows(), p->cols(), fill));
    return out;
  }

  /// Throws when a parameter was resized after the optimizer was made.
  void check_shape(std::size_t i, const Matrix<T>& state) const {
    const Parameter<T>& p = *params_[i];
    if (p.rows() != state.rows() || p.cols() != state.cols() || p.grad().rows() != p.rows() ||
        p.grad().cols() != p.cols())
      throw ShapeError(name_ + ": parameter " + std::to_string(i) + " is " +
                       gradflow::detail::shape_str(p.rows(), p.cols()) + " but its state is " +
                       gradflow::detail::shape_str(state.rows(), state.cols()) +
                       " (was it resized after the optimizer was made?)");
  }

  static void require(bool ok, const char* name, const std::string& what) {
    if (!ok) throw ArgumentError(std::string(name) + ": " + what);
  }

  std::vector<Parameter<T>*> params_;
  double lr_;
  long steps_ = 0;
  std::string name_;
};

}  // namespace gradflow::optim
