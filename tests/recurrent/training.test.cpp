#include <catch2/catch.hpp>
#include <chrono>

#include "recurrent_test_util.hpp"

using namespace gradflow;

TEST_CASE("A one-layer LSTM learns the mean of a short sequence", "[recurrent][training]") {
  // Sequences of 6 values in [0, 1]; the target is their mean. Predicting the overall mean
  // (0.5) scores its variance, 1/12/6 = 0.0139; the LSTM must get below 1e-3.
  const Index T = 6, B = 32, H = 16;
  nn::LSTM<float> lstm(nn::LSTMOptions(1, H).seed(3));
  nn::Dense<float> head(nn::DenseOptions(H, 1).seed(4));
  std::vector<Parameter<float>*> params = lstm.parameters();
  for (Parameter<float>* p : head.parameters()) params.push_back(p);
  optim::Adam<float> opt(params, optim::AdamOptions(0.01));
  Generator gen(11);
  Tape<float> tape;
  float loss_value = 1.0f;
  const auto start = std::chrono::steady_clock::now();
  for (int step = 0; step < 600; ++step) {
    Matrix<float> x(T * B, 1), y = Matrix<float>::Zero(B, 1);
    for (Index t = 0; t < T; ++t)
      for (Index b = 0; b < B; ++b) {
        x(t * B + b, 0) = float(gen.uniform());
        y(b, 0) += x(t * B + b, 0) / float(T);
      }
    tape.clear();
    auto out = lstm.forward(tape.constant(x), B);
    Var<float> loss = nn::mse_loss(head(out.h_n), tape.constant(y));
    opt.zero_grad();
    loss.backward();
    opt.step();
    loss_value = loss.item();
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  INFO("final loss " << loss_value << " after " << seconds << " s");
  CHECK(loss_value < 1e-3f);
}
