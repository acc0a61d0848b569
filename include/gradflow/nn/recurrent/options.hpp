#pragma once
/// \file
/// Options of the recurrent layers (torch::nn::RNNOptions / LSTMOptions / GRUOptions).

#include <cstdint>
#include <optional>

#include "gradflow/config.hpp"

namespace gradflow::nn {

/// How input-to-hidden weights are drawn (PyTorch's default, or Glorot/He).
enum class InputInit { Default, XavierUniform, KaimingUniform };

/// Sizes and switches shared by RNN, LSTM and GRU, with chainable setters:
/// \code
///   nn::LSTM<float> lstm(nn::LSTMOptions(64, 128).num_layers(2).bidirectional(true).seed(7));
/// \endcode
class RecurrentOptions {
 public:
  RecurrentOptions(Index input_size, Index hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}

  /// Features per input row.
  RecurrentOptions& input_size(Index v) { return input_size_ = v, *this; }
  /// Features of the hidden state.
  RecurrentOptions& hidden_size(Index v) { return hidden_size_ = v, *this; }
  /// Stacked layers; layer k > 0 reads layer k-1's output.
  RecurrentOptions& num_layers(Index v) { return num_layers_ = v, *this; }
  /// Learn b_ih and b_hh (default true).
  RecurrentOptions& bias(bool v) { return bias_ = v, *this; }
  /// Input and output rows ordered b*T + t instead of t*B + b.
  RecurrentOptions& batch_first(bool v) { return batch_first_ = v, *this; }
  /// Sequences as columns: input [input_size x (T*B)] and output [D*H x (T*B)], one column
  /// per step and sample (t*B + b, or b*T + t with batch_first), instead of one row. That is
  /// the memory of a contiguous PyTorch or oneDNN (T, B, features) tensor, and the layout
  /// the fused kernel runs in, so no step transposes its input, output or their gradients.
  RecurrentOptions& feature_major(bool v) { return feature_major_ = v, *this; }
  /// Dropout probability on the outputs of every layer but the last (training only).
  RecurrentOptions& dropout(double v) { return dropout_ = v, *this; }
  /// Run a second, reversed direction and concatenate the outputs.
  RecurrentOptions& bidirectional(bool v) { return bidirectional_ = v, *this; }
  /// RNN only: ReLU instead of tanh.
  RecurrentOptions& relu(bool v) { return relu_ = v, *this; }
  /// GRU only: PyTorch's reset-after form (default) or Cho et al. 2014's reset-before,
  /// n = tanh(W_in x + b_in + W_hn (r * h) + b_hn). Reset-before runs the composed path.
  RecurrentOptions& reset_after(bool v) { return reset_after_ = v, *this; }
  /// Use the fused kernel (default) or the composed per-step core ops (the readable
  /// reference, about an order of magnitude slower).
  RecurrentOptions& fused(bool v) { return fused_ = v, *this; }
  /// Gradient checkpointing: keep the activations of only `k` steps at a time plus the state
  /// every k steps, and recompute the rest during backward (one extra forward pass; memory
  /// per layer-direction O(k + T/k) steps instead of O(T)). 0 (default): off. Fused path only.
  RecurrentOptions& checkpoint_every(Index k) { return checkpoint_every_ = k, *this; }
  /// Seed of the initial weights and of dropout.
  RecurrentOptions& seed(std::uint64_t v) { return seed_ = v, *this; }
  /// Orthogonal recurrent weights (Saxe et al. 2014) instead of PyTorch's uniform default.
  RecurrentOptions& orthogonal_recurrent(bool v) { return orthogonal_ = v, *this; }
  /// Input-to-hidden initialisation.
  RecurrentOptions& input_init(InputInit v) { return input_init_ = v, *this; }
  /// LSTM only: start the forget gate's bias at 1 (b_ih forget block 1, b_hh's 0;
  /// Gers et al. 2000, Jozefowicz et al. 2015).
  RecurrentOptions& forget_bias_one(bool v) { return forget_bias_one_ = v, *this; }

  Index input_size() const { return input_size_; }
  Index hidden_size() const { return hidden_size_; }
  Index num_layers() const { return num_layers_; }
  bool bias() const { return bias_; }
  bool batch_first() const { return batch_first_; }
  bool feature_major() const { return feature_major_; }
  double dropout() const { return dropout_; }
  bool bidirectional() const { return bidirectional_; }
  bool relu() const { return relu_; }
  std::uint64_t seed() const { return seed_; }
  bool orthogonal_recurrent() const { return orthogonal_; }
  InputInit input_init() const { return input_init_; }
  bool forget_bias_one() const { return forget_bias_one_; }
  bool reset_after() const { return reset_after_; }
  bool fused() const { return fused_; }
  Index checkpoint_every() const { return checkpoint_every_; }

 private:
  Index input_size_, hidden_size_, num_layers_ = 1, checkpoint_every_ = 0;
  bool bias_ = true, batch_first_ = false, feature_major_ = false, bidirectional_ = false,
       relu_ = false;
  double dropout_ = 0.0;
  std::uint64_t seed_ = 0x5eed;
  bool orthogonal_ = false, forget_bias_one_ = false, reset_after_ = true, fused_ = true;
  InputInit input_init_ = InputInit::Default;
};

using RNNOptions = RecurrentOptions;
using LSTMOptions = RecurrentOptions;
using GRUOptions = RecurrentOptions;

}  // namespace gradflow::nn
