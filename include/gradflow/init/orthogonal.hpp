#pragma once
/// \file
/// Orthogonal initialization: a (semi-)orthogonal matrix scaled by a gain.

#include <Eigen/QR>
#include <algorithm>

#include "gradflow/init/basic.hpp"
#include "gradflow/init/fan.hpp"

namespace gradflow::init {

/// Fills `m` (rows x cols, any shape) with gain * Q where Q has orthonormal rows or columns,
/// whichever are fewer: Q^T Q = I when rows >= cols, Q Q^T = I otherwise.
///
/// Q comes from the QR decomposition of a matrix of standard normal draws (transposed
/// first when wide), with each column multiplied by the sign of R's diagonal so that Q is
/// uniformly (Haar) distributed rather than biased by the decomposition's sign convention.
///
/// Saxe, McClelland & Ganguli, "Exact solutions to the nonlinear dynamics of learning in
/// deep linear neural networks", ICLR 2014. Common for recurrent weights.
/// \code
///   init::orthogonal_(w_hh, gen);            // w_hh^T w_hh = I
/// \endcode
template <typename T>
Matrix<T>& orthogonal_(Matrix<T>& m, Generator& gen, double gain = 1.0) {
  calculate_fans(m, "orthogonal_");
  const bool wide = m.rows() < m.cols();
  const Index tall_rows = std::max(m.rows(), m.cols());
  const Index tall_cols = std::min(m.rows(), m.cols());
  // Decompose in double whatever T is: Q is then orthogonal to double precision.
  Matrix<double> a(tall_rows, tall_cols);
  normal_(a, gen);
  Eigen::HouseholderQR<Matrix<double>> qr(a);
  Matrix<double> q = qr.householderQ() * Matrix<double>::Identity(tall_rows, tall_cols);
  const Matrix<double>& r = qr.matrixQR();
  for (Index j = 0; j < tall_cols; ++j)
    if (r(j, j) < 0.0) q.col(j) = -q.col(j);
  q *= gain;
  if (wide)
    m = q.transpose().template cast<T>();
  else
    m = q.template cast<T>();
  return m;
}

}  // namespace gradflow::init
