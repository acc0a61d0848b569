// Checkers for rnn_tanh, rnn_relu, lstm and gru cases: gradflow's fused sequence layers with
// the case's PyTorch weights, differentiated through
// loss = sum(output * grad_output) + sum(h_n * grad_h_n) [+ sum(c_n * grad_c_n)].
#include <gradflow/core/ops.hpp>
#include <gradflow/nn/recurrent/recurrent.hpp>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include "case_file.hpp"

namespace gradflow::reference {
namespace {

using Mat = Matrix<double>;

// A rank-3 [a, b, c] tensor as the [(a*b) x c] matrix gradflow uses for sequences and states.
Mat flat(const Tensor& t) {
  if (t.shape.size() != 3) return t.matrix();
  const Index rows = t.shape[0] * t.shape[1], cols = t.shape[2];
  Mat m(rows, cols);
  for (Index r = 0; r < rows; ++r)
    for (Index c = 0; c < cols; ++c) m(r, c) = t.values[static_cast<std::size_t>(r * cols + c)];
  return m;
}

void check_recurrent(const Case& c, Comparison& cmp) {
  const Tensor& input = c.tensor("input");
  if (input.shape.size() != 3) throw std::runtime_error("input must be rank 3");
  const bool batch_first = c.param_int("batch_first", 0) != 0;
  const Index B = batch_first ? input.shape[0] : input.shape[1];
  const Index I = input.shape[2];
  const Index H = c.param_int("hidden_size", c.tensor("h0").dim(2));
  nn::RecurrentOptions options(I, H);
  options.num_layers(c.param_int("num_layers", 1))
      .bias(c.param_int("bias", 1) != 0)
      .batch_first(batch_first)
      .bidirectional(c.param_int("bidirectional", 0) != 0)
      .relu(c.kind == "rnn_relu");
  std::unique_ptr<nn::RecurrentLayer<double>> layer;
  if (c.kind == "lstm")
    layer = std::make_unique<nn::LSTM<double>>(options);
  else if (c.kind == "gru")
    layer = std::make_unique<nn::GRU<double>>(options);
  else
    layer = std::make_unique<nn::RNN<double>>(options);
  layer->eval();  // PyTorch applies no dropout in these cases

  std::map<std::string, Mat> weights;
  for (auto& [name, p] : layer->named_parameters()) weights[name] = c.tensor(name).matrix();
  layer->load_weights(weights);

  const bool lstm = c.kind == "lstm";
  Tape<double> tape;
  Var<double> x = tape.variable(flat(input), "input");
  Var<double> h0 = tape.variable(flat(c.tensor("h0")), "h0");
  Var<double> c0 = lstm ? tape.variable(flat(c.tensor("c0")), "c0") : Var<double>();
  nn::RecurrentOutput<double> out = layer->forward(x, B, h0, c0);
  Var<double> loss = sum(out.output * tape.constant(flat(c.tensor("grad_output")))) +
                     sum(out.h_n * tape.constant(flat(c.tensor("grad_h_n"))));
  if (lstm) loss = loss + sum(out.c_n * tape.constant(flat(c.tensor("grad_c_n"))));
  layer->zero_grad();
  loss.backward();

  cmp.expect("output", Mat(out.output.value()), c.tensor("expected_output"));
  cmp.expect("h_n", Mat(out.h_n.value()), c.tensor("expected_h_n"));
  if (lstm) cmp.expect("c_n", Mat(out.c_n.value()), c.tensor("expected_c_n"));
  cmp.expect("grad_input", Mat(x.grad()), c.tensor("expected_grad_input"));
  cmp.expect("grad_h0", Mat(h0.grad()), c.tensor("expected_grad_h0"));
  if (lstm) cmp.expect("grad_c0", Mat(c0.grad()), c.tensor("expected_grad_c0"));
  for (auto& [name, p] : layer->named_parameters())
    cmp.expect("grad_" + name, p->grad(), c.tensor("expected_grad_" + name));
}

}  // namespace

void register_recurrent_checkers(Registry& registry) {
  for (const char* kind : {"rnn_tanh", "rnn_relu", "lstm", "gru"}) registry[kind] = check_recurrent;
}

}  // namespace gradflow::reference
