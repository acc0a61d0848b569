#pragma once
/// \file
/// Version and compile-time switches of gradflow.

#define GRADFLOW_VERSION_MAJOR 0
#define GRADFLOW_VERSION_MINOR 1
#define GRADFLOW_VERSION_PATCH 0

#include <Eigen/Core>

namespace gradflow {

/// Dense matrix type used for every value and gradient.
///
/// Column-major (Eigen's default, the layout its GEMM kernels are fastest on).
/// Layers use the batch x features convention: row r of a [B x F] matrix is sample r.
template <typename T>
using Matrix = Eigen::Matrix<T, Eigen::Dynamic, Eigen::Dynamic>;

/// Mutable view of a matrix that lives in tape storage.
template <typename T>
using MatrixMap = Eigen::Map<Matrix<T>>;

/// Read-only view of a matrix that lives in tape storage.
template <typename T>
using ConstMatrixMap = Eigen::Map<const Matrix<T>>;

using Index = Eigen::Index;

}  // namespace gradflow
