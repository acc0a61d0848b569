#pragma once
/// \file
/// Var: a cheap handle to one value recorded on a tape.

#include <cstdint>

#include "gradflow/config.hpp"

namespace gradflow {

template <typename T>
class Tape;

/// Handle to a node on a Tape: 16 bytes, copied by value.
///
/// A Var is only valid until its tape is cleared; using it afterwards throws TapeError.
/// Arithmetic on Vars records ops on the same tape:
/// \code
///   Tape<double> tape;
///   Var<double> x = tape.variable(Matrix<double>::Random(4, 3));
///   Var<double> loss = sum(square(x));
///   loss.backward();          // x.grad() now holds 2x
/// \endcode
template <typename T>
class Var {
 public:
  using Scalar = T;

  /// An empty handle; every use except valid() throws.
  Var() = default;

  /// True when the handle came from a tape (it may still be stale).
  bool valid() const { return tape_ != nullptr; }

  /// The tape this value was recorded on.
  Tape<T>& tape() const;
  Index rows() const;
  Index cols() const;
  Index size() const { return rows() * cols(); }
  /// The forward value (read-only).
  ConstMatrixMap<T> value() const;
  /// The accumulated gradient; zeros when nothing reached this value.
  ConstMatrixMap<T> grad() const;
  /// The single element of a 1x1 value.
  T item() const;
  /// Whether gradients flow into this value.
  bool requires_grad() const;
  /// Runs backward from this 1x1 value (seed 1).
  void backward() const;
  /// Position of the node on its tape, in recording order.
  std::uint32_t index() const { return index_; }

 private:
  friend class Tape<T>;
  Var(Tape<T>* tape, std::uint32_t index, std::uint64_t generation)
      : tape_(tape), index_(index), generation_(generation) {}

  Tape<T>* tape_ = nullptr;
  std::uint32_t index_ = 0;
  std::uint64_t generation_ = 0;
};

}  // namespace gradflow
