#pragma once
/// \file
/// Shape ops: transpose, reshape, slices and concatenation along either axis.

#include <initializer_list>
#include <string>
#include <vector>

#include "gradflow/core/ops/reduce.hpp"
#include "gradflow/core/tape.hpp"

namespace gradflow {

/// a^T. Backward: da = g^T.
template <typename T>
Var<T> transpose(Var<T> a) {
  Tape<T>& t = a.tape();
  return t.apply(
      "transpose", {a}, a.cols(), a.rows(),
      [&t, a](MatrixMap<T> out) { out = t.value(a).transpose(); },
      [a](Tape<T>& tp, Var<T> out) { tp.grad(a) += tp.grad(out).transpose(); });
}

/// The same elements as a rows x cols matrix in column-major order. Free: the result
/// shares a's storage. Backward: da = g read back in a's shape.
template <typename T>
Var<T> reshape(Var<T> a, Index rows, Index cols) {
  if (rows * cols != a.size())
    throw ShapeError("reshape: cannot view " + detail::shape_str(a.rows(), a.cols()) + " as " +
                     detail::shape_str(rows, cols) + " (element counts differ)");
  return a.tape().apply_view("reshape", a, 0, rows, cols, [a](Tape<T>& tp, Var<T> out) {
    auto g = tp.grad(out);
    auto dx = tp.grad(a);
    dx += ConstMatrixMap<T>(g.data(), dx.rows(), dx.cols());
  });
}

/// Columns [begin, begin + count) of a. Free (columns are contiguous in column-major
/// storage). Backward: the slice of da += g.
template <typename T>
Var<T> slice_cols(Var<T> a, Index begin, Index count) {
  if (begin < 0 || count <= 0 || begin + count > a.cols())
    throw ShapeError("slice_cols: columns [" + std::to_string(begin) + ", " +
                     std::to_string(begin + count) + ") out of range for " +
                     detail::shape_str(a.rows(), a.cols()));
  return a.tape().apply_view("slice_cols", a, static_cast<std::size_t>(begin * a.rows()), a.rows(),
                             count, [a, begin, count](Tape<T>& tp, Var<T> out) {
                               tp.grad(a).middleCols(begin, count) += tp.grad(out);
                             });
}

/// Rows [begin, begin + count) of a (a copy: rows are strided). Backward: the slice of da += g.
template <typename T>
Var<T> slice_rows(Var<T> a, Index begin, Index count) {
  if (begin < 0 || count <= 0 || begin + count > a.rows())
    throw ShapeError("slice_rows: rows [" + std::to_string(begin) + ", " +
                     std::to_string(begin + count) + ") out of range for " +
                     detail::shape_str(a.rows(), a.cols()));
  Tape<T>& t = a.tape();
  return t.apply(
      "slice_rows", {a}, count, a.cols(),
      [&t, a, begin, count](MatrixMap<T> out) { out = t.value(a).middleRows(begin, count); },
      [a, begin, count](Tape<T>& tp, Var<T> out) {
        tp.grad(a).middleRows(begin, count) += tp.grad(out);
      });
}

/// Concatenates `count` values along `axis` (Axis::Rows stacks vertically, Axis::Cols
/// side by side). Backward: each input gets its block of g.
template <typename T>
Var<T> concat(const Var<T>* parts, std::size_t count, Axis axis) {
  if (count == 0) throw ShapeError("concat: no inputs");
  Tape<T>& t = parts[0].tape();
  const bool vertical = axis == Axis::Rows;
  Index rows = 0, cols = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Index r = parts[i].rows(), c = parts[i].cols();
    const Index fixed = vertical ? c : r, want = vertical ? parts[0].cols() : parts[0].rows();
    if (fixed != want)
      throw ShapeError("concat: input " + std::to_string(i) + " has shape " +
                       detail::shape_str(r, c) + " but input 0 has " +
                       detail::shape_str(parts[0].rows(), parts[0].cols()) + " (" +
                       (vertical ? "columns" : "rows") + " must match)");
    rows = vertical ? rows + r : r;
    cols = vertical ? c : cols + c;
  }
  // The inputs are also kept on the tape; read them back from the out node's inputs.
  const Var<T>* first = parts;
  return t.apply(
      "concat", parts, count, rows, cols,
      [&t, first, count, vertical](MatrixMap<T> out) {
        Index at = 0;
        for (std::size_t i = 0; i < count; ++i) {
          auto v = t.value(first[i]);
          if (vertical)
            out.middleRows(at, v.rows()) = v;
          else
            out.middleCols(at, v.cols()) = v;
          at += vertical ? v.rows() : v.cols();
        }
      },
      [vertical](Tape<T>& tp, Var<T> out) {
        auto g = tp.grad(out);
        Index at = 0;
        tp.for_each_input(out, [&](Var<T> in) {
          const Index n = vertical ? in.rows() : in.cols();
          if (tp.requires_grad(in)) {
            if (vertical)
              tp.grad(in) += g.middleRows(at, n);
            else
              tp.grad(in) += g.middleCols(at, n);
          }
          at += n;
        });
      });
}

/// concat() of a list: `concat({a, b, c}, Axis::Cols)`.
template <typename T>
Var<T> concat(std::initializer_list<Var<T>> parts, Axis axis) {
  return concat(parts.begin(), parts.size(), axis);
}

/// concat() of a vector.
template <typename T>
Var<T> concat(const std::vector<Var<T>>& parts, Axis axis) {
  return concat(parts.data(), parts.size(), axis);
}

}  // namespace gradflow
