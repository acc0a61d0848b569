// The "Twenty lines that train something" example of README.md, verbatim: this test keeps
// the README honest (tests/readme/CMakeLists.txt checks the printed final loss).
#include <gradflow/gradflow.hpp>
#include <cstdio>
using namespace gradflow;

int main() {
  // Learn y = sin(3x) on [-1, 1] with a small tanh MLP.
  Matrix<float> x = Matrix<float>::Random(256, 1), y = (3 * x.array()).sin().matrix();
  nn::Sequential<float> model;
  model.push_back(nn::Dense<float>(nn::DenseOptions(1, 32).seed(1)));
  model.push_back(nn::Tanh<float>());
  model.push_back(nn::Dense<float>(nn::DenseOptions(32, 1).seed(2)));
  optim::Adam<float> opt(model.parameters(), optim::AdamOptions(0.01));
  Tape<float> tape;
  for (int step = 0; step <= 500; ++step) {
    tape.clear();                                   // reuses the memory of the last step
    Var<float> loss = nn::mse_loss(model(tape.constant(x)), tape.constant(y));
    opt.zero_grad();
    loss.backward();
    opt.step();
    if (step % 100 == 0) std::printf("step %3d  loss %.5f\n", step, loss.item());
  }
}
