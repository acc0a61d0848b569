#pragma once
/// \file
/// RecurrentLayer: the sequence layer behind RNN, LSTM and GRU (stacking, directions,
/// batch-first, variable lengths, initial states, loading PyTorch weights).

#include <cmath>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "gradflow/core/ops/dropout.hpp"
#include "gradflow/core/ops/shape.hpp"
#include "gradflow/init/basic.hpp"
#include "gradflow/init/he.hpp"
#include "gradflow/init/orthogonal.hpp"
#include "gradflow/init/xavier.hpp"
#include "gradflow/nn/module.hpp"
#include "gradflow/nn/recurrent/cells.hpp"
#include "gradflow/nn/recurrent/fused_kernel.hpp"
#include "gradflow/nn/recurrent/options.hpp"

namespace gradflow::nn {

/// What a recurrent layer returns: every step's output and the final states.
///
/// Layout: `output` is [(T*B) x D*H] (D = 2 when bidirectional) in the input's row order
/// (t*B + b, or b*T + t with batch_first), or its transpose [D*H x (T*B)] with the
/// feature_major option; `h_n` and `c_n` (LSTM only) are [(L*D*B) x H] with row
/// (l*D + d)*B + b, PyTorch's [L*D, B, H] flattened.
template <typename T>
struct RecurrentOutput {
  Var<T> output, h_n, c_n;
};

/// The sequence layer shared by RNN, LSTM and GRU.
///
/// Each layer-direction runs as one fused tape node (see detail::FusedRecurrence).
/// Threads: compiled with OpenMP (`-fopenmp`, CMake's `OpenMP::OpenMP_CXX`), a layer splits
/// its batch and its weight-gradient GEMMs over Eigen::nbThreads() threads (set it with
/// Eigen::setNbThreads or OMP_NUM_THREADS); without OpenMP it runs on the calling thread.
/// The result does not depend on the thread count beyond rounding (1e-13 in double).
/// Parameters carry PyTorch's names and shapes, so a PyTorch state dict loads by name:
/// `weight_ih_l{k}` [G*H x in], `weight_hh_l{k}` [G*H x H], `bias_ih_l{k}` and
/// `bias_hh_l{k}` [1 x G*H], with the suffix `_reverse` for the second direction.
/// Gate order is PyTorch's: LSTM (i, f, g, o), GRU (r, z, n) with the reset gate applied
/// after the hidden product, n = tanh(W_in x + b_in + r * (W_hn h + b_hn)).
///
/// Truncated BPTT: carry the state into the next chunk as a constant,
/// \code
///   Matrix<float> h = Matrix<float>::Zero(B, H);                 // [L*D*B x H]
///   for (auto& chunk : chunks) {
///     tape.clear();
///     auto out = gru.forward(tape.constant(chunk), B, tape.constant(h));
///     ...; loss.backward(); opt.step();
///     h = out.h_n.value();                                        // no gradient flows back
///   }
/// \endcode
template <typename T>
class RecurrentLayer : public Module<T> {
 public:
  RecurrentLayer(CellKind kind, const RecurrentOptions& options, const char* type)
      : kind_(kind), options_(options), type_(type), dropout_gen_(options.seed() ^ 0xd50u) {
    const Index in = options.input_size(), H = options.hidden_size();
    if (in <= 0 || H <= 0 || options.num_layers() <= 0)
      throw ArgumentError(type_ + ": input_size, hidden_size and num_layers must be positive");
    if (!(options.dropout() >= 0.0 && options.dropout() < 1.0))
      throw ArgumentError(type_ + ": dropout must be in [0, 1)");
    if (options.checkpoint_every() < 0)
      throw ArgumentError(type_ + ": checkpoint_every must be >= 0");
    const Index G = gate_count(kind);
    for (Index l = 0; l < options.num_layers(); ++l) {
      for (Index d = 0; d < directions(); ++d) {
        const std::string sfx = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
        const Index layer_in = l == 0 ? in : H * directions();
        Slot s;
        s.w_ih = &this->register_parameter("weight_ih" + sfx, Matrix<T>::Zero(G * H, layer_in));
        s.w_hh = &this->register_parameter("weight_hh" + sfx, Matrix<T>::Zero(G * H, H));
        if (options.bias()) {
          s.b_ih = &this->register_parameter("bias_ih" + sfx, Matrix<T>::Zero(1, G * H));
          s.b_hh = &this->register_parameter("bias_hh" + sfx, Matrix<T>::Zero(1, G * H));
        }
        slots_.push_back(s);
      }
    }
    Generator gen(options.seed());
    reset_parameters(gen);
  }

  /// Re-draws every weight: U(-1/sqrt(H), 1/sqrt(H)) (PyTorch), then the options'
  /// orthogonal recurrent / Xavier or He input / forget-bias-1 choices.
  void reset_parameters(Generator& gen) {
    const double k = 1.0 / std::sqrt(double(options_.hidden_size()));
    for (auto& [name, p] : this->named_parameters()) init::uniform_(p->value(), gen, -k, k);
    const Index H = options_.hidden_size();
    for (Slot& s : slots_) {
      if (options_.orthogonal_recurrent())
        for (Index g = 0; g < gate_count(kind_); ++g) {
          Matrix<T> block(H, H);
          init::orthogonal_(block, gen);
          s.w_hh->value().middleRows(g * H, H) = block;
        }
      if (options_.input_init() == InputInit::XavierUniform)
        init::xavier_uniform_(s.w_ih->value(), gen);
      if (options_.input_init() == InputInit::KaimingUniform)
        init::kaiming_uniform_(s.w_ih->value(), gen);
      if (options_.forget_bias_one() && kind_ == CellKind::LSTM && s.b_ih != nullptr) {
        s.b_ih->value().middleCols(H, H).setOnes();
        s.b_hh->value().middleCols(H, H).setZero();
      }
    }
  }

  /// Runs the whole sequence. `input` is [(T*B) x input_size] ([input_size x (T*B)] with
  /// feature_major); `batch_size` is B; h0/c0 are optional [(L*D*B) x H] initial states
  /// (zeros when empty).
  RecurrentOutput<T> forward(Var<T> input, Index batch_size, Var<T> h0 = {}, Var<T> c0 = {}) {
    return run(input, batch_size, nullptr, h0, c0);
  }

  /// As forward(), for a padded batch whose sample b has lengths[b] valid steps: padded
  /// steps change neither the final states nor any gradient, and their outputs are 0.
  RecurrentOutput<T> forward(Var<T> input, Index batch_size, const std::vector<Index>& lengths,
                             Var<T> h0 = {}, Var<T> c0 = {}) {
    return run(input, batch_size, &lengths, h0, c0);
  }

  /// Calls `hook(layer, direction, t, dL/dh_t)` for every step during backward (used by
  /// diag::HiddenGradientTrace). Empty function: off, at no cost.
  void set_hidden_grad_hook(HiddenGradHook<T> hook) { hook_ = std::move(hook); }

  const RecurrentOptions& options() const { return options_; }
  CellKind kind() const { return kind_; }
  Index directions() const { return options_.bidirectional() ? 2 : 1; }
  std::string type_name() const override { return type_; }

  /// The recurrent weight W_hh of one layer-direction (for spectral diagnostics).
  Parameter<T>& weight_hh(Index layer, Index direction = 0) {
    return *slots_.at(static_cast<std::size_t>(layer * directions() + direction)).w_hh;
  }
  Parameter<T>& weight_ih(Index layer, Index direction = 0) {
    return *slots_.at(static_cast<std::size_t>(layer * directions() + direction)).w_ih;
  }

  /// Copies weights by PyTorch name. Every name and shape is checked first; on any
  /// mismatch the layer is left unchanged and ShapeError/ArgumentError names the problem.
  void load_weights(const std::map<std::string, Matrix<T>>& weights) {
    auto params = this->named_parameters();
    for (auto& [name, p] : params) {
      auto it = weights.find(name);
      if (it == weights.end())
        throw ArgumentError(type_ + ": load_weights: missing '" + name + "'");
      if (it->second.rows() != p->rows() || it->second.cols() != p->cols())
        throw ShapeError(type_ + ": load_weights: '" + name + "' is " +
                         gradflow::detail::shape_str(it->second) + " but the layer's is " +
                         gradflow::detail::shape_str(p->rows(), p->cols()));
    }
    for (auto& [name, m] : weights) {
      bool known = false;
      for (auto& [pname, p] : params) known = known || pname == name;
      if (!known) throw ArgumentError(type_ + ": load_weights: unknown weight '" + name + "'");
    }
    for (auto& [name, p] : params) p->value() = weights.at(name);
  }

 private:
  struct Slot {
    Parameter<T>* w_ih = nullptr;
    Parameter<T>* w_hh = nullptr;
    Parameter<T>* b_ih = nullptr;
    Parameter<T>* b_hh = nullptr;
  };

  std::string shape_of(Var<T> v) const { return gradflow::detail::shape_str(v.rows(), v.cols()); }

  // Reorders sequence rows (columns if `columns`) between b*T + t and t*B + b (one copy,
  // its own inverse backward).
  static Var<T> reorder(Var<T> x, Index steps, Index batch, bool to_time_major, bool columns) {
    Tape<T>& t = x.tape();
    auto src = [steps, batch, to_time_major](Index r) {
      // r is an output row (column); return its input row (column).
      return to_time_major ? (r % batch) * steps + r / batch : (r % steps) * batch + r / steps;
    };
    return t.apply(
        "sequence_reorder", {x}, x.rows(), x.cols(),
        [&t, x, src, columns](MatrixMap<T> out) {
          auto in = t.value(x);
          if (columns)
            for (Index c = 0; c < out.cols(); ++c) out.col(c) = in.col(src(c));
          else
            for (Index r = 0; r < out.rows(); ++r) out.row(r) = in.row(src(r));
        },
        [x, src, columns](Tape<T>& tp, Var<T> out) {
          auto g = tp.grad(out);
          auto dx = tp.grad(x);
          if (columns)
            for (Index c = 0; c < g.cols(); ++c) dx.col(src(c)) += g.col(c);
          else
            for (Index r = 0; r < g.rows(); ++r) dx.row(src(r)) += g.row(r);
        });
  }

  RecurrentOutput<T> run(Var<T> input, Index B, const std::vector<Index>* lengths, Var<T> h0,
                         Var<T> c0) {
    Tape<T>& tape = input.tape();
    const Index H = options_.hidden_size(), L = options_.num_layers(), D = directions();
    const bool by_columns = options_.feature_major();
    const char* sample = by_columns ? "column" : "row";
    const Index features = by_columns ? input.rows() : input.cols();
    const Index samples = by_columns ? input.cols() : input.rows();
    if (features != options_.input_size())
      throw ShapeError(type_ + ": input " + shape_of(input) + " has " + std::to_string(features) +
                       " features per " + sample + " but the layer expects " +
                       std::to_string(options_.input_size()));
    if (B <= 0 || samples % B != 0)
      throw ShapeError(type_ + ": input " + shape_of(input) +
                       " does not hold whole steps of batch " + std::to_string(B) + " (" + sample +
                       "s must be T*B)");
    const Index steps = samples / B;
    const bool lstm = kind_ == CellKind::LSTM;
    const std::string state_shape = gradflow::detail::shape_str(L * D * B, H);
    if (h0.valid() && (h0.rows() != L * D * B || h0.cols() != H))
      throw ShapeError(type_ + ": h0 is " + shape_of(h0) + " but must be " + state_shape +
                       " (num_layers * directions * batch rows)");
    if (c0.valid() && !lstm) throw ArgumentError(type_ + ": only LSTM takes c0");
    if (c0.valid() && (c0.rows() != L * D * B || c0.cols() != H))
      throw ShapeError(type_ + ": c0 is " + shape_of(c0) + " but must be " + state_shape);
    const T* len = nullptr;
    if (lengths != nullptr) {
      if (static_cast<Index>(lengths->size()) != B)
        throw ShapeError(type_ + ": " + std::to_string(lengths->size()) +
                         " lengths for a batch of " + std::to_string(B));
      for (Index v : *lengths)
        if (v <= 0 || v > steps)
          throw ArgumentError(type_ + ": sequence length " + std::to_string(v) + " outside [1, " +
                              std::to_string(steps) + "]");
      // Kept in tape storage: it must live until backward, even if forward runs again.
      MatrixMap<T> stored = tape.scratch(B, 1);
      for (Index b = 0; b < B; ++b) stored(b, 0) = T((*lengths)[static_cast<std::size_t>(b)]);
      len = stored.data();
    }
    const HiddenGradHook<T>* hook = hook_ ? &hook_ : nullptr;

    Var<T> x = options_.batch_first() ? reorder(input, steps, B, true, by_columns) : input;
    Var<T> zeros =
        (!h0.valid() || (lstm && !c0.valid())) ? tape.filled(B, H, T(0), "zero_state") : Var<T>();
    // Members, so that their capacity is kept: a steady-state step allocates nothing.
    std::vector<Var<T>>& h_n = h_n_parts_;
    std::vector<Var<T>>& c_n = c_n_parts_;
    h_n.clear();
    c_n.clear();
    for (Index l = 0; l < L; ++l) {
      if (l > 0 && this->is_training() && options_.dropout() > 0.0)
        x = dropout(x, options_.dropout(), dropout_gen_);
      Var<T> outs[2];
      for (Index d = 0; d < D; ++d) {
        const Slot& s = slots_[static_cast<std::size_t>(l * D + d)];
        const Index row = (l * D + d) * B;
        Var<T> h_init = h0.valid() ? slice_rows(h0, row, B) : zeros;
        Var<T> c_init = !lstm ? Var<T>() : c0.valid() ? slice_rows(c0, row, B) : zeros;
        Var<T> w_ih = tape.param(*s.w_ih, "weight_ih"), w_hh = tape.param(*s.w_hh, "weight_hh");
        Var<T> b_ih = s.b_ih ? tape.param(*s.b_ih, "bias_ih") : Var<T>();
        Var<T> b_hh = s.b_hh ? tape.param(*s.b_hh, "bias_hh") : Var<T>();
        if (!use_fused()) {  // the composed steps take rows: feature_major goes through transposes
          Composed c = composed(by_columns ? transpose(x) : x, steps, B, d == 1, h_init, c_init,
                                w_ih, w_hh, b_ih, b_hh, len, l, d);
          outs[d] = by_columns ? transpose(c.output) : c.output;
          h_n.push_back(c.h);
          if (lstm) c_n.push_back(c.c);
          continue;
        }
        const detail::FusedOutputs<T> fused = detail::fused_recurrence<T>(
            kind_, d == 1, steps, B, x, h_init, c_init, w_ih, w_hh, b_ih, b_hh, len, hook, l, d,
            options_.checkpoint_every(), op_name(), by_columns);
        outs[d] = fused.output;
        h_n.push_back(lstm ? slice_rows(fused.final_state, 0, B) : fused.final_state);
        if (lstm) c_n.push_back(slice_rows(fused.final_state, B, B));
      }
      x = D == 2 ? concat({outs[0], outs[1]}, by_columns ? Axis::Rows : Axis::Cols) : outs[0];
    }
    RecurrentOutput<T> result;
    result.output = options_.batch_first() ? reorder(x, steps, B, false, by_columns) : x;
    result.h_n = h_n.size() == 1 ? h_n[0] : concat(h_n, Axis::Rows);
    if (lstm) result.c_n = c_n.size() == 1 ? c_n[0] : concat(c_n, Axis::Rows);
    return result;
  }

  bool use_fused() const {
    return options_.fused() && (kind_ != CellKind::GRU || options_.reset_after());
  }

  struct Composed {
    Var<T> output, h, c;
  };

  // The readable reference: one cell step of core ops per time step. Padded steps keep the
  // state (h = h_prev + m (h_new - h_prev) with m the 0/1 mask) and output m * h_new.
  Composed composed(Var<T> x, Index steps, Index B, bool reverse, Var<T> h, Var<T> c, Var<T> w_ih,
                    Var<T> w_hh, Var<T> b_ih, Var<T> b_hh, const T* len, Index layer,
                    Index direction) {
    Tape<T>& tape = x.tape();
    std::vector<Var<T>> outputs(static_cast<std::size_t>(steps));
    for (Index k = 0; k < steps; ++k) {
      const Index t = reverse ? steps - 1 - k : k;
      Var<T> xt = slice_rows(x, t * B, B);
      Var<T> h_new, c_new;
      switch (kind_) {
        case CellKind::LSTM:
          std::tie(h_new, c_new) = detail::lstm_step(xt, h, c, w_ih, w_hh, b_ih, b_hh);
          break;
        case CellKind::GRU:
          h_new = detail::gru_step(options_.reset_after(), xt, h, w_ih, w_hh, b_ih, b_hh);
          break;
        default:
          h_new = detail::rnn_step(kind_ == CellKind::RnnRelu, xt, h, w_ih, w_hh, b_ih, b_hh);
      }
      Var<T> out = h_new;
      if (len != nullptr) {
        Var<T> mask = tape.apply(
            "length_mask", {}, B, 1,
            [len, t](MatrixMap<T> m) {
              for (Index b = 0; b < m.rows(); ++b) m(b, 0) = T(t) < len[b] ? T(1) : T(0);
            },
            [](Tape<T>&, Var<T>) {});
        out = h_new * mask;
        h_new = h + mask * (h_new - h);
        if (c_new.valid()) c_new = c + mask * (c_new - c);
      }
      if (hook_) {
        Index l = layer, d = direction, step = t;
        const HiddenGradHook<T>* hook = &hook_;
        tape.register_hook(h_new,
                           [hook, l, d, step](ConstMatrixMap<T> g) { (*hook)(l, d, step, g); });
      }
      outputs[static_cast<std::size_t>(t)] = out;
      h = h_new;
      c = c_new;
    }
    return {concat(outputs, Axis::Rows), h, c};
  }

  const char* op_name() const {
    switch (kind_) {
      case CellKind::LSTM:
        return "lstm_fused";
      case CellKind::GRU:
        return "gru_fused";
      case CellKind::RnnRelu:
        return "rnn_relu_fused";
      default:
        return "rnn_tanh_fused";
    }
  }

  CellKind kind_;
  RecurrentOptions options_;
  std::string type_;
  Generator dropout_gen_;
  std::vector<Slot> slots_;
  HiddenGradHook<T> hook_;
  std::vector<Var<T>> h_n_parts_, c_n_parts_;  // per layer-direction final states, reused
};

/// Elman RNN over a sequence: h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
/// (ReLU with options.relu(true)). Elman 1990.
template <typename T>
class RNN : public RecurrentLayer<T> {
 public:
  explicit RNN(const RNNOptions& options)
      : RecurrentLayer<T>(options.relu() ? CellKind::RnnRelu : CellKind::RnnTanh, options, "RNN") {}
};

/// LSTM over a sequence (Hochreiter & Schmidhuber 1997, with forget gate, Gers et al. 2000):
/// i, f, o = sigmoid(.), g = tanh(.), c_t = f c_{t-1} + i g, h_t = o tanh(c_t).
template <typename T>
class LSTM : public RecurrentLayer<T> {
 public:
  explicit LSTM(const LSTMOptions& options) : RecurrentLayer<T>(CellKind::LSTM, options, "LSTM") {}
};

/// GRU over a sequence (Cho et al. 2014), PyTorch's form: r, z = sigmoid(.),
/// n = tanh(W_in x + b_in + r (W_hn h + b_hn)), h_t = (1 - z) n + z h_{t-1}.
template <typename T>
class GRU : public RecurrentLayer<T> {
 public:
  explicit GRU(const GRUOptions& options) : RecurrentLayer<T>(CellKind::GRU, options, "GRU") {}
};

}  // namespace gradflow::nn
