#pragma once
/// \file
/// Elementwise maths: square, sqrt, exp, log, abs, pow, clamp.

#include <string>

#include "gradflow/core/tape.hpp"

namespace gradflow {

namespace detail {
/// Records y = f(x) elementwise; `rule(x, y, g)` returns dL/dx as an array expression.
template <typename T, typename Forward, typename Rule>
Var<T> unary(const char* op, Var<T> a, Forward forward, Rule rule) {
  Tape<T>& t = a.tape();
  return t.apply(
      op, {a}, a.rows(), a.cols(),
      [&t, a, forward](MatrixMap<T> out) { out.array() = forward(t.value(a).array()); },
      [a, rule](Tape<T>& tp, Var<T> out) {
        tp.grad(a).array() +=
            rule(tp.value(a).array(), tp.value(out).array(), tp.grad(out).array());
      });
}
}  // namespace detail

/// x^2. Backward: dx = 2 x g.
template <typename T>
Var<T> square(Var<T> a) {
  return detail::unary<T>(
      "square", a, [](const auto& x) { return x.square(); },
      [](const auto& x, const auto&, const auto& g) { return T(2) * x * g; });
}

/// sqrt(x). Backward: dx = g / (2 y).
template <typename T>
Var<T> sqrt(Var<T> a) {
  return detail::unary<T>(
      "sqrt", a, [](const auto& x) { return x.sqrt(); },
      [](const auto&, const auto& y, const auto& g) { return g / (T(2) * y); });
}

/// e^x. Backward: dx = g y.
template <typename T>
Var<T> exp(Var<T> a) {
  return detail::unary<T>(
      "exp", a, [](const auto& x) { return x.exp(); },
      [](const auto&, const auto& y, const auto& g) { return g * y; });
}

/// ln x. Backward: dx = g / x.
template <typename T>
Var<T> log(Var<T> a) {
  return detail::unary<T>(
      "log", a, [](const auto& x) { return x.log(); },
      [](const auto& x, const auto&, const auto& g) { return g / x; });
}

/// |x|. Backward: dx = g sign(x), 0 at x = 0 (as PyTorch).
template <typename T>
Var<T> abs(Var<T> a) {
  return detail::unary<T>(
      "abs", a, [](const auto& x) { return x.abs(); },
      [](const auto& x, const auto&, const auto& g) { return g * x.sign(); });
}

/// x^p for a constant exponent. Backward: dx = g p x^(p-1), and 0 when p = 0 (as PyTorch,
/// where the formula would give 0 * 0^-1 = NaN at x = 0).
template <typename T>
Var<T> pow(Var<T> a, typename Var<T>::Scalar p) {
  return detail::unary<T>(
      "pow", a, [p](const auto& x) { return x.pow(p); },
      [p](const auto& x, const auto&, const auto& g) {
        // For p = 0 the exponent is moved to 1 so the factor p = 0 meets a finite x^1.
        return g * p * x.pow(p == T(0) ? T(1) : p - T(1));
      });
}

/// x limited to [lo, hi]. Backward: dx = g where lo <= x <= hi, else 0 (as PyTorch).
template <typename T>
Var<T> clamp(Var<T> a, typename Var<T>::Scalar lo, typename Var<T>::Scalar hi) {
  if (!(lo <= hi))
    throw ArgumentError("clamp: lower bound " + std::to_string(lo) + " above upper bound " +
                        std::to_string(hi));
  return detail::unary<T>(
      "clamp", a, [lo, hi](const auto& x) { return x.max(lo).min(hi); },
      [lo, hi](const auto& x, const auto&, const auto& g) {
        return ((x >= lo) && (x <= hi)).select(g, T(0));
      });
}

}  // namespace gradflow
