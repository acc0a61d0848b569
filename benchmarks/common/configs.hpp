#pragma once
/// \file
/// The shapes of the backprop-through-time benchmarks (keep in step with
/// benchmarks/compare and benchmarks/peers/onednn_bptt.cpp).

#include <cstdint>

namespace gradflow::bench {

/// One benchmark shape: batch B, sequence length T, input size I, hidden size H.
struct BpttConfig {
  const char* name;
  std::int64_t batch, steps, input, hidden;
};

inline constexpr BpttConfig kBpttConfigs[] = {{"S", 16, 50, 64, 64},
                                              {"M", 32, 100, 256, 256},
                                              {"L", 64, 50, 512, 512},
                                              {"LONG", 8, 1000, 128, 128}};

/// Gate blocks per cell: 1 (tanh RNN), 3 (GRU), 4 (LSTM).
inline constexpr int kRnnGates = 1, kGruGates = 3, kLstmGates = 4;

/// Flops of one training step (forward + backward, GEMMs only): the forward does
/// 2 B G H (I + H) per time step, the backward twice that (input and weight gradients).
inline double bptt_step_flops(const BpttConfig& c, int gates) {
  return 3.0 * static_cast<double>(c.steps) * 2.0 * static_cast<double>(c.batch) * gates *
         static_cast<double>(c.hidden) * static_cast<double>(c.input + c.hidden);
}

}  // namespace gradflow::bench
