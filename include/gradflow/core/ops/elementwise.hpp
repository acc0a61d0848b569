#pragma once
/// \file
/// Elementwise arithmetic with broadcasting: + - * / on Vars and scalars, negation.
///
/// Broadcasting follows PyTorch for 2-D values: each dimension must be equal or 1
/// (a [1xN] bias row, a [Bx1] column, a [1x1] scalar). Gradients of broadcast
/// operands are summed over the broadcast dimensions.

#include "gradflow/core/ops/broadcast.hpp"
#include "gradflow/core/tape.hpp"

namespace gradflow {

/// a + b. Backward: da = g, db = g (each summed over broadcast dims).
template <typename T>
Var<T> add(Var<T> a, Var<T> b) {
  Tape<T>& t = a.tape();
  auto [rows, cols] = detail::broadcast_shape("add", a.rows(), a.cols(), b.rows(), b.cols());
  return t.apply(
      "add", {a, b}, rows, cols,
      [&t, a, b](MatrixMap<T> out) {
        detail::broadcast_assign(out, t.value(a), t.value(b), [](auto x, auto y) { return x + y; });
      },
      [a, b](Tape<T>& tp, Var<T> out) {
        auto g = tp.grad(out);
        if (tp.requires_grad(a)) detail::accumulate_reduced(tp.grad(a), g);
        if (tp.requires_grad(b)) detail::accumulate_reduced(tp.grad(b), g);
      });
}

/// a - b. Backward: da = g, db = -g.
template <typename T>
Var<T> sub(Var<T> a, Var<T> b) {
  Tape<T>& t = a.tape();
  auto [rows, cols] = detail::broadcast_shape("sub", a.rows(), a.cols(), b.rows(), b.cols());
  return t.apply(
      "sub", {a, b}, rows, cols,
      [&t, a, b](MatrixMap<T> out) {
        detail::broadcast_assign(out, t.value(a), t.value(b), [](auto x, auto y) { return x - y; });
      },
      [a, b](Tape<T>& tp, Var<T> out) {
        auto g = tp.grad(out);
        if (tp.requires_grad(a)) detail::accumulate_reduced(tp.grad(a), g);
        if (tp.requires_grad(b)) detail::accumulate_reduced(tp.grad(b), -g);
      });
}

/// a * b elementwise (Hadamard). Backward: da = g * b, db = g * a.
template <typename T>
Var<T> mul(Var<T> a, Var<T> b) {
  Tape<T>& t = a.tape();
  auto [rows, cols] = detail::broadcast_shape("mul", a.rows(), a.cols(), b.rows(), b.cols());
  return t.apply(
      "mul", {a, b}, rows, cols,
      [&t, a, b](MatrixMap<T> out) {
        detail::broadcast_assign(out, t.value(a), t.value(b), [](auto x, auto y) { return x * y; });
      },
      [a, b](Tape<T>& tp, Var<T> out) {
        auto g = tp.grad(out);
        const Index r = g.rows(), c = g.cols();
        if (tp.requires_grad(a))
          detail::accumulate_reduced(tp.grad(a), g.cwiseProduct(detail::expand(tp.value(b), r, c)));
        if (tp.requires_grad(b))
          detail::accumulate_reduced(tp.grad(b), g.cwiseProduct(detail::expand(tp.value(a), r, c)));
      });
}

/// a / b elementwise. Backward: da = g / b, db = -g * a / b^2.
template <typename T>
Var<T> div(Var<T> a, Var<T> b) {
  Tape<T>& t = a.tape();
  auto [rows, cols] = detail::broadcast_shape("div", a.rows(), a.cols(), b.rows(), b.cols());
  return t.apply(
      "div", {a, b}, rows, cols,
      [&t, a, b](MatrixMap<T> out) {
        detail::broadcast_assign(out, t.value(a), t.value(b), [](auto x, auto y) { return x / y; });
      },
      [a, b](Tape<T>& tp, Var<T> out) {
        auto g = tp.grad(out);
        const Index r = g.rows(), c = g.cols();
        auto bv = detail::expand(tp.value(b), r, c);
        if (tp.requires_grad(a)) detail::accumulate_reduced(tp.grad(a), g.cwiseQuotient(bv));
        if (tp.requires_grad(b))
          detail::accumulate_reduced(tp.grad(b), -g.cwiseProduct(tp.value(out)).cwiseQuotient(bv));
      });
}

/// -a. Backward: da = -g.
template <typename T>
Var<T> neg(Var<T> a) {
  Tape<T>& t = a.tape();
  return t.apply(
      "neg", {a}, a.rows(), a.cols(), [&t, a](MatrixMap<T> out) { out = -t.value(a); },
      [a](Tape<T>& tp, Var<T> out) { tp.grad(a) -= tp.grad(out); });
}

/// a + s. Backward: da = g.
template <typename T>
Var<T> add_scalar(Var<T> a, typename Var<T>::Scalar s) {
  Tape<T>& t = a.tape();
  return t.apply(
      "add_scalar", {a}, a.rows(), a.cols(),
      [&t, a, s](MatrixMap<T> out) { out = t.value(a).array() + s; },
      [a](Tape<T>& tp, Var<T> out) { tp.grad(a) += tp.grad(out); });
}

/// a * s. Backward: da = s g.
template <typename T>
Var<T> mul_scalar(Var<T> a, typename Var<T>::Scalar s) {
  Tape<T>& t = a.tape();
  return t.apply(
      "mul_scalar", {a}, a.rows(), a.cols(), [&t, a, s](MatrixMap<T> out) { out = t.value(a) * s; },
      [a, s](Tape<T>& tp, Var<T> out) { tp.grad(a) += s * tp.grad(out); });
}

/// s / a. Backward: da = -g s / a^2 = -g y / a.
template <typename T>
Var<T> scalar_div(typename Var<T>::Scalar s, Var<T> a) {
  Tape<T>& t = a.tape();
  return t.apply(
      "scalar_div", {a}, a.rows(), a.cols(),
      [&t, a, s](MatrixMap<T> out) { out = s * t.value(a).array().inverse(); },
      [a](Tape<T>& tp, Var<T> out) {
        tp.grad(a).array() -= tp.grad(out).array() * tp.value(out).array() / tp.value(a).array();
      });
}

template <typename T>
Var<T> operator+(Var<T> a, Var<T> b) {
  return add(a, b);
}
template <typename T>
Var<T> operator-(Var<T> a, Var<T> b) {
  return sub(a, b);
}
/// Elementwise product; use matmul() for the matrix product.
template <typename T>
Var<T> operator*(Var<T> a, Var<T> b) {
  return mul(a, b);
}
template <typename T>
Var<T> operator/(Var<T> a, Var<T> b) {
  return div(a, b);
}
template <typename T>
Var<T> operator-(Var<T> a) {
  return neg(a);
}

template <typename T>
Var<T> operator+(Var<T> a, typename Var<T>::Scalar s) {
  return add_scalar(a, s);
}
template <typename T>
Var<T> operator+(typename Var<T>::Scalar s, Var<T> a) {
  return add_scalar(a, s);
}
template <typename T>
Var<T> operator-(Var<T> a, typename Var<T>::Scalar s) {
  return add_scalar(a, -s);
}
template <typename T>
Var<T> operator-(typename Var<T>::Scalar s, Var<T> a) {
  return add_scalar(neg(a), s);
}
template <typename T>
Var<T> operator*(Var<T> a, typename Var<T>::Scalar s) {
  return mul_scalar(a, s);
}
template <typename T>
Var<T> operator*(typename Var<T>::Scalar s, Var<T> a) {
  return mul_scalar(a, s);
}
template <typename T>
Var<T> operator/(Var<T> a, typename Var<T>::Scalar s) {
  return mul_scalar(a, T(1) / s);
}
template <typename T>
Var<T> operator/(typename Var<T>::Scalar s, Var<T> a) {
  return scalar_div(s, a);
}

}  // namespace gradflow
