#pragma once
/// \file
/// Every initializer of gradflow::init (the equivalent of torch::nn::init).

#include "gradflow/init/basic.hpp"
#include "gradflow/init/fan.hpp"
#include "gradflow/init/gain.hpp"
#include "gradflow/init/he.hpp"
#include "gradflow/init/orthogonal.hpp"
#include "gradflow/init/xavier.hpp"
