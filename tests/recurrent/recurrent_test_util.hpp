#pragma once
// Shared by the recurrent tests: building layers of each kind and a loss that touches
// every output, so every gradient path is exercised.

#include <catch2/catch.hpp>
#include <gradflow/gradflow.hpp>
#include <memory>
#include <string>
#include <vector>

namespace gradflow::test {

inline const char* kind_name(nn::CellKind k) {
  switch (k) {
    case nn::CellKind::LSTM:
      return "LSTM";
    case nn::CellKind::GRU:
      return "GRU";
    case nn::CellKind::RnnRelu:
      return "RNN relu";
    default:
      return "RNN tanh";
  }
}

template <typename T>
std::unique_ptr<nn::RecurrentLayer<T>> make_layer(nn::CellKind kind, nn::RecurrentOptions o) {
  if (kind == nn::CellKind::LSTM) return std::make_unique<nn::LSTM<T>>(o);
  if (kind == nn::CellKind::GRU) return std::make_unique<nn::GRU<T>>(o);
  return std::make_unique<nn::RNN<T>>(o.relu(kind == nn::CellKind::RnnRelu));
}

// sum(output * W) + sum(h_n * V) [+ sum(c_n * V)], with fixed random W and V.
template <typename T>
Var<T> weighted_loss(Tape<T>& tape, const nn::RecurrentOutput<T>& out, unsigned seed = 7) {
  Generator gen(seed);
  auto random_like = [&gen](Var<T> v) {
    Matrix<T> m(v.rows(), v.cols());
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = T(gen.normal());
    return m;
  };
  Var<T> loss = sum(out.output * tape.constant(random_like(out.output))) +
                sum(out.h_n * tape.constant(random_like(out.h_n)));
  if (out.c_n.valid()) loss = loss + sum(out.c_n * tape.constant(random_like(out.c_n)));
  return loss;
}

template <typename T>
Matrix<T> random_matrix(Index rows, Index cols, unsigned seed) {
  Generator gen(seed);
  Matrix<T> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = T(gen.normal());
  return m;
}

struct Run {
  Matrix<double> output, h_n, grad_x, grad_h0;
  std::vector<Matrix<double>> param_grads;
};

// One forward + backward of `layer` on fixed data; h0 (and c0) given when `with_state`, as
// variables (so with gradients): random, or zeros when `zero_state`.
inline Run run(nn::RecurrentLayer<double>& layer, Index steps, Index batch, bool with_state,
               const std::vector<Index>* lengths = nullptr, bool zero_state = false) {
  const auto& o = layer.options();
  const Index states = o.num_layers() * (o.bidirectional() ? 2 : 1) * batch;
  Tape<double> tape;
  Var<double> x = tape.variable(random_matrix<double>(steps * batch, o.input_size(), 1));
  auto state = [&](unsigned seed) {
    if (zero_state) return tape.variable(Matrix<double>::Zero(states, o.hidden_size()));
    return tape.variable(random_matrix<double>(states, o.hidden_size(), seed));
  };
  Var<double> h0 = with_state ? state(2) : Var<double>();
  Var<double> c0 = with_state && layer.kind() == nn::CellKind::LSTM ? state(3) : Var<double>();
  auto out = lengths ? layer.forward(x, batch, *lengths, h0, c0) : layer.forward(x, batch, h0, c0);
  layer.zero_grad();
  weighted_loss(tape, out).backward();
  Run r{out.output.value(),
        out.h_n.value(),
        x.grad(),
        with_state ? Matrix<double>(h0.grad()) : Matrix<double>(),
        {}};
  for (auto& [name, p] : layer.named_parameters()) r.param_grads.push_back(p->grad());
  return r;
}

inline double max_diff(const Matrix<double>& a, const Matrix<double>& b) {
  REQUIRE(a.rows() == b.rows());
  REQUIRE(a.cols() == b.cols());
  return a.size() == 0 ? 0.0 : (a - b).cwiseAbs().maxCoeff();
}

}  // namespace gradflow::test
