#pragma once
/// \file
/// AnomalyGuard: a scope in which the first NaN or Inf names the op that made it.

#include "gradflow/core/tape.hpp"

namespace gradflow {

/// Switches anomaly mode on for one tape until the end of the scope. Every forward value
/// and every gradient a backward rule writes is checked; the first non-finite one throws
/// AnomalyError("anomaly: NaN in forward of op 'log' (tape node #7, ...)"). It costs one
/// pass over each value, so keep it for debugging.
template <typename T>
class AnomalyGuard {
 public:
  explicit AnomalyGuard(Tape<T>& tape) : tape_(tape), previous_(tape.anomaly_mode()) {
    tape_.set_anomaly_mode(true);
  }
  ~AnomalyGuard() { tape_.set_anomaly_mode(previous_); }
  AnomalyGuard(const AnomalyGuard&) = delete;
  AnomalyGuard& operator=(const AnomalyGuard&) = delete;

 private:
  Tape<T>& tape_;
  bool previous_;
};

}  // namespace gradflow
