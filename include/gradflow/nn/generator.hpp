#pragma once
/// \file
/// The default random source of layers built without a seed or a Generator.

#include <cstdint>

#include "gradflow/core/random.hpp"

namespace gradflow::nn {

/// The Generator that layers draw their initial weights (and dropout masks) from when
/// their options give no seed, like PyTorch's global generator. Successive layers thus
/// get different draws, and a program that seeds it once with manual_seed() is
/// reproducible. Not thread-safe: build models on one thread, or give each layer a seed.
inline Generator& default_generator() {
  static Generator generator;
  return generator;
}

/// Reseeds default_generator() (torch::manual_seed).
inline void manual_seed(std::uint64_t seed) { default_generator().seed(seed); }

}  // namespace gradflow::nn
