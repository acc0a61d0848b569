// Checkers for clip_grad_norm, clip_grad_value and optim_* cases: gradflow's optimizers
// and clipping replay the case's gradients step by step.
#include <cmath>
#include <functional>
#include <gradflow/optim/optim.hpp>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "case_file.hpp"

namespace gradflow::reference {
namespace {

using Params = std::vector<std::unique_ptr<Parameter<double>>>;

std::vector<Parameter<double>*> pointers(const Params& params) {
  std::vector<Parameter<double>*> out;
  for (const auto& p : params) out.push_back(p.get());
  return out;
}

// A tensor of any rank for an element-wise rule (optimizers, clipping): up to rank 2 as its
// matrix, higher ranks as one row of its values in row-major order.
Matrix<double> elementwise(const Tensor& t) {
  if (t.shape.size() <= 2) return t.matrix();
  Matrix<double> row(1, static_cast<Index>(t.values.size()));
  for (Index i = 0; i < row.cols(); ++i) row(0, i) = t.values[static_cast<std::size_t>(i)];
  return row;
}

// Parameters "<prefix>0", "<prefix>1", ... in order, as many as the case has.
Params read_params(const Case& c, const std::string& prefix) {
  Params out;
  for (std::size_t k = 0; c.has(prefix + std::to_string(k)); ++k)
    out.push_back(
        std::make_unique<Parameter<double>>(elementwise(c.tensor(prefix + std::to_string(k)))));
  if (out.empty()) throw std::runtime_error("no tensor " + prefix + "0");
  return out;
}

// Fails on a hyper-parameter this checker would silently ignore. PyTorch's implementation
// switches (foreach, differentiable, capturable, fused) choose a kernel, not the rule, so they
// are accepted and ignored.
void only_params(const Case& c, std::set<std::string> known) {
  known.insert({"count", "foreach", "differentiable", "capturable", "fused"});
  for (const auto& [key, values] : c.params)
    if (!known.count(key)) throw std::runtime_error("unsupported param '" + key + "'");
}

bool flag(const Case& c, const std::string& key) { return c.param_double(key, 0.0) != 0.0; }

void check_clip_norm(const Case& c, Comparison& cmp) {
  only_params(c, {"max_norm", "norm_type", "error_if_nonfinite"});
  Params grads_as_params = read_params(c, "grad_");
  Params params;
  for (const auto& g : grads_as_params) {
    params.push_back(
        std::make_unique<Parameter<double>>(Matrix<double>::Zero(g->rows(), g->cols())));
    params.back()->grad() = g->value();
  }
  const double total =
      optim::clip_grad_norm_(pointers(params), c.param_double("max_norm", 1.0),
                             c.param_double("norm_type", 2.0), flag(c, "error_if_nonfinite"));
  for (std::size_t k = 0; k < params.size(); ++k)
    cmp.expect("grad_" + std::to_string(k), params[k]->grad(),
               c.tensor("expected_grad_" + std::to_string(k)));
  cmp.expect("total_norm", Matrix<double>::Constant(1, 1, total), c.tensor("expected_total_norm"));
}

void check_clip_value(const Case& c, Comparison& cmp) {
  only_params(c, {"clip_value"});
  Params params = read_params(c, "grad_");
  for (auto& p : params) p->grad() = p->value();
  optim::clip_grad_value_(pointers(params), c.param_double("clip_value", 1.0));
  for (std::size_t k = 0; k < params.size(); ++k)
    cmp.expect("grad_" + std::to_string(k), params[k]->grad(),
               c.tensor("expected_grad_" + std::to_string(k)));
}

// Replays every step's gradients through `opt` and compares the parameters after each.
void replay(const Case& c, Comparison& cmp, Params& params, optim::Optimizer<double>& opt) {
  long steps = c.param_int("steps", 0);
  if (!c.has_param("steps"))  // as many as the case has gradients for
    while (c.has("grad_step" + std::to_string(steps) + "_0")) ++steps;
  if (steps <= 0) throw std::runtime_error("no steps");
  for (long s = 0; s < steps; ++s) {
    for (std::size_t k = 0; k < params.size(); ++k) {
      const std::string name = "step" + std::to_string(s) + "_" + std::to_string(k);
      params[k]->grad() = elementwise(c.tensor("grad_" + name));
    }
    opt.step();
    for (std::size_t k = 0; k < params.size(); ++k) {
      const std::string name = "param_step" + std::to_string(s) + "_" + std::to_string(k);
      cmp.expect(name, params[k]->value(), c.tensor("expected_" + name));
    }
  }
}

void check_sgd(const Case& c, Comparison& cmp) {
  only_params(c, {"steps", "lr", "weight_decay", "momentum", "dampening", "nesterov", "maximize"});
  Params params = read_params(c, "param_");
  optim::SGD<double> opt(pointers(params),
                         optim::SGDOptions(c.param_double("lr", 0.0))  // required in PyTorch
                             .momentum(c.param_double("momentum", 0.0))
                             .dampening(c.param_double("dampening", 0.0))
                             .weight_decay(c.param_double("weight_decay", 0.0))
                             .nesterov(flag(c, "nesterov"))
                             .maximize(flag(c, "maximize")));
  replay(c, cmp, params, opt);
}

// The case's Adam/AdamW hyper-parameters over `o`, which holds the optimizer's defaults.
template <typename Options>
Options adam_options(const Case& c, Options o) {
  only_params(c, {"steps", "lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"});
  o.lr(c.param_double("lr", o.lr()))
      .betas(c.param_double("betas", o.beta1(), 0), c.param_double("betas", o.beta2(), 1))
      .eps(c.param_double("eps", o.eps()))
      .weight_decay(c.param_double("weight_decay", o.weight_decay()))
      .amsgrad(flag(c, "amsgrad"))
      .maximize(flag(c, "maximize"));
  return o;
}

void check_adam(const Case& c, Comparison& cmp) {
  Params params = read_params(c, "param_");
  optim::Adam<double> opt(pointers(params), adam_options(c, optim::AdamOptions()));
  replay(c, cmp, params, opt);
}

void check_adamw(const Case& c, Comparison& cmp) {
  Params params = read_params(c, "param_");
  optim::AdamW<double> opt(pointers(params), adam_options(c, optim::AdamWOptions()));
  replay(c, cmp, params, opt);
}

void check_rmsprop(const Case& c, Comparison& cmp) {
  only_params(c,
              {"steps", "lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize"});
  Params params = read_params(c, "param_");
  optim::RMSprop<double> opt(pointers(params),
                             optim::RMSpropOptions(c.param_double("lr", 1e-2))
                                 .alpha(c.param_double("alpha", 0.99))
                                 .eps(c.param_double("eps", 1e-8))
                                 .weight_decay(c.param_double("weight_decay", 0.0))
                                 .momentum(c.param_double("momentum", 0.0))
                                 .centered(flag(c, "centered"))
                                 .maximize(flag(c, "maximize")));
  replay(c, cmp, params, opt);
}

void check_adagrad(const Case& c, Comparison& cmp) {
  only_params(c, {"steps", "lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps",
                  "maximize"});
  Params params = read_params(c, "param_");
  optim::Adagrad<double> opt(
      pointers(params),
      optim::AdagradOptions(c.param_double("lr", 1e-2))
          .lr_decay(c.param_double("lr_decay", 0.0))
          .weight_decay(c.param_double("weight_decay", 0.0))
          .initial_accumulator_value(c.param_double("initial_accumulator_value", 0.0))
          .eps(c.param_double("eps", 1e-10))
          .maximize(flag(c, "maximize")));
  replay(c, cmp, params, opt);
}

}  // namespace

void register_optim_checkers(Registry& registry) {
  registry["clip_grad_norm"] = check_clip_norm;
  registry["clip_grad_value"] = check_clip_value;
  registry["optim_sgd"] = check_sgd;
  registry["optim_adam"] = check_adam;
  registry["optim_adamw"] = check_adamw;
  registry["optim_rmsprop"] = check_rmsprop;
  registry["optim_adagrad"] = check_adagrad;
}

}  // namespace gradflow::reference
