#pragma once
/// \file
/// Residual: a skip connection y = P(x) + F(x) around any layer F.

#include <memory>
#include <string>
#include <utility>

#include "gradflow/core/ops/elementwise.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::nn {

/// y = x + F(x), or y = P(x) + F(x) with a projection P (typically a Dense without bias)
/// when F changes the number of features (He, Zhang, Ren & Sun, "Deep Residual Learning
/// for Image Recognition", CVPR 2016).
///
/// Children "body" (F) and, when given, "projection" (P).
/// \code
///   auto block = std::make_shared<Sequential<double>>();  // 64 -> 64
///   ...
///   Residual<double> res(block);
///   Residual<double> down(std::make_shared<Dense<double>>(DenseOptions(64, 32)),
///                         std::make_shared<Dense<double>>(DenseOptions(64, 32).bias(false)));
/// \endcode
/// Backward: dx = dy + dF/dx^T dy (plus dP/dx^T dy with a projection).
template <typename T>
class Residual : public Layer<T> {
 public:
  /// Identity shortcut: F must keep the shape of its input.
  explicit Residual(std::shared_ptr<Layer<T>> body) : body_(std::move(body)) {
    if (!body_) throw ArgumentError("Residual: body is null");
    this->register_module("body", body_);
  }

  /// Projected shortcut P(x), for an F that changes the number of features.
  Residual(std::shared_ptr<Layer<T>> body, std::shared_ptr<Layer<T>> projection)
      : Residual(std::move(body)) {
    if (!projection) throw ArgumentError("Residual: projection is null");
    projection_ = this->register_module("projection", std::move(projection));
  }

  /// P(x) + F(x); throws ShapeError naming both shapes when they differ.
  Var<T> forward(Var<T> x) override {
    Var<T> fx = body_->forward(x);
    Var<T> shortcut = projection_ ? projection_->forward(x) : x;
    if (fx.rows() != shortcut.rows() || fx.cols() != shortcut.cols())
      throw ShapeError(
          "Residual: body " + body_->type_name() + " maps " +
          gradflow::detail::shape_str(x.rows(), x.cols()) + " to " +
          gradflow::detail::shape_str(fx.rows(), fx.cols()) + " but the shortcut gives " +
          gradflow::detail::shape_str(shortcut.rows(), shortcut.cols()) +
          (projection_ ? "" : "; give the Residual a projection layer to change the width"));
    return add(shortcut, fx);
  }

  Layer<T>& body() { return *body_; }
  /// P, or null for the identity shortcut.
  Layer<T>* projection() { return projection_.get(); }
  std::string type_name() const override { return "Residual"; }

 private:
  std::shared_ptr<Layer<T>> body_;
  std::shared_ptr<Layer<T>> projection_;
};

}  // namespace gradflow::nn
