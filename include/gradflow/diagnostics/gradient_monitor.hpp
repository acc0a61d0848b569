#pragma once
/// \file
/// GradientMonitor: per-parameter and per-layer gradient norms after each backward pass,
/// kept as a history over training steps.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/core/parameter.hpp"
#include "gradflow/diagnostics/csv.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::diag {

/// Gradient statistics of one named parameter after a backward pass.
///
/// With g = dL/dW and W the parameter's value (Frobenius norms over all elements):
/// grad_norm = ||g||_2, grad_max_abs = max_ij |g_ij|, weight_norm = ||W||_2,
/// ratio = ||g|| / ||W|| (the relative size of one SGD step per unit learning rate;
/// +inf when ||W|| = 0 and ||g|| > 0, 0 when both are 0).
struct ParameterGradStats {
  std::string name;   ///< dotted name, e.g. "3.weight"
  std::string layer;  ///< module prefix, e.g. "3" (see layer_of())
  Index size = 0;     ///< number of scalars
  double grad_norm = 0.0;
  double grad_max_abs = 0.0;
  double weight_norm = 0.0;
  double ratio = 0.0;
  bool finite = true;  ///< every gradient element is finite
};

/// Gradient statistics of one layer: all parameters that share a module prefix.
///
/// Norms combine the layer's parameters as one vector: grad_norm = sqrt(sum_p ||g_p||^2),
/// weight_norm = sqrt(sum_p ||W_p||^2), grad_max_abs = max_p max|g_p|, ratio as above.
struct LayerGradStats {
  std::string layer;      ///< module prefix ("" for parameters of the root module)
  std::string type_name;  ///< the module's type_name() when known ("Dense"), else ""
  Index size = 0;         ///< scalars over the layer's parameters
  double grad_norm = 0.0;
  double grad_max_abs = 0.0;
  double weight_norm = 0.0;
  double ratio = 0.0;
  bool finite = true;
};

/// Everything GradientMonitor::record() measured at one training step.
struct GradientSnapshot {
  long step = 0;
  std::vector<ParameterGradStats> parameters;  ///< in the monitor's parameter order
  std::vector<LayerGradStats> layers;          ///< in order of each layer's first parameter

  /// False when any gradient holds a NaN or an Inf.
  bool all_finite() const {
    return std::all_of(parameters.begin(), parameters.end(),
                       [](const ParameterGradStats& p) { return p.finite; });
  }
  /// The layer called `name`, or nullptr.
  const LayerGradStats* layer(const std::string& name) const {
    for (const LayerGradStats& l : layers)
      if (l.layer == name) return &l;
    return nullptr;
  }
  /// The parameter called `name`, or nullptr.
  const ParameterGradStats* parameter(const std::string& name) const {
    for (const ParameterGradStats& p : parameters)
      if (p.name == name) return &p;
    return nullptr;
  }
};

/// The layer a dotted parameter name belongs to: everything before the last dot
/// ("3.weight" -> "3", "encoder.lstm.weight_hh_l0" -> "encoder.lstm", "weight" -> "").
inline std::string layer_of(const std::string& parameter_name) {
  const std::size_t dot = parameter_name.rfind('.');
  return dot == std::string::npos ? std::string() : parameter_name.substr(0, dot);
}

namespace detail {

inline double safe_ratio(double num, double den) {
  if (den > 0.0) return num / den;
  return num > 0.0 ? std::numeric_limits<double>::infinity() : 0.0;
}

// Squared Frobenius norm and max |x|, accumulated in double (a float gradient of 1e30 has
// a finite norm). NaN anywhere makes max_abs NaN; an Inf makes it Inf.
template <typename T>
void norm_and_max(const Matrix<T>& m, double& sum_sq, double& max_abs, bool& finite) {
  sum_sq = 0.0;
  max_abs = 0.0;
  bool has_nan = false;
  const T* p = m.data();
  for (Index i = 0; i < m.size(); ++i) {
    const double v = static_cast<double>(p[i]);
    if (std::isnan(v))
      has_nan = true;
    else
      max_abs = std::max(max_abs, std::abs(v));
    sum_sq += v * v;
  }
  if (has_nan) max_abs = std::numeric_limits<double>::quiet_NaN();
  finite = std::isfinite(max_abs);
}

template <typename T>
void collect_type_names(const nn::Module<T>& m, const std::string& prefix,
                        std::map<std::string, std::string>& out) {
  for (const auto& [name, child] : m.named_children()) {
    const std::string path = prefix.empty() ? name : prefix + "." + name;
    out[path] = child->type_name();
    collect_type_names(*child, path, out);
  }
}

}  // namespace detail

/// Measures one step's gradients of `params` without keeping history (what
/// GradientMonitor::record() uses). `type_names` maps a layer prefix to its module's
/// type_name() for the tables; it may be empty.
/// \code
///   loss.backward();
///   diag::GradientSnapshot s = diag::gradient_snapshot(model.named_parameters());
///   std::cout << s.layer("0")->grad_norm;
/// \endcode
template <typename T>
GradientSnapshot gradient_snapshot(const std::vector<std::pair<std::string, Parameter<T>*>>& params,
                                   long step = 0,
                                   const std::map<std::string, std::string>& type_names = {}) {
  GradientSnapshot s;
  s.step = step;
  s.parameters.reserve(params.size());
  std::vector<double> layer_grad_sq, layer_weight_sq;
  for (const auto& [name, p] : params) {
    if (p == nullptr) throw ArgumentError("gradient_snapshot: parameter '" + name + "' is null");
    ParameterGradStats ps;
    ps.name = name;
    ps.layer = layer_of(name);
    ps.size = p->size();
    double grad_sq = 0.0, weight_sq = 0.0, weight_max = 0.0;
    bool weight_finite = true;
    detail::norm_and_max(p->grad(), grad_sq, ps.grad_max_abs, ps.finite);
    detail::norm_and_max(p->value(), weight_sq, weight_max, weight_finite);
    ps.grad_norm = std::sqrt(grad_sq);
    ps.weight_norm = std::sqrt(weight_sq);
    ps.ratio = detail::safe_ratio(ps.grad_norm, ps.weight_norm);

    auto it = std::find_if(s.layers.begin(), s.layers.end(),
                           [&](const LayerGradStats& l) { return l.layer == ps.layer; });
    std::size_t k = static_cast<std::size_t>(it - s.layers.begin());
    if (it == s.layers.end()) {
      LayerGradStats l;
      l.layer = ps.layer;
      auto type = type_names.find(ps.layer);
      if (type != type_names.end()) l.type_name = type->second;
      s.layers.push_back(l);
      layer_grad_sq.push_back(0.0);
      layer_weight_sq.push_back(0.0);
    }
    LayerGradStats& l = s.layers[k];
    l.size += ps.size;
    layer_grad_sq[k] += grad_sq;
    layer_weight_sq[k] += weight_sq;
    l.finite = l.finite && ps.finite;
    l.grad_max_abs = std::isnan(ps.grad_max_abs) || std::isnan(l.grad_max_abs)
                         ? std::numeric_limits<double>::quiet_NaN()
                         : std::max(l.grad_max_abs, ps.grad_max_abs);
    s.parameters.push_back(std::move(ps));
  }
  for (std::size_t k = 0; k < s.layers.size(); ++k) {
    s.layers[k].grad_norm = std::sqrt(layer_grad_sq[k]);
    s.layers[k].weight_norm = std::sqrt(layer_weight_sq[k]);
    s.layers[k].ratio = detail::safe_ratio(s.layers[k].grad_norm, s.layers[k].weight_norm);
  }
  return s;
}

/// Records gradient norms of a model's parameters after every backward pass.
///
/// Per parameter: ||dL/dW||_2, max |dL/dW|, ||W||_2 and ||dL/dW|| / ||W||; per layer (the
/// parameters sharing a module prefix, "3.weight" + "3.bias" -> "3") the same over the
/// concatenated parameters. Parameters with requires_grad() off are left out.
///
/// The monitor keeps pointers to the parameters: the model must outlive it.
/// \code
///   diag::GradientMonitor<float> monitor(model);
///   for (long step = 0; step < steps; ++step) {
///     tape.clear();
///     model.zero_grad();
///     auto loss = nn::mse_loss(model(tape.constant(x)), tape.constant(y));
///     loss.backward();
///     monitor.record(step);            // before the optimizer step, which may clip
///     optimizer.step();
///   }
///   monitor.write_csv("grad_history.csv");
///   std::cout << diag::format_report(monitor.latest());
/// \endcode
template <typename T>
class GradientMonitor {
 public:
  using NamedParameters = std::vector<std::pair<std::string, Parameter<T>*>>;

  /// Watches every trainable parameter of `model` (its named_parameters()) and takes
  /// layer type names from its named_children().
  explicit GradientMonitor(nn::Module<T>& model) : GradientMonitor(model.named_parameters()) {
    detail::collect_type_names(model, "", type_names_);
    type_names_.emplace("", model.type_name());
  }

  /// Watches any list of named parameters (names are grouped into layers by layer_of()).
  explicit GradientMonitor(const NamedParameters& params) {
    for (const auto& [name, p] : params) {
      if (p == nullptr) throw ArgumentError("GradientMonitor: parameter '" + name + "' is null");
      if (p->requires_grad()) params_.emplace_back(name, p);
    }
  }

  /// Measures the current gradients, appends them to history() and returns them.
  const GradientSnapshot& record(long step) {
    history_.push_back(gradient_snapshot(params_, step, type_names_));
    return history_.back();
  }
  /// record() numbered one after the last recorded step (0 for the first).
  const GradientSnapshot& record() {
    return record(history_.empty() ? 0 : history_.back().step + 1);
  }

  /// Every recorded step, oldest first.
  const std::vector<GradientSnapshot>& history() const { return history_; }
  /// The last recorded step; throws ArgumentError before the first record().
  const GradientSnapshot& latest() const {
    if (history_.empty()) throw ArgumentError("GradientMonitor::latest: nothing recorded yet");
    return history_.back();
  }
  /// Forgets the history (the watched parameters stay).
  void clear() { history_.clear(); }

  /// The watched parameters, in order.
  const NamedParameters& parameters() const { return params_; }
  /// Layer names in order of their first parameter.
  std::vector<std::string> layer_names() const {
    std::vector<std::string> out;
    for (const auto& [name, p] : params_) {
      std::string l = layer_of(name);
      if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
    }
    return out;
  }

  /// One layer's gradient norm at every recorded step (NaN where it was not recorded).
  std::vector<double> layer_series(const std::string& layer) const {
    std::vector<double> out;
    out.reserve(history_.size());
    for (const GradientSnapshot& s : history_) {
      const LayerGradStats* l = s.layer(layer);
      out.push_back(l != nullptr ? l->grad_norm : std::numeric_limits<double>::quiet_NaN());
    }
    return out;
  }

  /// The history as CSV, long format: one row per step and layer (kind "layer", name =
  /// the layer) and, with `parameters`, one per step and parameter (kind "parameter").
  /// Columns: step,kind,name,layer,size,grad_norm,grad_max_abs,weight_norm,ratio,finite
  void write_csv(std::ostream& out, bool parameters = true) const {
    out << "step,kind,name,layer,size,grad_norm,grad_max_abs,weight_norm,ratio,finite\n";
    auto row = [&](long step, const char* kind, const std::string& name, const std::string& layer,
                   Index size, double gn, double gm, double wn, double r, bool finite) {
      out << step << ',' << kind << ',' << diag::detail::csv_field(name) << ','
          << diag::detail::csv_field(layer) << ',' << size << ',' << detail::csv_number(gn) << ','
          << detail::csv_number(gm) << ',' << detail::csv_number(wn) << ',' << detail::csv_number(r)
          << ',' << (finite ? 1 : 0) << '\n';
    };
    for (const GradientSnapshot& s : history_) {
      for (const LayerGradStats& l : s.layers)
        row(s.step, "layer", l.layer, l.layer, l.size, l.grad_norm, l.grad_max_abs, l.weight_norm,
            l.ratio, l.finite);
      if (parameters)
        for (const ParameterGradStats& p : s.parameters)
          row(s.step, "parameter", p.name, p.layer, p.size, p.grad_norm, p.grad_max_abs,
              p.weight_norm, p.ratio, p.finite);
    }
  }
  /// write_csv() into the file at `path` (replaced); throws ArgumentError if it cannot open.
  void write_csv(const std::string& path, bool parameters = true) const {
    std::ofstream file = detail::open_csv(path);
    write_csv(file, parameters);
  }

 private:
  NamedParameters params_;
  std::map<std::string, std::string> type_names_;
  std::vector<GradientSnapshot> history_;
};

}  // namespace gradflow::diag
