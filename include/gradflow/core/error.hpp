#pragma once
/// \file
/// Exceptions thrown by gradflow. Every message names the op or layer at fault.

#include <Eigen/Core>
#include <stdexcept>
#include <string>

namespace gradflow {

/// Base class of all gradflow errors.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Operand shapes do not fit the op; the message names the op and the shapes.
class ShapeError : public Error {
 public:
  using Error::Error;
};

/// The tape was misused: a stale handle, backward twice, a non-scalar without a seed.
class TapeError : public Error {
 public:
  using Error::Error;
};

/// Anomaly mode saw a NaN or Inf; the message names the op and its tape position.
class AnomalyError : public Error {
 public:
  using Error::Error;
};

/// Bad argument that is not a shape problem (a negative rate, an empty batch, ...).
class ArgumentError : public Error {
 public:
  using Error::Error;
};

namespace detail {

/// "[rows x cols]", the form every shape message uses.
inline std::string shape_str(Eigen::Index rows, Eigen::Index cols) {
  return "[" + std::to_string(rows) + "x" + std::to_string(cols) + "]";
}

template <typename M>
std::string shape_str(const M& m) {
  return shape_str(m.rows(), m.cols());
}

}  // namespace detail
}  // namespace gradflow
