#pragma once
/// \file
/// Module: a layer that owns named parameters and buffers, with a train/eval mode.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/core/parameter.hpp"
#include "gradflow/core/var.hpp"

namespace gradflow::nn {

/// Base of every layer and model, like torch::nn::Module.
///
/// A module registers its parameters (trainable), buffers (state that is saved but not
/// trained, e.g. batch-norm running statistics) and child modules under names; the
/// named_*() lists join names with dots ("2.weight", "lstm.weight_hh_l0"), which is
/// what optimizers, diagnostics and save/load use.
///
/// Parameters and children live on the heap, so references to them stay valid when
/// the module moves. Modules are move-only.
template <typename T>
class Module {
 public:
  Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;
  Module(Module&&) noexcept = default;
  Module& operator=(Module&&) noexcept = default;
  virtual ~Module() = default;

  /// Every parameter of this module and its children, with dotted names, in
  /// registration order.
  std::vector<std::pair<std::string, Parameter<T>*>> named_parameters() {
    std::vector<std::pair<std::string, Parameter<T>*>> out;
    collect_parameters("", out);
    return out;
  }

  /// Every parameter, without names (what optimizers take).
  std::vector<Parameter<T>*> parameters() {
    std::vector<Parameter<T>*> out;
    for (auto& [name, p] : named_parameters()) out.push_back(p);
    return out;
  }

  /// Every buffer of this module and its children, with dotted names.
  std::vector<std::pair<std::string, Matrix<T>*>> named_buffers() {
    std::vector<std::pair<std::string, Matrix<T>*>> out;
    collect_buffers("", out);
    return out;
  }

  /// Direct children with their names.
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& named_children() const {
    return children_;
  }

  /// Training mode (dropout active, batch norm uses batch statistics); recursive.
  void train(bool on = true) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
  }
  /// Evaluation mode; same as train(false).
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Sets every parameter's gradient to zero.
  void zero_grad() {
    for (auto& [name, p] : named_parameters()) p->zero_grad();
  }

  /// Total number of trainable scalars.
  Index parameter_count() {
    Index n = 0;
    for (auto& [name, p] : named_parameters()) n += p->size();
    return n;
  }

  /// Short type name for tables and error messages ("Dense", "LSTM", ...).
  virtual std::string type_name() const { return "Module"; }

 protected:
  /// Adds a parameter called `name`; the reference stays valid for the module's life.
  Parameter<T>& register_parameter(const std::string& name, Matrix<T> value,
                                   bool requires_grad = true) {
    params_.emplace_back(name, std::make_unique<Parameter<T>>(std::move(value), requires_grad));
    return *params_.back().second;
  }

  /// Adds a buffer called `name` (saved and loaded, never trained).
  Matrix<T>& register_buffer(const std::string& name, Matrix<T> value) {
    buffers_.emplace_back(name, std::make_unique<Matrix<T>>(std::move(value)));
    return *buffers_.back().second;
  }

  /// Adds a child module called `name` and returns it.
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    if (!module) throw ArgumentError("register_module: '" + name + "' is null");
    module->train(training_);
    children_.emplace_back(name, module);
    return module;
  }

 private:
  void collect_parameters(const std::string& prefix,
                          std::vector<std::pair<std::string, Parameter<T>*>>& out) {
    for (auto& [name, p] : params_) out.emplace_back(prefix + name, p.get());
    for (auto& [name, child] : children_) child->collect_parameters(prefix + name + ".", out);
  }
  void collect_buffers(const std::string& prefix,
                       std::vector<std::pair<std::string, Matrix<T>*>>& out) {
    for (auto& [name, b] : buffers_) out.emplace_back(prefix + name, b.get());
    for (auto& [name, child] : children_) child->collect_buffers(prefix + name + ".", out);
  }

  std::vector<std::pair<std::string, std::unique_ptr<Parameter<T>>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<Matrix<T>>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

/// A module with one input and one output, the kind Sequential and Residual chain.
template <typename T>
class Layer : public Module<T> {
 public:
  /// Applies the layer to a [batch x features] value.
  virtual Var<T> forward(Var<T> x) = 0;
  Var<T> operator()(Var<T> x) { return forward(x); }
};

}  // namespace gradflow::nn
