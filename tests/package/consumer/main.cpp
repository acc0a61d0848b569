// Smallest useful downstream program: one gradient, checked.
#include <gradflow/gradflow.hpp>

#include <cmath>
#include <cstdio>

int main() {
  gradflow::Tape<double> tape;
  auto x = tape.variable(gradflow::Matrix<double>::Constant(2, 2, 3.0));
  auto loss = gradflow::sum(gradflow::square(x));
  loss.backward();
  const double g = x.grad()(0, 0);  // d(x^2)/dx = 2x = 6
  std::printf("consumer: gradient %g\n", g);
  return std::abs(g - 6.0) < 1e-12 ? 0 : 1;
}
