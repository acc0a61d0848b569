#pragma once
/// \file
/// Sequential: layers applied one after another.

#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradflow/nn/module.hpp"

namespace gradflow::nn {

/// Applies its layers in order: y = f_n(... f_2(f_1(x))).
///
/// The layers are children named "0", "1", ..., so parameters are listed as "0.weight",
/// "2.bias", ... as in PyTorch's nn.Sequential.
/// \code
///   Sequential<double> net;
///   net.push_back(std::make_shared<Dense<double>>(DenseOptions(4, 16)));
///   net.push_back(std::make_shared<ReLU<double>>());
///   net.push_back(Dense<double>(DenseOptions(16, 1)));   // moved into a shared_ptr
///   Var<double> y = net(tape.constant(x));
/// \endcode
template <typename T>
class Sequential : public Layer<T> {
 public:
  Sequential() = default;

  /// Sequential({layer_a, layer_b, ...}).
  Sequential(std::initializer_list<std::shared_ptr<Layer<T>>> layers) {
    for (const auto& layer : layers) push_back(layer);
  }

  /// Appends a layer (shared, so it can also be held elsewhere); returns *this.
  Sequential& push_back(std::shared_ptr<Layer<T>> layer) {
    if (!layer)
      throw ArgumentError("Sequential: layer " + std::to_string(layers_.size()) + " is null");
    this->register_module(std::to_string(layers_.size()), layer);
    layers_.push_back(std::move(layer));
    return *this;
  }

  /// Appends a temporary layer, moving it into a shared_ptr; returns *this.
  template <typename L,
            typename = std::enable_if_t<std::is_base_of_v<Layer<T>, L> && !std::is_reference_v<L>>>
  Sequential& push_back(L&& layer) {
    return push_back(std::shared_ptr<Layer<T>>(std::make_shared<L>(std::move(layer))));
  }

  /// Runs every layer in order; the input passes through unchanged when there is none.
  Var<T> forward(Var<T> x) override {
    for (auto& layer : layers_) x = layer->forward(x);
    return x;
  }

  std::size_t size() const { return layers_.size(); }
  bool empty() const { return layers_.empty(); }
  /// Layer i (throws ArgumentError when out of range).
  Layer<T>& operator[](std::size_t i) { return *at(i); }
  /// Layer i as a shared_ptr (throws ArgumentError when out of range).
  const std::shared_ptr<Layer<T>>& at(std::size_t i) const {
    if (i >= layers_.size())
      throw ArgumentError("Sequential: index " + std::to_string(i) + " out of range (size " +
                          std::to_string(layers_.size()) + ")");
    return layers_[i];
  }
  std::string type_name() const override { return "Sequential"; }

 private:
  std::vector<std::shared_ptr<Layer<T>>> layers_;
};

}  // namespace gradflow::nn
