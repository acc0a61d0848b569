// Checkers for mlp, batchnorm1d, and loss_* cases: gradflow's layers and losses on a
// Tape<double>, differentiated with the case's upstream gradient as the seed.
#include <cmath>
#include <gradflow/nn/activation.hpp>
#include <gradflow/nn/batch_norm.hpp>
#include <gradflow/nn/dense.hpp>
#include <gradflow/nn/loss.hpp>
#include <gradflow/nn/sequential.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "case_file.hpp"

namespace gradflow::reference {
namespace {

using Mat = Matrix<double>;

std::shared_ptr<nn::Layer<double>> make_activation(const std::string& name, const Case& c) {
  if (name == "identity") return std::make_shared<nn::Identity<double>>();
  if (name == "sigmoid") return std::make_shared<nn::Sigmoid<double>>();
  if (name == "tanh") return std::make_shared<nn::Tanh<double>>();
  if (name == "relu") return std::make_shared<nn::ReLU<double>>();
  if (name == "leaky_relu")
    return std::make_shared<nn::LeakyReLU<double>>(
        nn::LeakyReLUOptions().negative_slope(c.param_double("leaky_relu_slope", 0.01)));
  if (name == "elu")
    return std::make_shared<nn::ELU<double>>(
        nn::ELUOptions().alpha(c.param_double("elu_alpha", 1.0)));
  if (name == "gelu") return std::make_shared<nn::GELU<double>>();
  if (name == "gelu_tanh")
    return std::make_shared<nn::GELU<double>>(
        nn::GELUOptions().approximate(GeluApproximation::Tanh));
  throw std::runtime_error("unknown activation '" + name + "'");
}

// A [B x n] seed from a tensor, checked against the shape of the value it seeds.
Mat seed_for(const Case& c, const std::string& name, Var<double> root) {
  Mat g = c.tensor(name).matrix();
  if (g.rows() != root.rows() || g.cols() != root.cols())
    throw std::runtime_error(name + " has shape " + detail::shape_str(g) + " but the output is " +
                             detail::shape_str(root.rows(), root.cols()));
  return g;
}

// mlp: layer k is Dense(weight_k, bias_k) followed by activation k.
void check_mlp(const Case& c, Comparison& cmp) {
  std::vector<std::string> acts;
  for (std::size_t i = 0; c.has_param("activations") && i < c.params.at("activations").size(); ++i)
    acts.push_back(c.param("activations", "", i));
  std::size_t layers = 0;
  while (c.has("weight_" + std::to_string(layers))) ++layers;
  if (layers == 0) throw std::runtime_error("no weight_0 tensor");
  if (acts.size() != layers)
    throw std::runtime_error(std::to_string(layers) + " layers but " + std::to_string(acts.size()) +
                             " activations");

  nn::Sequential<double> net;
  std::vector<std::shared_ptr<nn::Dense<double>>> dense;
  for (std::size_t k = 0; k < layers; ++k) {
    const std::string id = std::to_string(k);
    const Mat w = c.tensor("weight_" + id).matrix();
    const bool has_bias = c.has("bias_" + id);
    auto layer = std::make_shared<nn::Dense<double>>(
        nn::DenseOptions(w.cols(), w.rows()).bias(has_bias).seed(k));
    layer->weight().value() = w;
    if (has_bias) {
      const Mat b = c.tensor("bias_" + id).matrix();
      if (b.size() != w.rows())
        throw std::runtime_error("bias_" + id + " does not match weight_" + id);
      layer->bias()->value() = b;
    }
    dense.push_back(layer);
    net.push_back(layer);
    net.push_back(make_activation(acts[k], c));
  }

  Tape<double> tape;
  Var<double> x = tape.variable(c.tensor("input").matrix(), "input");
  Var<double> y = net(x);
  tape.backward(y, seed_for(c, "grad_output", y));

  cmp.expect("output", Mat(y.value()), c.tensor("expected_output"));
  cmp.expect("grad_input", Mat(x.grad()), c.tensor("expected_grad_input"));
  for (std::size_t k = 0; k < layers; ++k) {
    const std::string id = std::to_string(k);
    cmp.expect("grad_weight_" + id, dense[k]->weight().grad(),
               c.tensor("expected_grad_weight_" + id));
    if (dense[k]->bias() != nullptr)
      cmp.expect("grad_bias_" + id, dense[k]->bias()->grad(), c.tensor("expected_grad_bias_" + id));
  }
}

// batchnorm1d: one training step (output, gradients, running statistics), then eval.
void check_batchnorm1d(const Case& c, Comparison& cmp) {
  const Mat input = c.tensor("input").matrix();
  const bool affine = c.has("weight");
  nn::BatchNorm1d<double> bn(nn::BatchNorm1dOptions(input.cols())
                                 .eps(c.param_double("eps", 1e-5))
                                 .momentum(c.param_double("momentum", 0.1))
                                 .affine(affine));
  if (affine) {
    bn.weight()->value() = c.tensor("weight").matrix();
    bn.bias()->value() = c.tensor("bias").matrix();
  }
  if (c.has("running_mean")) *bn.running_mean() = c.tensor("running_mean").matrix();
  if (c.has("running_var")) *bn.running_var() = c.tensor("running_var").matrix();

  bn.train();
  Tape<double> tape;
  Var<double> x = tape.variable(input, "input");
  Var<double> y = bn(x);
  tape.backward(y, seed_for(c, "grad_output", y));
  cmp.expect("output", Mat(y.value()), c.tensor("expected_output"));
  cmp.expect("grad_input", Mat(x.grad()), c.tensor("expected_grad_input"));
  if (affine) {
    cmp.expect("grad_weight", bn.weight()->grad(), c.tensor("expected_grad_weight"));
    cmp.expect("grad_bias", bn.bias()->grad(), c.tensor("expected_grad_bias"));
  }
  cmp.expect("running_mean", *bn.running_mean(), c.tensor("expected_running_mean"));
  cmp.expect("running_var", *bn.running_var(), c.tensor("expected_running_var"));

  if (c.has("eval_input")) {
    bn.eval();
    tape.clear();
    Var<double> ye = bn(tape.constant(c.tensor("eval_input").matrix()));
    cmp.expect("eval_output", Mat(ye.value()), c.tensor("expected_eval_output"));
  }
}

nn::Reduction reduction_of(const Case& c) {
  const std::string r = c.param("reduction", "mean");
  if (r == "mean") return nn::Reduction::Mean;
  if (r == "sum") return nn::Reduction::Sum;
  throw std::runtime_error("unsupported reduction '" + r + "'");
}

// loss_*: the loss of `input` against `target`, and its gradient for `input`.
template <typename LossFn>
void check_loss(const Case& c, Comparison& cmp, LossFn loss_fn) {
  Tape<double> tape;
  Var<double> x = tape.variable(c.tensor("input").matrix(), "input");
  Var<double> loss = loss_fn(tape, x, c.tensor("target"), reduction_of(c));
  tape.backward(loss);
  cmp.expect("loss", Mat(loss.value()), c.tensor("expected_loss"));
  cmp.expect("grad_input", Mat(x.grad()), c.tensor("expected_grad_input"));
}

void check_loss_mse(const Case& c, Comparison& cmp) {
  check_loss(c, cmp, [](Tape<double>& t, Var<double> x, const Tensor& target, nn::Reduction r) {
    return nn::mse_loss(x, t.constant(target.matrix()), r);
  });
}

void check_loss_cross_entropy(const Case& c, Comparison& cmp) {
  check_loss(c, cmp, [](Tape<double>&, Var<double> x, const Tensor& target, nn::Reduction r) {
    std::vector<Index> classes;
    for (double v : target.values) {
      if (v != std::floor(v)) throw std::runtime_error("target holds a non-integer class");
      classes.push_back(static_cast<Index>(v));
    }
    return nn::cross_entropy(x, classes, r);
  });
}

void check_loss_bce_with_logits(const Case& c, Comparison& cmp) {
  check_loss(c, cmp, [](Tape<double>& t, Var<double> x, const Tensor& target, nn::Reduction r) {
    return nn::binary_cross_entropy_with_logits(x, t.constant(target.matrix()), r);
  });
}

}  // namespace

void register_nn_checkers(Registry& registry) {
  registry["mlp"] = check_mlp;
  registry["batchnorm1d"] = check_batchnorm1d;
  registry["loss_mse"] = check_loss_mse;
  registry["loss_cross_entropy"] = check_loss_cross_entropy;
  registry["loss_bce_with_logits"] = check_loss_bce_with_logits;
}

}  // namespace gradflow::reference
