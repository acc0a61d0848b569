#pragma once
/// \file
/// HiddenGradientTrace: ||dL/dh_t|| for every time step of a recurrent network.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <limits>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/core/tape.hpp"
#include "gradflow/diagnostics/csv.hpp"
#include "gradflow/diagnostics/growth_rate.hpp"

namespace gradflow::diag {

/// The gradient norms of one layer-direction of a recurrent network.
struct HiddenGradientSeries {
  Index layer = 0;
  Index direction = 0;         ///< 0 forward in time, 1 the reversed direction
  std::vector<double> norms;   ///< norms[t] = ||dL/dh_t||_F; NaN for steps never seen
  std::vector<bool> recorded;  ///< recorded[t]: step t was seen (a NaN norm may be real)
};

/// Collects ||dL/dh_t|| during backward, per layer, direction and time step t.
///
/// The norm is the Frobenius norm of the [B x H] batch gradient, i.e. the L2 norm over all
/// samples and units of that step. Feed it either way:
///  - from a recurrent layer: `rnn.set_hidden_grad_hook(trace.hook());`
///  - from a network written in core ops: `trace.watch(tape, h_t, t)` for each step's hidden
///    Var (it calls tape.register_hook).
///
/// Then growth() fits the per-step growth (fit_growth()) and first_last_ratio() gives
/// ||dL/dh_1|| / ||dL/dh_T||, both in the order the direction runs, so that for the
/// reversed direction "first" is t = T-1. Why it vanishes or explodes: with
/// h_t = f(W h_{t-1} + U x_t + b), dL/dh_{t-1} = W^T diag(f'_t) dL/dh_t (+ the loss's own
/// term at t-1), so each step back multiplies the norm by at most ||W||_2 max|f'|
/// (Pascanu et al. 2013, "On the difficulty of training recurrent neural networks").
///
/// A repeated step overwrites the earlier norm, so one trace holds the last backward pass;
/// clear() it (or copy it) between passes of different lengths. Hooks refer to this object
/// by address: keep it alive and in place while they can fire (a copy is a snapshot).
/// \code
///   diag::HiddenGradientTrace<float> trace;
///   for (Index t = 0; t < T; ++t) {
///     h = tanh(matmul_nt(x[t], tape.param(u)) + matmul_nt(h, tape.param(w)));
///     trace.watch(tape, h, t);
///   }
///   loss(h).backward();
///   std::cout << trace.growth().backward_factor() << " per step back\n";
/// \endcode
template <typename T>
class HiddenGradientTrace {
 public:
  /// What recurrent layers call: (layer, direction, t, dL/dh_t as [B x H]).
  using Hook = std::function<void(Index, Index, Index, ConstMatrixMap<T>)>;

  /// A hook for RecurrentLayer::set_hidden_grad_hook() that records into this trace.
  Hook hook() {
    return [this](Index layer, Index direction, Index t, ConstMatrixMap<T> dh) {
      record(layer, direction, t, dh);
    };
  }

  /// A hook for Tape::register_hook() on the hidden state of step t.
  std::function<void(ConstMatrixMap<T>)> step_hook(Index t, Index layer = 0, Index direction = 0) {
    return [this, t, layer, direction](ConstMatrixMap<T> dh) { record(layer, direction, t, dh); };
  }

  /// Registers step_hook(t, layer, direction) on `h_t`, the hidden state of step t.
  void watch(Tape<T>& tape, Var<T> h_t, Index t, Index layer = 0, Index direction = 0) {
    tape.register_hook(h_t, step_hook(t, layer, direction));
  }

  /// Records ||dh||_F as the norm of step t of (layer, direction).
  template <typename Derived>
  void record(Index layer, Index direction, Index t, const Eigen::MatrixBase<Derived>& dh) {
    // Summed in double: a float gradient of 1e-30 per element must not square to 0.
    record_norm(layer, direction, t, std::sqrt(dh.template cast<double>().squaredNorm()));
  }

  /// Records an already computed norm.
  void record_norm(Index layer, Index direction, Index t, double norm) {
    if (t < 0 || layer < 0 || direction < 0)
      throw ArgumentError("HiddenGradientTrace: negative layer, direction or step (layer " +
                          std::to_string(layer) + ", direction " + std::to_string(direction) +
                          ", step " + std::to_string(t) + ")");
    HiddenGradientSeries& s = find_or_add(layer, direction);
    const std::size_t k = static_cast<std::size_t>(t);
    if (s.norms.size() <= k) {
      s.norms.resize(k + 1, std::numeric_limits<double>::quiet_NaN());
      s.recorded.resize(k + 1, false);
    }
    s.norms[k] = norm;
    s.recorded[k] = true;
  }

  /// Every layer-direction seen, ordered by layer then direction.
  const std::vector<HiddenGradientSeries>& series() const { return series_; }
  /// Whether (layer, direction) has been recorded.
  bool has(Index layer = 0, Index direction = 0) const { return find(layer, direction) != nullptr; }
  /// norms[t] = ||dL/dh_t|| of (layer, direction); throws ArgumentError if never recorded.
  const std::vector<double>& norms(Index layer = 0, Index direction = 0) const {
    return get(layer, direction).norms;
  }
  /// Number of steps of (layer, direction) (the largest t seen plus one).
  Index steps(Index layer = 0, Index direction = 0) const {
    return static_cast<Index>(get(layer, direction).norms.size());
  }

  /// The series of (layer, direction); throws ArgumentError if never recorded.
  const HiddenGradientSeries& at(Index layer = 0, Index direction = 0) const {
    return get(layer, direction);
  }

  /// The norms in the order the direction runs: norms() for direction 0, reversed for 1.
  std::vector<double> norms_in_run_order(Index layer = 0, Index direction = 0) const {
    std::vector<double> n = get(layer, direction).norms;
    if (direction % 2 == 1) std::reverse(n.begin(), n.end());
    return n;
  }

  /// ||dL/dh_1|| / ||dL/dh_T|| in run order (0 / 0 gives NaN). Far below 1: the earliest
  /// steps get almost none of the gradient that the last step receives (vanishing).
  double first_last_ratio(Index layer = 0, Index direction = 0) const {
    const std::vector<double> n = norms_in_run_order(layer, direction);
    if (n.empty()) return std::numeric_limits<double>::quiet_NaN();
    return n.front() / n.back();
  }

  /// fit_growth() over the run order: backward_factor() is the mean factor per step as the
  /// gradient travels from step k to k-1 (compare with tanh_step_bound()).
  GrowthFit growth(Index layer = 0, Index direction = 0) const {
    return fit_growth(norms_in_run_order(layer, direction));
  }

  /// Forgets every recorded norm.
  void clear() { series_.clear(); }

  /// The trace as CSV, one row per recorded step: layer,direction,t,grad_norm (steps
  /// never recorded are left out).
  void write_csv(std::ostream& out) const {
    out << "layer,direction,t,grad_norm\n";
    for (const HiddenGradientSeries& s : series_)
      for (std::size_t t = 0; t < s.norms.size(); ++t)
        if (s.recorded[t])
          out << s.layer << ',' << s.direction << ',' << t << ',' << detail::csv_number(s.norms[t])
              << '\n';
  }
  /// write_csv() into the file at `path` (replaced); throws ArgumentError if it cannot open.
  void write_csv(const std::string& path) const {
    std::ofstream file = detail::open_csv(path);
    write_csv(file);
  }

 private:
  const HiddenGradientSeries* find(Index layer, Index direction) const {
    for (const HiddenGradientSeries& s : series_)
      if (s.layer == layer && s.direction == direction) return &s;
    return nullptr;
  }
  const HiddenGradientSeries& get(Index layer, Index direction) const {
    const HiddenGradientSeries* s = find(layer, direction);
    if (s == nullptr)
      throw ArgumentError("HiddenGradientTrace: nothing recorded for layer " +
                          std::to_string(layer) + ", direction " + std::to_string(direction));
    return *s;
  }
  HiddenGradientSeries& find_or_add(Index layer, Index direction) {
    auto it = std::find_if(series_.begin(), series_.end(), [&](const HiddenGradientSeries& s) {
      return s.layer > layer || (s.layer == layer && s.direction >= direction);
    });
    if (it != series_.end() && it->layer == layer && it->direction == direction) return *it;
    HiddenGradientSeries s;
    s.layer = layer;
    s.direction = direction;
    return *series_.insert(it, std::move(s));
  }

  std::vector<HiddenGradientSeries> series_;
};

}  // namespace gradflow::diag
