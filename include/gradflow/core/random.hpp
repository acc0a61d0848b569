#pragma once
/// \file
/// Generator: the seedable random source of initializers and dropout.

#include <cmath>
#include <cstdint>
#include <random>

namespace gradflow {

/// Reproducible random numbers: the same seed gives the same draws on every platform
/// (64-bit Mersenne Twister with our own conversion to uniform and normal values,
/// since std:: distributions differ between standard libraries).
class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0x5eed) : engine_(seed) {}

  void seed(std::uint64_t s) {
    engine_.seed(s);
    has_spare_ = false;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }

  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }

  /// Standard normal (Box-Muller, both values used).
  double normal() {
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double u1 = 0.0;
    while (u1 <= 0.0) u1 = uniform();
    const double u2 = uniform();
    const double radius = std::sqrt(-2.0 * std::log(u1));
    const double angle = 2.0 * 3.14159265358979323846 * u2;
    spare_ = radius * std::sin(angle);
    has_spare_ = true;
    return radius * std::cos(angle);
  }

  /// Normal with the given mean and standard deviation.
  double normal(double mean, double stddev) { return mean + stddev * normal(); }

  /// Raw 64 random bits.
  std::uint64_t next() { return engine_(); }

 private:
  std::mt19937_64 engine_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

}  // namespace gradflow
