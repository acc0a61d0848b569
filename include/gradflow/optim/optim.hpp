#pragma once
/// \file
/// Everything in gradflow::optim: optimizers, clipping and learning-rate schedules.

#include "gradflow/optim/adagrad.hpp"
#include "gradflow/optim/adam.hpp"
#include "gradflow/optim/clip.hpp"
#include "gradflow/optim/optimizer.hpp"
#include "gradflow/optim/rmsprop.hpp"
#include "gradflow/optim/schedule.hpp"
#include "gradflow/optim/sgd.hpp"
