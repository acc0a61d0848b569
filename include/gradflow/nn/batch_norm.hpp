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

  // Training: one op over [x, gamma, beta]; columns are independent, so each is done in
  // one pass without temporaries (no heap allocation per step).
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
          for (Index j = 0; j < xv.cols(); ++j) {
            const T mu = xv.col(j).mean();
            const T var = (xv.col(j).array() - mu).square().sum() / n;
            T scale = T(1) / std::sqrt(var + eps), shift = T(0);
            if (count == 3) {
              scale *= tape.value(in[1])(0, j);
              shift = tape.value(in[2])(0, j);
            }
            out.col(j).array() = (xv.col(j).array() - mu) * scale + shift;
            if (rm != nullptr) {
              (*rm)(0, j) = (T(1) - momentum) * (*rm)(0, j) + momentum * mu;
              (*rv)(0, j) = (T(1) - momentum) * (*rv)(0, j) + momentum * var * n / (n - T(1));
            }
          }
        },
        // Recomputes mu and s from x rather than keeping them: O(B C), like the rest.
        [in, count, eps](Tape<T>& tp, Var<T> out) {
          auto xv = tp.value(in[0]);
          auto g = tp.grad(out);
          const T n = static_cast<T>(xv.rows());
          const bool affine = count == 3;
          const bool need_x = tp.requires_grad(in[0]);
          const bool need_gamma = affine && tp.requires_grad(in[1]);
          const bool need_beta = affine && tp.requires_grad(in[2]);
          for (Index j = 0; j < xv.cols(); ++j) {
            auto xc = xv.col(j).array();
            auto gc = g.col(j).array();
            const T mu = xc.mean();
            const T s = T(1) / std::sqrt((xc - mu).square().sum() / n + eps);
            const T sum_g = gc.sum();                     // sum(g)
            const T sum_gx = (gc * (xc - mu)).sum() * s;  // sum(g x_hat)
            if (need_gamma) tp.grad(in[1])(0, j) += sum_gx;
            if (need_beta) tp.grad(in[2])(0, j) += sum_g;
            if (!need_x) continue;
            const T gamma = affine ? tp.value(in[1])(0, j) : T(1);
            tp.grad(in[0]).col(j).array() +=
                (gamma * s / n) * (n * gc - sum_g - (xc - mu) * (s * sum_gx));
          }
        });
  }

  // Evaluation: an affine map with constant statistics, one op over [x, stats, gamma, beta].
  // Backward: dx = g gamma s, d gamma = sum(g x_hat), d beta = sum(g), s = 1/sqrt(rv + eps).
  Var<T> forward_running(Var<T> x) {
    Tape<T>& tape = x.tape();
    const Matrix<T>& rm = *running_mean_;
    const Matrix<T>& rv = *running_var_;
    const T eps = static_cast<T>(options_.eps());
    // The statistics are copied onto the tape as one [2 x C] constant (mean; s), so backward
    // reads the values the forward used even if the buffers change before it runs.
    Var<T> in[4];
    in[0] = x;
    in[1] = tape.apply(
        "batch_norm.running_stats", {}, 2, options_.num_features(),
        [&rm, &rv, eps](MatrixMap<T> out) {
          out.row(0) = rm.row(0);
          out.row(1) = (rv.row(0).array() + eps).rsqrt().matrix();
        },
        [](Tape<T>&, Var<T>) {});
    const bool affine = weight_ != nullptr;
    if (affine) {
      in[2] = tape.param(*weight_, "batch_norm.weight");
      in[3] = tape.param(*bias_, "batch_norm.bias");
    }
    return tape.apply(
        "batch_norm_eval", in, affine ? 4 : 2, x.rows(), x.cols(),
        [&tape, in, affine](MatrixMap<T> out) {
          auto xv = tape.value(in[0]);
          auto st = tape.value(in[1]);
          for (Index j = 0; j < xv.cols(); ++j) {
            const T scale = affine ? st(1, j) * tape.value(in[2])(0, j) : st(1, j);
            const T shift = affine ? tape.value(in[3])(0, j) : T(0);
            out.col(j).array() = (xv.col(j).array() - st(0, j)) * scale + shift;
          }
        },
        [in, affine](Tape<T>& tp, Var<T> out) {
          auto xv = tp.value(in[0]);
          auto st = tp.value(in[1]);
          auto g = tp.grad(out);
          const bool need_x = tp.requires_grad(in[0]);
          const bool need_gamma = affine && tp.requires_grad(in[2]);
          const bool need_beta = affine && tp.requires_grad(in[3]);
          for (Index j = 0; j < xv.cols(); ++j) {
            auto gc = g.col(j).array();
            if (need_gamma)
              tp.grad(in[2])(0, j) += (gc * (xv.col(j).array() - st(0, j))).sum() * st(1, j);
            if (need_beta) tp.grad(in[3])(0, j) += gc.sum();
            if (need_x)
              tp.grad(in[0]).col(j).array() +=
                  gc * (affine ? st(1, j) * tp.value(in[2])(0, j) : st(1, j));
          }
        });
  }

  BatchNorm1dOptions options_;
  Parameter<T>* weight_ = nullptr;
  Parameter<T>* bias_ = nullptr;
  Matrix<T>* running_mean_ = nullptr;
  Matrix<T>* running_var_ = nullptr;
};

}  // namespace gradflow::nn
