#pragma once
/// \file
/// Umbrella header: everything in gradflow. Include the single headers to compile less.

#include "gradflow/config.hpp"
#include "gradflow/core/anomaly.hpp"
#include "gradflow/core/error.hpp"
#include "gradflow/core/no_grad.hpp"
#include "gradflow/core/ops.hpp"
#include "gradflow/core/parameter.hpp"
#include "gradflow/core/random.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/core/var.hpp"
#include "gradflow/diagnostics/grad_check.hpp"
#include "gradflow/init/init.hpp"
#include "gradflow/io/weights.hpp"
#include "gradflow/nn/nn.hpp"
#include "gradflow/nn/recurrent/recurrent.hpp"
#include "gradflow/optim/optim.hpp"
