#pragma once
/// \file
/// The recurrent layers: RNN, LSTM and GRU over whole sequences.

#include "gradflow/nn/recurrent/cells.hpp"
#include "gradflow/nn/recurrent/fused_kernel.hpp"
#include "gradflow/nn/recurrent/options.hpp"
#include "gradflow/nn/recurrent/recurrent_layer.hpp"
