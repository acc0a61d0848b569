#pragma once
/// \file
/// RNNCell, LSTMCell and GRUCell: one step of each recurrence, composed of core ops.
///
/// They are the readable reference for the fused kernels (tests check the two agree to
/// 1e-12) and the building block for custom loops (attention, teacher forcing, ...).

#include <cmath>
#include <string>
#include <utility>

#include "gradflow/core/ops.hpp"
#include "gradflow/init/basic.hpp"
#include "gradflow/nn/module.hpp"
#include "gradflow/nn/recurrent/fused_kernel.hpp"

namespace gradflow::nn {

namespace detail {

/// x W^T (+ b): the affine map of one gate stack. `b` may be empty.
template <typename T>
Var<T> affine(Var<T> x, Var<T> w, Var<T> b) {
  Var<T> y = matmul_nt(x, w);
  return b.valid() ? y + b : y;
}

/// One Elman step: h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).
template <typename T>
Var<T> rnn_step(bool relu_act, Var<T> x, Var<T> h, Var<T> w_ih, Var<T> w_hh, Var<T> b_ih,
                Var<T> b_hh) {
  Var<T> pre = affine(x, w_ih, b_ih) + affine(h, w_hh, b_hh);
  return relu_act ? relu(pre) : tanh(pre);
}

/// One LSTM step (gate columns i, f, g, o): c' = f c + i g, h' = o tanh(c'). Returns {h', c'}.
template <typename T>
std::pair<Var<T>, Var<T>> lstm_step(Var<T> x, Var<T> h, Var<T> c, Var<T> w_ih, Var<T> w_hh,
                                    Var<T> b_ih, Var<T> b_hh) {
  const Index H = h.cols();
  Var<T> pre = affine(x, w_ih, b_ih) + affine(h, w_hh, b_hh);
  Var<T> i = sigmoid(slice_cols(pre, 0, H)), f = sigmoid(slice_cols(pre, H, H));
  Var<T> g = tanh(slice_cols(pre, 2 * H, H)), o = sigmoid(slice_cols(pre, 3 * H, H));
  Var<T> c_next = f * c + i * g;
  return {o * tanh(c_next), c_next};
}

/// One GRU step (gate columns r, z, n). reset_after (PyTorch):
/// n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn)); otherwise (Cho et al. 2014):
/// n = tanh(x W_in^T + b_in + (r h) W_hn^T + b_hn). h' = (1 - z) n + z h.
template <typename T>
Var<T> gru_step(bool reset_after, Var<T> x, Var<T> h, Var<T> w_ih, Var<T> w_hh, Var<T> b_ih,
                Var<T> b_hh) {
  const Index H = h.cols();
  Var<T> gx = affine(x, w_ih, b_ih);
  Var<T> w_hrz = slice_rows(w_hh, 0, 2 * H), w_hn = slice_rows(w_hh, 2 * H, H);
  Var<T> b_hrz = b_hh.valid() ? slice_cols(b_hh, 0, 2 * H) : Var<T>();
  Var<T> b_hn = b_hh.valid() ? slice_cols(b_hh, 2 * H, H) : Var<T>();
  Var<T> rz = sigmoid(slice_cols(gx, 0, 2 * H) + affine(h, w_hrz, b_hrz));
  Var<T> r = slice_cols(rz, 0, H), z = slice_cols(rz, H, H);
  Var<T> hidden_n = reset_after ? r * affine(h, w_hn, b_hn) : affine(r * h, w_hn, b_hn);
  Var<T> n = tanh(slice_cols(gx, 2 * H, H) + hidden_n);
  return n + z * (h - n);
}

}  // namespace detail

/// Options of the cells: sizes, bias, seed, and (GRU) where the reset gate applies.
class CellOptions {
 public:
  CellOptions(Index input_size, Index hidden_size) : input_(input_size), hidden_(hidden_size) {}
  CellOptions& bias(bool v) { return bias_ = v, *this; }
  CellOptions& seed(std::uint64_t v) { return seed_ = v, *this; }
  /// RNNCell only: ReLU instead of tanh.
  CellOptions& relu(bool v) { return relu_ = v, *this; }
  /// GRUCell only: PyTorch's reset-after form (default) or Cho et al.'s reset-before.
  CellOptions& reset_after(bool v) { return reset_after_ = v, *this; }
  Index input_size() const { return input_; }
  Index hidden_size() const { return hidden_; }
  bool bias() const { return bias_; }
  std::uint64_t seed() const { return seed_; }
  bool relu() const { return relu_; }
  bool reset_after() const { return reset_after_; }

 private:
  Index input_, hidden_;
  bool bias_ = true, relu_ = false, reset_after_ = true;
  std::uint64_t seed_ = 0x5eed;
};

namespace detail {
/// Parameters of one cell, with PyTorch's names (weight_ih, weight_hh, bias_ih, bias_hh)
/// and default U(-1/sqrt(H), 1/sqrt(H)).
template <typename T>
class CellBase : public Module<T> {
 public:
  CellBase(const CellOptions& options, Index gates, const char* type)
      : options_(options), type_(type) {
    const Index H = options.hidden_size();
    w_ih_ =
        &this->register_parameter("weight_ih", Matrix<T>::Zero(gates * H, options.input_size()));
    w_hh_ = &this->register_parameter("weight_hh", Matrix<T>::Zero(gates * H, H));
    if (options.bias()) {
      b_ih_ = &this->register_parameter("bias_ih", Matrix<T>::Zero(1, gates * H));
      b_hh_ = &this->register_parameter("bias_hh", Matrix<T>::Zero(1, gates * H));
    }
    Generator gen(options.seed());
    const double k = 1.0 / std::sqrt(double(H));
    for (auto& [name, p] : this->named_parameters()) init::uniform_(p->value(), gen, -k, k);
  }
  std::string type_name() const override { return type_; }
  const CellOptions& options() const { return options_; }

 protected:
  // Records the parameters and checks x [B x I] and each state [B x H].
  void prepare(Var<T> x, std::initializer_list<Var<T>> states) {
    Tape<T>& t = x.tape();
    if (x.cols() != options_.input_size())
      throw ShapeError(type_ + ": input " + gradflow::detail::shape_str(x.rows(), x.cols()) +
                       " has " + std::to_string(x.cols()) + " features but the cell expects " +
                       std::to_string(options_.input_size()));
    for (Var<T> s : states)
      if (s.rows() != x.rows() || s.cols() != options_.hidden_size())
        throw ShapeError(type_ + ": state " + gradflow::detail::shape_str(s.rows(), s.cols()) +
                         " must be " +
                         gradflow::detail::shape_str(x.rows(), options_.hidden_size()));
    w_ih = t.param(*w_ih_, "weight_ih");
    w_hh = t.param(*w_hh_, "weight_hh");
    b_ih = b_ih_ ? t.param(*b_ih_, "bias_ih") : Var<T>();
    b_hh = b_hh_ ? t.param(*b_hh_, "bias_hh") : Var<T>();
  }
  Var<T> w_ih, w_hh, b_ih, b_hh;

 private:
  CellOptions options_;
  std::string type_;
  Parameter<T>* w_ih_ = nullptr;
  Parameter<T>* w_hh_ = nullptr;
  Parameter<T>* b_ih_ = nullptr;
  Parameter<T>* b_hh_ = nullptr;
};
}  // namespace detail

/// One Elman step, h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh) (or ReLU).
template <typename T>
class RNNCell : public detail::CellBase<T> {
 public:
  explicit RNNCell(const CellOptions& options) : detail::CellBase<T>(options, 1, "RNNCell") {}
  /// x [B x I], h [B x H] -> h' [B x H].
  Var<T> forward(Var<T> x, Var<T> h) {
    this->prepare(x, {h});
    return detail::rnn_step(this->options().relu(), x, h, this->w_ih, this->w_hh, this->b_ih,
                            this->b_hh);
  }
};

/// One LSTM step (Hochreiter & Schmidhuber 1997; gate order i, f, g, o as PyTorch).
template <typename T>
class LSTMCell : public detail::CellBase<T> {
 public:
  explicit LSTMCell(const CellOptions& options) : detail::CellBase<T>(options, 4, "LSTMCell") {}
  /// x [B x I], h and c [B x H] -> {h', c'}.
  std::pair<Var<T>, Var<T>> forward(Var<T> x, Var<T> h, Var<T> c) {
    this->prepare(x, {h, c});
    return detail::lstm_step(x, h, c, this->w_ih, this->w_hh, this->b_ih, this->b_hh);
  }
};

/// One GRU step (Cho et al. 2014; gate order r, z, n as PyTorch).
template <typename T>
class GRUCell : public detail::CellBase<T> {
 public:
  explicit GRUCell(const CellOptions& options) : detail::CellBase<T>(options, 3, "GRUCell") {}
  /// x [B x I], h [B x H] -> h'.
  Var<T> forward(Var<T> x, Var<T> h) {
    this->prepare(x, {h});
    return detail::gru_step(this->options().reset_after(), x, h, this->w_ih, this->w_hh, this->b_ih,
                            this->b_hh);
  }
};

}  // namespace gradflow::nn
