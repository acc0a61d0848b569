#pragma once
/// \file
/// Reductions: sum and mean over everything or along one axis.

#include <string>

#include "gradflow/core/tape.hpp"

namespace gradflow {

/// Which dimension a reduction removes. Rows: [R x C] -> [1 x C] (PyTorch dim=0);
/// Cols: [R x C] -> [R x 1] (dim=1).
enum class Axis { Rows = 0, Cols = 1 };

/// Sum of all elements, [1x1]. Backward: dx = g (broadcast).
template <typename T>
Var<T> sum(Var<T> a) {
  Tape<T>& t = a.tape();
  return t.apply(
      "sum", {a}, 1, 1, [&t, a](MatrixMap<T> out) { out(0, 0) = t.value(a).sum(); },
      [a](Tape<T>& tp, Var<T> out) { tp.grad(a).array() += tp.grad(out)(0, 0); });
}

/// Sum along one axis. Backward: dx = g broadcast back along that axis.
template <typename T>
Var<T> sum(Var<T> a, Axis axis) {
  Tape<T>& t = a.tape();
  const bool rows = axis == Axis::Rows;
  return t.apply(
      "sum_axis", {a}, rows ? 1 : a.rows(), rows ? a.cols() : 1,
      [&t, a, rows](MatrixMap<T> out) {
        if (rows)
          out = t.value(a).colwise().sum();
        else
          out = t.value(a).rowwise().sum();
      },
      [a, rows](Tape<T>& tp, Var<T> out) {
        auto dx = tp.grad(a);
        auto g = tp.grad(out);
        if (rows)
          dx.rowwise() += g.row(0);
        else
          dx.colwise() += g.col(0);
      });
}

/// Mean of all elements, [1x1]. Backward: dx = g / n.
template <typename T>
Var<T> mean(Var<T> a) {
  Tape<T>& t = a.tape();
  return t.apply(
      "mean", {a}, 1, 1, [&t, a](MatrixMap<T> out) { out(0, 0) = t.value(a).mean(); },
      [a](Tape<T>& tp, Var<T> out) {
        auto dx = tp.grad(a);
        dx.array() += tp.grad(out)(0, 0) / static_cast<T>(dx.size());
      });
}

/// Mean along one axis. Backward: dx = g / n broadcast back along that axis.
template <typename T>
Var<T> mean(Var<T> a, Axis axis) {
  Tape<T>& t = a.tape();
  const bool rows = axis == Axis::Rows;
  return t.apply(
      "mean_axis", {a}, rows ? 1 : a.rows(), rows ? a.cols() : 1,
      [&t, a, rows](MatrixMap<T> out) {
        if (rows)
          out = t.value(a).colwise().mean();
        else
          out = t.value(a).rowwise().mean();
      },
      [a, rows](Tape<T>& tp, Var<T> out) {
        auto dx = tp.grad(a);
        auto g = tp.grad(out);
        // Column by column: a broadcast of `g / n` would make Eigen evaluate it into a
        // heap temporary first.
        if (rows) {
          const T scale = T(1) / static_cast<T>(dx.rows());
          for (Index c = 0; c < dx.cols(); ++c) dx.col(c).array() += g(0, c) * scale;
        } else {
          const T scale = T(1) / static_cast<T>(dx.cols());
          for (Index c = 0; c < dx.cols(); ++c) dx.col(c) += g.col(0) * scale;
        }
      });
}

}  // namespace gradflow
