#pragma once
/// \file
/// Loss functions: mse_loss, cross_entropy (logits + class indices),
/// binary_cross_entropy_with_logits.

#include <cmath>
#include <string>
#include <vector>

#include "gradflow/core/ops/elementwise.hpp"
#include "gradflow/core/ops/math.hpp"
#include "gradflow/core/ops/reduce.hpp"

namespace gradflow::nn {

/// How a loss combines the per-element (or per-sample) values.
enum class Reduction {
  Mean,  ///< their mean, [1x1] (PyTorch's default)
  Sum,   ///< their sum, [1x1]
  None,  ///< no reduction: the unreduced values (not a valid backward root by itself)
};

}  // namespace gradflow::nn

namespace gradflow::detail {
/// Applies a loss's Reduction.
template <typename T>
Var<T> loss_reduce(Var<T> losses, nn::Reduction reduction) {
  switch (reduction) {
    case nn::Reduction::Mean:
      return mean(losses);
    case nn::Reduction::Sum:
      return sum(losses);
    case nn::Reduction::None:
      break;
  }
  return losses;
}

template <typename T>
void loss_require_same_shape(const char* loss, Var<T> input, Var<T> target) {
  if (input.rows() != target.rows() || input.cols() != target.cols())
    throw ShapeError(std::string(loss) + ": input " + shape_str(input.rows(), input.cols()) +
                     " and target " + shape_str(target.rows(), target.cols()) +
                     " must have the same shape");
}
}  // namespace gradflow::detail

namespace gradflow::nn {

/// Mean squared error: reduce((input - target)^2) over every element.
/// \code
///   Var<double> loss = nn::mse_loss(net(x), tape.constant(y));   // mean by default
/// \endcode
/// Backward (mean over n elements): d input = 2 (input - target) g / n.
template <typename T>
Var<T> mse_loss(Var<T> input, Var<T> target, Reduction reduction = Reduction::Mean) {
  gradflow::detail::loss_require_same_shape("mse_loss", input, target);
  return gradflow::detail::loss_reduce(square(sub(input, target)), reduction);
}

/// Cross-entropy of [batch x classes] logits against class indices (one per row),
/// loss_i = -log softmax(x_i)[t_i] = logsumexp(x_i) - x_i[t_i], with the row maximum
/// subtracted inside the logsumexp (finite for any logits). Mean reduction divides by the batch
/// size, as PyTorch without weights. \code
///   Var<double> loss = nn::cross_entropy(logits, {2, 0, 1});
/// \endcode
/// Backward: d x_i = g_i (softmax(x_i) - onehot(t_i)). Reduction::None gives [batch x 1].
template <typename T>
Var<T> cross_entropy(Var<T> logits, const std::vector<Index>& targets,
                     Reduction reduction = Reduction::Mean) {
  const Index batch = logits.rows(), classes = logits.cols();
  if (static_cast<Index>(targets.size()) != batch)
    throw ShapeError("cross_entropy: logits " + gradflow::detail::shape_str(batch, classes) +
                     " have " + std::to_string(batch) + " rows but there are " +
                     std::to_string(targets.size()) + " targets");
  for (Index i = 0; i < batch; ++i) {
    const Index t = targets[static_cast<std::size_t>(i)];
    if (t < 0 || t >= classes)
      throw ArgumentError("cross_entropy: target " + std::to_string(t) + " of row " +
                          std::to_string(i) + " is not a class index in [0, " +
                          std::to_string(classes) + ")");
  }
  Tape<T>& tape = logits.tape();
  // The targets go on the tape as a [batch x 1] constant (exact: class indices are small).
  Var<T> target = tape.apply(
      "cross_entropy.targets", {}, batch, 1,
      [&targets](MatrixMap<T> out) {
        for (Index i = 0; i < out.rows(); ++i)
          out(i, 0) = static_cast<T>(targets[static_cast<std::size_t>(i)]);
      },
      [](Tape<T>&, Var<T>) {});
  Var<T> losses = tape.apply(
      "cross_entropy", {logits, target}, batch, 1,
      [&tape, logits, target](MatrixMap<T> out) {
        auto x = tape.value(logits);
        auto t = tape.value(target);
        for (Index i = 0; i < x.rows(); ++i) {
          const T m = x.row(i).maxCoeff();
          const T log_sum = std::log((x.row(i).array() - m).exp().sum());
          out(i, 0) = m + log_sum - x(i, static_cast<Index>(t(i, 0)));
        }
      },
      [logits, target](Tape<T>& tp, Var<T> out) {
        if (!tp.requires_grad(logits)) return;
        auto x = tp.value(logits);
        auto t = tp.value(target);
        auto g = tp.grad(out);
        auto dx = tp.grad(logits);
        for (Index i = 0; i < x.rows(); ++i) {
          const T m = x.row(i).maxCoeff();
          const T denom = (x.row(i).array() - m).exp().sum();
          dx.row(i).array() += (g(i, 0) / denom) * (x.row(i).array() - m).exp();
          dx(i, static_cast<Index>(t(i, 0))) -= g(i, 0);
        }
      });
  return gradflow::detail::loss_reduce(losses, reduction);
}

/// Binary cross-entropy on logits x with targets y in [0, 1], elementwise, in the stable
/// form loss = max(x, 0) - x y + log(1 + e^-|x|) (no overflow for any x).
/// \code
///   Var<double> loss = nn::binary_cross_entropy_with_logits(logits, tape.constant(labels));
/// \endcode
/// Backward: dx = g (sigmoid(x) - y), dy = -g x.
template <typename T>
Var<T> binary_cross_entropy_with_logits(Var<T> input, Var<T> target,
                                        Reduction reduction = Reduction::Mean) {
  gradflow::detail::loss_require_same_shape("binary_cross_entropy_with_logits", input, target);
  Tape<T>& t = input.tape();
  Var<T> losses = t.apply(
      "bce_with_logits", {input, target}, input.rows(), input.cols(),
      [&t, input, target](MatrixMap<T> out) {
        auto x = t.value(input).array();
        auto y = t.value(target).array();
        out.array() = x.max(T(0)) - x * y + (-x.abs()).exp().log1p();
      },
      [input, target](Tape<T>& tp, Var<T> out) {
        auto x = tp.value(input).array();
        auto g = tp.grad(out).array();
        if (tp.requires_grad(input))
          tp.grad(input).array() += g * (x.logistic() - tp.value(target).array());
        if (tp.requires_grad(target)) tp.grad(target).array() -= g * x;
      });
  return gradflow::detail::loss_reduce(losses, reduction);
}

}  // namespace gradflow::nn
