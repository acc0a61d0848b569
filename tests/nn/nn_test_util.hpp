#pragma once
// Helpers of the nn tests: finite-difference checks of a module's parameter gradients.

#include <algorithm>
#include <cmath>
#include <functional>
#include <gradflow/core/tape.hpp>
#include <gradflow/diagnostics/grad_check.hpp>
#include <gradflow/nn/module.hpp>
#include <string>

namespace gradflow::test {

/// A scalar objective of a layer: sum(layer(x) * weights), so every output element
/// gets a distinct upstream gradient.
inline Var<double> weighted_sum(Var<double> y, const Matrix<double>& weights) {
  return sum(mul(y, y.tape().constant(weights)));
}

/// Worst relative error, over every parameter element of `module`, between the tape's
/// gradient of `objective` and a central finite difference. `objective(tape)` builds the
/// [1x1] value from scratch on the given (cleared) tape.
inline double parameter_grad_error(nn::Module<double>& module,
                                   const std::function<Var<double>(Tape<double>&)>& objective,
                                   double h = 1e-6) {
  Tape<double> tape;
  module.zero_grad();
  objective(tape).backward();
  double worst = 0.0;
  for (auto& [name, p] : module.named_parameters()) {
    const Matrix<double> analytic = p->grad();
    for (Index i = 0; i < p->size(); ++i) {
      double& w = p->value().data()[i];
      const double saved = w;
      w = saved + h;
      tape.clear();
      const double up = objective(tape).item();
      w = saved - h;
      tape.clear();
      const double down = objective(tape).item();
      w = saved;
      const double numeric = (up - down) / (2 * h);
      const double a = analytic.data()[i];
      worst =
          std::max(worst, std::abs(a - numeric) / std::max({std::abs(a), std::abs(numeric), 1.0}));
    }
  }
  return worst;
}

}  // namespace gradflow::test
