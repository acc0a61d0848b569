#pragma once
/// \file
/// Activation functions as ops, in numerically stable forms.

#include <cmath>

#include "gradflow/core/ops/math.hpp"
#include "gradflow/core/ops/reduce.hpp"

namespace gradflow {

/// 1 / (1 + e^-x), via Eigen's logistic (no overflow at |x| = 1000).
/// Backward: dx = g y (1 - y).
template <typename T>
Var<T> sigmoid(Var<T> a) {
  return detail::unary<T>(
      "sigmoid", a, [](const auto& x) { return x.logistic(); },
      [](const auto&, const auto& y, const auto& g) { return g * y * (T(1) - y); });
}

/// tanh x. Backward: dx = g (1 - y^2).
template <typename T>
Var<T> tanh(Var<T> a) {
  return detail::unary<T>(
      "tanh", a, [](const auto& x) { return x.tanh(); },
      [](const auto&, const auto& y, const auto& g) { return g * (T(1) - y.square()); });
}

/// max(x, 0). Backward: dx = g where x > 0 (0 at x = 0, as PyTorch).
template <typename T>
Var<T> relu(Var<T> a) {
  return detail::unary<T>(
      "relu", a, [](const auto& x) { return x.max(T(0)); },
      [](const auto& x, const auto&, const auto& g) { return (x > T(0)).select(g, T(0)); });
}

/// x for x > 0, slope x otherwise (PyTorch default slope 0.01).
/// Backward: dx = g for x > 0, slope g otherwise.
template <typename T>
Var<T> leaky_relu(Var<T> a, typename Var<T>::Scalar slope = T(0.01)) {
  return detail::unary<T>(
      "leaky_relu", a, [slope](const auto& x) { return (x > T(0)).select(x, slope * x); },
      [slope](const auto& x, const auto&, const auto& g) {
        return (x > T(0)).select(g, slope * g);
      });
}

/// x for x > 0, alpha (e^x - 1) otherwise (Clevert et al. 2016).
/// Backward: dx = g for x > 0, g (y + alpha) otherwise.
template <typename T>
Var<T> elu(Var<T> a, typename Var<T>::Scalar alpha = T(1)) {
  return detail::unary<T>(
      "elu", a,
      [alpha](const auto& x) { return (x > T(0)).select(x, alpha * x.min(T(0)).expm1()); },
      [alpha](const auto& x, const auto& y, const auto& g) {
        return (x > T(0)).select(g, g * (y + alpha));
      });
}

/// How gelu() evaluates the Gaussian CDF.
enum class GeluApproximation { None, Tanh };

/// x Phi(x) with the exact erf form (PyTorch's default), or the tanh approximation
/// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (Hendrycks & Gimpel 2016).
/// Backward (exact): dx = g (Phi(x) + x phi(x)).
template <typename T>
Var<T> gelu(Var<T> a, GeluApproximation approx = GeluApproximation::None) {
  const T inv_sqrt2 = T(0.70710678118654752440);
  const T inv_sqrt_2pi = T(0.39894228040143267794);
  const T k = T(0.79788456080286535588);  // sqrt(2/pi)
  const T c = T(0.044715);
  if (approx == GeluApproximation::Tanh) {
    return detail::unary<T>(
        "gelu_tanh", a,
        [k, c](const auto& x) { return T(0.5) * x * (T(1) + (k * (x + c * x.cube())).tanh()); },
        [k, c](const auto& x, const auto&, const auto& g) {
          auto th = (k * (x + c * x.cube())).tanh();
          return g * (T(0.5) * (T(1) + th) +
                      T(0.5) * x * (T(1) - th.square()) * k * (T(1) + T(3) * c * x.square()));
        });
  }
  auto erf_ = [](T v) { return std::erf(v); };
  return detail::unary<T>(
      "gelu", a,
      [inv_sqrt2, erf_](const auto& x) {
        return T(0.5) * x * (T(1) + (x * inv_sqrt2).unaryExpr(erf_));
      },
      [inv_sqrt2, inv_sqrt_2pi, erf_](const auto& x, const auto&, const auto& g) {
        return g * (T(0.5) * (T(1) + (x * inv_sqrt2).unaryExpr(erf_)) +
                    x * inv_sqrt_2pi * (T(-0.5) * x.square()).exp());
      });
}

namespace detail {
/// Calls fn(row r of each m) for every row (per_row) or fn(column c of each m) for every
/// column. Softmax works group by group this way: no temporary vector, so no allocation.
template <typename Fn, typename... Ms>
void for_each_group(bool per_row, Index rows, Index cols, Fn&& fn, Ms&&... ms) {
  if (per_row) {
    for (Index r = 0; r < rows; ++r) fn(ms.row(r)...);
  } else {
    for (Index c = 0; c < cols; ++c) fn(ms.col(c)...);
  }
}
}  // namespace detail

/// Softmax along `axis` (Axis::Cols: each row sums to 1, the usual batch x classes case;
/// Axis::Rows: each column, PyTorch's dim=0). Stable: the max is subtracted first.
/// Backward: dx = y (g - sum(g y)).
template <typename T>
Var<T> softmax(Var<T> a, Axis axis = Axis::Cols) {
  Tape<T>& t = a.tape();
  const bool per_row = axis == Axis::Cols;
  return t.apply(
      "softmax", {a}, a.rows(), a.cols(),
      [&t, a, per_row](MatrixMap<T> out) {
        detail::for_each_group(
            per_row, out.rows(), out.cols(),
            [](auto x, auto y) {
              y = (x.array() - x.maxCoeff()).exp().matrix();
              y /= y.sum();
            },
            t.value(a), out);
      },
      [a, per_row](Tape<T>& tp, Var<T> out) {
        detail::for_each_group(
            per_row, tp.value(out).rows(), tp.value(out).cols(),
            [](auto y, auto g, auto dx) {
              const T dot = y.cwiseProduct(g).sum();
              dx.array() += y.array() * (g.array() - dot);
            },
            tp.value(out), tp.grad(out), tp.grad(a));
      });
}

/// log(softmax(x)) along `axis`, computed as x - max - log(sum(exp(x - max))).
/// Backward: dx = g - softmax(x) sum(g).
template <typename T>
Var<T> log_softmax(Var<T> a, Axis axis = Axis::Cols) {
  Tape<T>& t = a.tape();
  const bool per_row = axis == Axis::Cols;
  return t.apply(
      "log_softmax", {a}, a.rows(), a.cols(),
      [&t, a, per_row](MatrixMap<T> out) {
        detail::for_each_group(
            per_row, out.rows(), out.cols(),
            [](auto x, auto y) {
              y = (x.array() - x.maxCoeff()).matrix();
              y.array() -= std::log(y.array().exp().sum());
            },
            t.value(a), out);
      },
      [a, per_row](Tape<T>& tp, Var<T> out) {
        detail::for_each_group(
            per_row, tp.value(out).rows(), tp.value(out).cols(),
            [](auto y, auto g, auto dx) {
              const T total = g.sum();
              dx.array() += g.array() - y.array().exp() * total;
            },
            tp.value(out), tp.grad(out), tp.grad(a));
      });
}

}  // namespace gradflow
