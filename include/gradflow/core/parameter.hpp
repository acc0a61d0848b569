#pragma once
/// \file
/// Parameter: a trainable matrix that outlives the tape of each step.

#include <cstdint>
#include <utility>

#include "gradflow/config.hpp"

namespace gradflow {

template <typename T>
class Tape;

/// A persistent leaf: its value and gradient live here, not in tape storage.
///
/// Each training step records it on that step's tape with `tape.param(p)`; backward
/// accumulates into grad() with `+=`, so zero_grad() (or an optimizer's) is needed
/// between steps, as in PyTorch.
template <typename T>
class Parameter {
 public:
  Parameter() = default;
  /// Wraps `value`; the gradient starts at zero with the same shape.
  explicit Parameter(Matrix<T> value, bool requires_grad = true)
      : value_(std::move(value)),
        grad_(Matrix<T>::Zero(value_.rows(), value_.cols())),
        requires_grad_(requires_grad) {}

  Matrix<T>& value() { return value_; }
  const Matrix<T>& value() const { return value_; }
  Matrix<T>& grad() { return grad_; }
  const Matrix<T>& grad() const { return grad_; }
  Index rows() const { return value_.rows(); }
  Index cols() const { return value_.cols(); }
  Index size() const { return value_.size(); }

  bool requires_grad() const { return requires_grad_; }
  void set_requires_grad(bool on) { requires_grad_ = on; }

  /// Sets the gradient to zero (keeps its storage).
  void zero_grad() { grad_.setZero(); }

  /// Replaces the value, resizing the gradient to match (for loading weights).
  void assign(Matrix<T> value) {
    value_ = std::move(value);
    grad_ = Matrix<T>::Zero(value_.rows(), value_.cols());
  }

 private:
  friend class Tape<T>;
  Matrix<T> value_;
  Matrix<T> grad_;
  bool requires_grad_ = true;
  // Where this parameter was last recorded, so each step records it once.
  const Tape<T>* bound_tape_ = nullptr;
  std::uint64_t bound_generation_ = 0;
  std::uint32_t bound_index_ = 0;
};

}  // namespace gradflow
