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

// sum(output * W) + sum(h_n * V) [+ sum(c_n * V)], with fixed random W and V. An output
// `by_columns` (feature_major) gets the transpose of the W the row layout gets.
template <typename T>
Var<T> weighted_loss(Tape<T>& tape, const nn::RecurrentOutput<T>& out, unsigned seed = 7,
                     bool by_columns = false) {
  Generator gen(seed);
  auto random_sized = [&gen](Index rows, Index cols) {
    Matrix<T> m(rows, cols);
    for (Index i = 0; i < m.size(); ++i) m.data()[i] = T(gen.normal());
    return m;
  };
  auto random_like = [&](Var<T> v) { return random_sized(v.rows(), v.cols()); };
  const Var<T> y = out.output;
  const Matrix<T> w =
      by_columns ? Matrix<T>(random_sized(y.cols(), y.rows()).transpose()) : random_like(y);
  Var<T> loss =
      sum(out.output * tape.constant(w)) + sum(out.h_n * tape.constant(random_like(out.h_n)));
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

// Sets Eigen's (and so gradflow's) thread count for one scope.
class ThreadCount {
 public:
  explicit ThreadCount(int n) : saved_(Eigen::nbThreads()) { Eigen::setNbThreads(n); }
  ~ThreadCount() { Eigen::setNbThreads(saved_); }
  ThreadCount(const ThreadCount&) = delete;
  ThreadCount& operator=(const ThreadCount&) = delete;

 private:
  int saved_;
};

struct Run {
  Matrix<double> output, h_n, grad_x, grad_h0;
  std::vector<Matrix<double>> param_grads;
};

// One forward + backward of `layer` on fixed data; h0 (and c0) given when `with_state`, as
// variables (so with gradients): random, or zeros when `zero_state`. A feature_major layer
// gets the same data transposed, and its output and input gradient are transposed back, so
// that runs of both layouts compare directly. `reused`: a tape to clear and record on (its
// memory then holds an earlier run's values, as in training), instead of a new one.
inline Run run(nn::RecurrentLayer<double>& layer, Index steps, Index batch, bool with_state,
               const std::vector<Index>* lengths = nullptr, bool zero_state = false,
               Tape<double>* reused = nullptr) {
  const auto& o = layer.options();
  const Index states = o.num_layers() * (o.bidirectional() ? 2 : 1) * batch;
  Tape<double> own;
  Tape<double>& tape = reused != nullptr ? *reused : own;
  tape.clear();
  const Matrix<double> rows = random_matrix<double>(steps * batch, o.input_size(), 1);
  const bool by_columns = o.feature_major();
  Var<double> x = tape.variable(by_columns ? Matrix<double>(rows.transpose()) : rows);
  auto state = [&](unsigned seed) {
    if (zero_state) return tape.variable(Matrix<double>::Zero(states, o.hidden_size()));
    return tape.variable(random_matrix<double>(states, o.hidden_size(), seed));
  };
  Var<double> h0 = with_state ? state(2) : Var<double>();
  Var<double> c0 = with_state && layer.kind() == nn::CellKind::LSTM ? state(3) : Var<double>();
  auto out = lengths ? layer.forward(x, batch, *lengths, h0, c0) : layer.forward(x, batch, h0, c0);
  layer.zero_grad();
  weighted_loss(tape, out, 7, by_columns).backward();
  auto in_rows = [by_columns](const Matrix<double>& m) {
    return by_columns ? Matrix<double>(m.transpose()) : m;
  };
  Run r{in_rows(out.output.value()),
        out.h_n.value(),
        in_rows(x.grad()),
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
