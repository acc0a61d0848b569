#pragma once
// Shared by the recurrent tests: building layers of each kind and a loss that touches
// every output, so every gradient path is exercised.

#include <memory>
#include <string>

#include <gradflow/gradflow.hpp>

namespace gradflow::test {

inline const char* kind_name(nn::CellKind k) {
  switch (k) {
    case nn::CellKind::LSTM: return "LSTM";
    case nn::CellKind::GRU: return "GRU";
    case nn::CellKind::RnnRelu: return "RNN relu";
    default: return "RNN tanh";
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

}  // namespace gradflow::test
