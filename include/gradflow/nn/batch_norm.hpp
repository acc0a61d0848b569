#pragma once
/// \file
/// BatchNorm1d: batch normalization over the batch dimension of [batch x features] values.

#include <cmath>
#include <string>

#include "gradflow/core/tape.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::nn {

/// Options of BatchNorm1d.
/// \code
///   BatchNorm1d<float> bn(BatchNorm1dOptions(64).momentum(0.01).eps(1e-3));
/// \endcode
class BatchNorm1dOptions {
 public:
  explicit BatchNorm1dOptions(Index num_features) : num_features_(num_features) {}

  /// Number of features C of the [batch x C] input.
  BatchNorm1dOptions& num_features(Index n) { return num_features_ = n, *this; }
  Index num_features() const { return num_features_; }
  /// Added to the variance before the square root (default 1e-5).
  BatchNorm1dOptions& eps(double e) { return eps_ = e, *this; }
  double eps() const { return eps_; }
  /// Weight of the new batch in the running statistics (default 0.1, PyTorch's meaning:
  /// running = (1 - momentum) running + momentum batch).
  BatchNorm1dOptions& momentum(double m) { return momentum_ = m, *this; }
  double momentum() const { return momentum_; }
  /// Whether to learn the scale gamma ("weight") and shift beta ("bias") (default true).
  BatchNorm1dOptions& affine(bool on) { return affine_ = on, *this; }
  bool affine() const { return affine_; }
  /// Whether to keep running statistics for evaluation (default true). Without them the
  /// layer normalizes with batch statistics in evaluation mode too.
  BatchNorm1dOptions& track_running_stats(bool on) { return track_running_stats_ = on, *this; }
  bool track_running_stats() const { return track_running_stats_; }

 private:
  Index num_features_;
  double eps_ = 1e-5;
  double momentum_ = 0.1;
  bool affine_ = true;
  bool track_running_stats_ = true;
};

/// Batch normalization of each feature (Ioffe & Szegedy, "Batch Normalization:
/// Accelerating Deep Network Training by Reducing Internal Covariate Shift", ICML 2015),
/// with torch.nn.BatchNorm1d's exact semantics:
///
///   training:   mu = mean_b x,  var = mean_b (x - mu)^2   (biased, used to normalize)
///               y = gamma (x - mu) / sqrt(var + eps) + beta
///               running_mean <- (1 - m) running_mean + m mu
///               running_var  <- (1 - m) running_var  + m var * B / (B - 1)   (unbiased)
///   evaluation: y = gamma (x - running_mean) / sqrt(running_var + eps) + beta
///
/// Parameters "weight" (gamma, ones) and "bias" (beta, zeros), both [1 x C]; buffers
/// "running_mean" (zeros) and "running_var" (ones), [1 x C].
///
/// Training mode is one tape op whose backward is written out (x_hat the normalized input,
/// s = 1 / sqrt(var + eps), sums over the batch of B rows):
///   d gamma = sum(g x_hat),  d beta = sum(g),
///   dx = (s / B) (B g gamma - sum(g gamma) - x_hat sum(g gamma x_hat)).
template <typename T>
class BatchNorm1d : public Layer<T> {
 public:
  explicit BatchNorm1d(const BatchNorm1dOptions& options) : options_(options) {
    const Index c = options_.num_features();
    if (c <= 0)
      throw ArgumentError("BatchNorm1d: num_features " + std::to_string(c) + " must be positive");
    if (!(options_.eps() > 0.0))
      throw ArgumentError("BatchNorm1d: eps " + std::to_string(options_.eps()) +
                          " must be positive");
    if (options_.affine()) {
      weight_ = &this->register_parameter("weight", Matrix<T>::Ones(1, c));
      bias_ = &this->register_parameter("bias", Matrix<T>::Zero(1, c));
    }
    if (options_.track_running_stats()) {
      running_mean_ = &this->register_buffer("running_mean", Matrix<T>::Zero(1, c));
      running_var_ = &this->register_buffer("running_var", Matrix<T>::Ones(1, c));
    }
  }

  /// Normalizes the [batch x C] input x. Training mode needs a batch of at least 2 rows.
  Var<T> forward(Var<T> x) override {
    const Index c = options_.num_features();
    if (x.cols() != c)
      throw ShapeError("BatchNorm1d(" + std::to_string(c) + "): input has shape " +
                       gradflow::detail::shape_str(x.rows(), x.cols()) + " but the layer expects " +
                       gradflow::detail::shape_str(x.rows(), c) + " (num_features " +
                       std::to_string(c) + ")");
    const bool use_batch_stats = this->is_training() || running_mean_ == nullptr;
    if (use_batch_stats && x.rows() < 2)
      throw ShapeError("BatchNorm1d(" + std::to_string(c) + "): training needs more than one " +
                       "value per feature, got input of shape " +
                       gradflow::detail::shape_str(x.rows(), x.cols()));
    return use_batch_stats ? forward_batch(x) : forward_running(x);
  }

  /// gamma, [1 x C]; null without affine.
  Parameter<T>* weight() { return weight_; }
  /// beta, [1 x C]; null without affine.
  Parameter<T>* bias() { return bias_; }
  /// Running mean, [1 x C]; null without track_running_stats.
  Matrix<T>* running_mean() { return running_mean_; }
  /// Running (unbiased) variance, [1 x C]; null without track_running_stats.
  Matrix<T>* running_var() { return running_var_; }
  const BatchNorm1dOptions& options() const { return options_; }
  std::string type_name() const override { return "BatchNorm1d"; }

 private:
  // [x, gamma, beta] when affine, [x] otherwise.
  int inputs(Var<T> x, Var<T> (&in)[3]) {
    in[0] = x;
    if (weight_ == nullptr) return 1;
    in[1] = x.tape().param(*weight_, "batch_norm.weight");
    in[2] = x.tape().param(*bias_, "batch_norm.bias");
    return 3;
  }

  Var<T> forward_batch(Var<T> x) {
    Tape<T>& tape = x.tape();
    Var<T> in[3];
    const int count = inputs(x, in);
    const T eps = static_cast<T>(options_.eps());
    const T momentum = static_cast<T>(options_.momentum());
    Matrix<T>* rm = running_mean_;
    Matrix<T>* rv = running_var_;
    return tape.apply(
        "batch_norm", in, static_cast<std::size_t>(count), x.rows(), x.cols(),
        [&tape, in, count, eps, momentum, rm, rv](MatrixMap<T> out) {
          auto xv = tape.value(in[0]);
          const T n = static_cast<T>(xv.rows());
          const Eigen::Array<T, 1, Eigen::Dynamic> mu = xv.colwise().mean().array();
          out.array() = xv.array().rowwise() - mu;
          const Eigen::Array<T, 1, Eigen::Dynamic> var = out.array().square().colwise().sum() / n;
          out.array().rowwise() *= (var + eps).rsqrt();
          if (count == 3) {
            out.array().rowwise() *= tape.value(in[1]).array().row(0);
            out.array().rowwise() += tape.value(in[2]).array().row(0);
          }
          if (rm != nullptr) {
            rm->array() = (T(1) - momentum) * rm->array() + momentum * mu;
            rv->array() = (T(1) - momentum) * rv->array() + momentum * var * (n / (n - T(1)));
          }
        },
        // Recomputes mu and s from x rather than keeping them: O(B C), like the rest.
        [in, count, eps](Tape<T>& tp, Var<T> out) {
          auto xv = tp.value(in[0]).array();
          auto g = tp.grad(out).array();
          const T n = static_cast<T>(xv.rows());
          const Eigen::Array<T, 1, Eigen::Dynamic> mu = xv.colwise().mean();
          const Eigen::Array<T, 1, Eigen::Dynamic> s =
              ((xv.rowwise() - mu).square().colwise().sum() / n + eps).rsqrt();
          const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic> x_hat =
              (xv.rowwise() - mu).rowwise() * s;
          if (count == 3) {
            if (tp.requires_grad(in[1])) tp.grad(in[1]).array() += (g * x_hat).colwise().sum();
            if (tp.requires_grad(in[2])) tp.grad(in[2]).array() += g.colwise().sum();
          }
          if (!tp.requires_grad(in[0])) return;
          Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic> g_hat = g;  // g gamma
          if (count == 3) g_hat.rowwise() *= tp.value(in[1]).array().row(0);
          const Eigen::Array<T, 1, Eigen::Dynamic> sum_g = g_hat.colwise().sum();
          const Eigen::Array<T, 1, Eigen::Dynamic> sum_gx = (g_hat * x_hat).colwise().sum();
          tp.grad(in[0]).array() +=
              ((n * g_hat).rowwise() - sum_g - x_hat.rowwise() * sum_gx).rowwise() * (s / n);
        });
  }

  // Evaluation: an affine map with constant statistics.
  // Backward: dx = g gamma s, d gamma = sum(g x_hat), d beta = sum(g), s = 1/sqrt(rv + eps).
  Var<T> forward_running(Var<T> x) {
    Tape<T>& tape = x.tape();
    // The statistics go on the tape as one [2 x C] constant (mean; s) so backward can read
    // them even if the buffers change before it runs.
    Matrix<T> stats(2, options_.num_features());
    stats.row(0) = *running_mean_;
    stats.row(1) = (running_var_->array() + static_cast<T>(options_.eps())).rsqrt().matrix();
    // [x, stats, gamma, beta] when affine, [x, stats] otherwise.
    Var<T> in[4];
    in[0] = x;
    in[1] = tape.constant(stats, "batch_norm.running_stats");
    const bool affine = weight_ != nullptr;
    if (affine) {
      in[2] = tape.param(*weight_, "batch_norm.weight");
      in[3] = tape.param(*bias_, "batch_norm.bias");
    }
    return tape.apply(
        "batch_norm_eval", in, affine ? 4 : 2, x.rows(), x.cols(),
        [&tape, in, affine](MatrixMap<T> out) {
          auto s = tape.value(in[1]).array();
          out.array() = (tape.value(in[0]).array().rowwise() - s.row(0)).rowwise() * s.row(1);
          if (affine) {
            out.array().rowwise() *= tape.value(in[2]).array().row(0);
            out.array().rowwise() += tape.value(in[3]).array().row(0);
          }
        },
        [in, affine](Tape<T>& tp, Var<T> out) {
          auto s = tp.value(in[1]).array();
          auto g = tp.grad(out).array();
          if (affine) {
            const Eigen::Array<T, Eigen::Dynamic, Eigen::Dynamic> x_hat =
                (tp.value(in[0]).array().rowwise() - s.row(0)).rowwise() * s.row(1);
            if (tp.requires_grad(in[2])) tp.grad(in[2]).array() += (g * x_hat).colwise().sum();
            if (tp.requires_grad(in[3])) tp.grad(in[3]).array() += g.colwise().sum();
          }
          if (!tp.requires_grad(in[0])) return;
          if (affine)
            tp.grad(in[0]).array() +=
                (g.rowwise() * s.row(1)).rowwise() * tp.value(in[2]).array().row(0);
          else
            tp.grad(in[0]).array() += g.rowwise() * s.row(1);
        });
  }

  BatchNorm1dOptions options_;
  Parameter<T>* weight_ = nullptr;
  Parameter<T>* bias_ = nullptr;
  Matrix<T>* running_mean_ = nullptr;
  Matrix<T>* running_var_ = nullptr;
};

}  // namespace gradflow::nn
