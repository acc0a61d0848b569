#pragma once
/// \file
/// Every layer, loss and penalty of gradflow::nn.

#include "gradflow/nn/activation.hpp"
#include "gradflow/nn/batch_norm.hpp"
#include "gradflow/nn/dense.hpp"
#include "gradflow/nn/dropout.hpp"
#include "gradflow/nn/generator.hpp"
#include "gradflow/nn/loss.hpp"
#include "gradflow/nn/module.hpp"
#include "gradflow/nn/penalty.hpp"
#include "gradflow/nn/residual.hpp"
#include "gradflow/nn/sequential.hpp"
