#pragma once
/// \file
/// Every built-in op.

#include "gradflow/core/ops/activation.hpp"
#include "gradflow/core/ops/dropout.hpp"
#include "gradflow/core/ops/elementwise.hpp"
#include "gradflow/core/ops/math.hpp"
#include "gradflow/core/ops/matmul.hpp"
#include "gradflow/core/ops/reduce.hpp"
#include "gradflow/core/ops/shape.hpp"
