#pragma once
/// \file
/// Matrix product with optional transposes that are never materialised.

#include <string>

#include "gradflow/core/tape.hpp"

namespace gradflow {

/// op(a) * op(b) where op transposes when asked; one GEMM forward, one per input backward.
///
/// Backward (C = A B):   dA = dC B^T,   dB = A^T dC
///          (C = A B^T): dA = dC B,     dB = dC^T A
///          (C = A^T B): dA = B dC^T,   dB = A dC
///          (C = A^T B^T): dA = B^T dC^T, dB = dC^T A^T
template <typename T>
Var<T> matmul(Var<T> a, Var<T> b, bool transpose_a = false, bool transpose_b = false) {
  Tape<T>& t = a.tape();
  const Index ar = transpose_a ? a.cols() : a.rows(), ac = transpose_a ? a.rows() : a.cols();
  const Index br = transpose_b ? b.cols() : b.rows(), bc = transpose_b ? b.rows() : b.cols();
  if (ac != br)
    throw ShapeError(std::string("matmul: shapes ") + detail::shape_str(ar, ac) + " and " +
                     detail::shape_str(br, bc) + " do not chain (" + std::to_string(ac) +
                     " != " + std::to_string(br) + ")" +
                     (transpose_a || transpose_b ? " after transposes" : ""));
  const bool ta = transpose_a, tb = transpose_b;
  return t.apply(
      "matmul", {a, b}, ar, bc,
      [&t, a, b, ta, tb](MatrixMap<T> out) {
        auto A = t.value(a);
        auto B = t.value(b);
        if (!ta && !tb)
          out.noalias() = A * B;
        else if (!ta && tb)
          out.noalias() = A * B.transpose();
        else if (ta && !tb)
          out.noalias() = A.transpose() * B;
        else
          out.noalias() = A.transpose() * B.transpose();
      },
      [a, b, ta, tb](Tape<T>& tp, Var<T> out) {
        auto G = tp.grad(out);
        auto A = tp.value(a);
        auto B = tp.value(b);
        if (tp.requires_grad(a)) {
          auto dA = tp.grad(a);
          if (!ta && !tb)
            dA.noalias() += G * B.transpose();
          else if (!ta && tb)
            dA.noalias() += G * B;
          else if (ta && !tb)
            dA.noalias() += B * G.transpose();
          else
            dA.noalias() += B.transpose() * G.transpose();
        }
        if (tp.requires_grad(b)) {
          auto dB = tp.grad(b);
          if (!ta && !tb)
            dB.noalias() += A.transpose() * G;
          else if (!ta && tb)
            dB.noalias() += G.transpose() * A;
          else if (ta && !tb)
            dB.noalias() += A * G;
          else
            dB.noalias() += G.transpose() * A.transpose();
        }
      });
}

/// a * b^T (the Dense layer's x W^T without a copy of W).
template <typename T>
Var<T> matmul_nt(Var<T> a, Var<T> b) {
  return matmul(a, b, false, true);
}

/// a^T * b.
template <typename T>
Var<T> matmul_tn(Var<T> a, Var<T> b) {
  return matmul(a, b, true, false);
}

}  // namespace gradflow
