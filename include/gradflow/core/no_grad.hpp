#pragma once
/// \file
/// NoGradGuard: a scope in which a tape records values but no backward rules.

#include "gradflow/core/tape.hpp"

namespace gradflow {

/// Turns gradient recording off for one tape until the end of the scope (inference,
/// evaluation, optimizer maths). Restores the previous setting on exit.
/// \code
///   { NoGradGuard<float> guard(tape); auto y = model(x); }   // no backward kept
/// \endcode
template <typename T>
class NoGradGuard {
 public:
  explicit NoGradGuard(Tape<T>& tape) : tape_(tape), previous_(tape.grad_enabled()) {
    tape_.set_grad_enabled(false);
  }
  ~NoGradGuard() { tape_.set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  Tape<T>& tape_;
  bool previous_;
};

}  // namespace gradflow
