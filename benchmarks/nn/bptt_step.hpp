#pragma once
/// \file
/// One backprop-through-time training step of a recurrent layer, as bptt_bench times it and
/// bptt_lockstep runs it on request (see benchmarks/README.md).

#include <Eigen/Core>
#include <memory>
#include <string>

#ifdef GRADFLOW_USE_BLAS
#include <omp.h>
#endif

#include "../common/configs.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/nn/recurrent/recurrent.hpp"

namespace gradflow::bench {

enum class Cell { RnnTanh, Lstm, Gru };

inline constexpr Cell kCells[] = {Cell::RnnTanh, Cell::Lstm, Cell::Gru};

inline const char* cell_name(Cell c) {
  switch (c) {
    case Cell::RnnTanh:
      return "rnn_tanh";
    case Cell::Lstm:
      return "lstm";
    case Cell::Gru:
      return "gru";
  }
  return "?";
}

inline int gates_of(Cell c) {
  switch (c) {
    case Cell::RnnTanh:
      return kRnnGates;
    case Cell::Lstm:
      return kLstmGates;
    case Cell::Gru:
      return kGruGates;
  }
  return 0;
}

/// The thread count for Eigen's products, and for the BLAS's with GRADFLOW_USE_BLAS (an
/// OpenMP BLAS such as Debian's libopenblas0-openmp reads omp_get_max_threads()).
inline void set_threads(int threads) {
  Eigen::setNbThreads(threads);
#ifdef GRADFLOW_USE_BLAS
  omp_set_num_threads(threads);
#endif
}

/// nn::RNN / nn::LSTM / nn::GRU, one layer, PyTorch's default initialisation. Fused: the
/// default, one tape node per layer (detail::FusedRecurrence). Not fused
/// (options.fused(false)): the library's composed path, one cell step of core ops per time
/// step. FeatureMajor: the sequence as columns, [I x (T*B)] in and [H x (T*B)] out
/// (options.feature_major(true)), the memory of the (T, B, features) tensors the peers take;
/// otherwise as rows, [(T*B) x I] and [(T*B) x H].
template <bool Fused, bool FeatureMajor, Index CheckpointEvery = 0>
struct Layer {
  static constexpr bool kFeatureMajor = FeatureMajor;

  Layer(Cell c, const BpttConfig& cfg) : module(make(c, cfg)) {}

  static std::unique_ptr<nn::RecurrentLayer<float>> make(Cell c, const BpttConfig& cfg) {
    const auto options = nn::RecurrentOptions(cfg.input, cfg.hidden)
                             .fused(Fused)
                             .feature_major(FeatureMajor)
                             .checkpoint_every(CheckpointEvery);
    switch (c) {
      case Cell::RnnTanh:
        return std::make_unique<nn::RNN<float>>(options);
      case Cell::Lstm:
        return std::make_unique<nn::LSTM<float>>(options);
      case Cell::Gru:
        return std::make_unique<nn::GRU<float>>(options);
    }
    return nullptr;
  }

  /// Every step's output, time-major.
  Var<float> forward(Var<float> x, const BpttConfig& cfg) {
    return module->forward(x, cfg.batch).output;
  }

  std::unique_ptr<nn::RecurrentLayer<float>> module;
};

/// A layer, random float32 data and a tape: run() records the forward over the whole
/// sequence, runs backward with an upstream gradient of ones on every output (loss = sum of
/// all outputs, h_n and c_n not part of it) into every weight and into the input, and clears
/// the tape. No optimizer step; parameter gradients accumulate (+=), the same work each step.
template <typename LayerType>
struct BpttStep {
  BpttStep(Cell cell, const BpttConfig& config)
      : cfg(config),
        layer(cell, cfg),
        x(sequence(cfg.input, [](Index r, Index c) { return Matrix<float>::Random(r, c); })),
        ones(sequence(cfg.hidden, [](Index r, Index c) { return Matrix<float>::Ones(r, c); })) {}

  /// A [(T*B) x features] sequence of fill(rows, cols), or its transpose's shape.
  template <typename Fill>
  Matrix<float> sequence(Index features, Fill fill) const {
    const Index samples = cfg.batch * cfg.steps;
    return LayerType::kFeatureMajor ? fill(features, samples) : fill(samples, features);
  }

  /// One training step; returns the number of tape nodes it recorded.
  std::size_t run() {
    // The batch by reference, as the peers take theirs: no copy into the tape.
    Var<float> input = tape.variable_view(x, "input");
    Var<float> out = layer.forward(input, cfg);
    tape.backward(out, ones);
    last_input_grad = tape.grad(input).data();
    const std::size_t nodes = tape.size();
    tape.clear();
    return nodes;
  }

  BpttConfig cfg;
  LayerType layer;
  Matrix<float> x, ones;
  Tape<float> tape;
  const float* volatile last_input_grad = nullptr;  // keeps the backward observable
};

}  // namespace gradflow::bench
