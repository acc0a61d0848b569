#pragma once
// Helpers shared by the diagnostics tests: reproducible matrices with known spectra.

#include <Eigen/QR>
#include <gradflow/core/random.hpp>
#include <gradflow/diagnostics/spectral.hpp>

namespace gradflow::test {

/// rows x cols standard-normal matrix from a seeded Generator.
inline Eigen::MatrixXd gaussian(Index rows, Index cols, std::uint64_t seed) {
  Generator gen(seed);
  Eigen::MatrixXd m(rows, cols);
  for (Index c = 0; c < cols; ++c)
    for (Index r = 0; r < rows; ++r) m(r, c) = gen.normal();
  return m;
}

/// A random n x n orthogonal matrix (Q of the QR of a Gaussian matrix).
inline Eigen::MatrixXd random_orthogonal(Index n, std::uint64_t seed) {
  Eigen::HouseholderQR<Eigen::MatrixXd> qr(gaussian(n, n, seed));
  return qr.householderQ() * Eigen::MatrixXd::Identity(n, n);
}

/// Q diag(eigenvalues) Q^T: symmetric, so its spectral norm and radius are both
/// max |eigenvalue|.
inline Eigen::MatrixXd symmetric_with_eigenvalues(const Eigen::VectorXd& eigenvalues,
                                                  std::uint64_t seed) {
  const Eigen::MatrixXd q = random_orthogonal(eigenvalues.size(), seed);
  return q * eigenvalues.asDiagonal() * q.transpose();
}

}  // namespace gradflow::test
