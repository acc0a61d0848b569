#pragma once
/// \file
/// Umbrella header of gradflow::diag: gradient checks, gradient monitors, hidden-gradient
/// traces, spectral analysis of weights, activation statistics, verdicts and reports.

#include "gradflow/diagnostics/activation_stats.hpp"
#include "gradflow/diagnostics/csv.hpp"
#include "gradflow/diagnostics/grad_check.hpp"
#include "gradflow/diagnostics/gradient_monitor.hpp"
#include "gradflow/diagnostics/growth_rate.hpp"
#include "gradflow/diagnostics/hidden_trace.hpp"
#include "gradflow/diagnostics/report.hpp"
#include "gradflow/diagnostics/sparkline.hpp"
#include "gradflow/diagnostics/spectral.hpp"
#include "gradflow/diagnostics/step_bound.hpp"
#include "gradflow/diagnostics/verdict.hpp"
