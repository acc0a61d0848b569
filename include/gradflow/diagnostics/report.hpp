#pragma once
/// \file
/// Readable terminal reports: per-layer gradient tables with bars, history and
/// hidden-gradient sparklines, activation tables, each ending with a verdict.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <ostream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gradflow/diagnostics/activation_stats.hpp"
#include "gradflow/diagnostics/gradient_monitor.hpp"
#include "gradflow/diagnostics/hidden_trace.hpp"
#include "gradflow/diagnostics/sparkline.hpp"
#include "gradflow/diagnostics/verdict.hpp"

namespace gradflow::diag {

/// How the print_*() / format_*() reports look.
struct ReportOptions {
  bool ascii = false;       ///< plain-ASCII charts (see ChartOptions::ascii)
  int bar_width = 24;       ///< cells of the longest bar
  bool parameters = false;  ///< print_report(): a row per parameter under each layer
  VerdictOptions verdict;   ///< thresholds of the verdict line

  ReportOptions& set_ascii(bool v) { return ascii = v, *this; }
  ReportOptions& set_bar_width(int v) { return bar_width = v, *this; }
  ReportOptions& set_parameters(bool v) { return parameters = v, *this; }
  ReportOptions& set_verdict(const VerdictOptions& v) { return verdict = v, *this; }
};

namespace detail {

/// A number in the reports: 3 significant digits in scientific form, "nan", "inf".
inline std::string sci(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

/// Display width of UTF-8 text (code points; the block characters are one cell each).
inline std::size_t display_width(const std::string& s) {
  std::size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0u) != 0x80u) ++n;
  return n;
}

/// Left-aligned columns two spaces apart, a dashed rule under the header; the last column
/// is not padded.
class TextTable {
 public:
  explicit TextTable(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }
  void print(std::ostream& out, const std::string& indent = "") const {
    std::vector<std::size_t> w;
    for (const auto& r : rows_)
      for (std::size_t i = 0; i < r.size(); ++i) {
        if (w.size() <= i) w.push_back(0);
        w[i] = std::max(w[i], display_width(r[i]));
      }
    for (std::size_t k = 0; k < rows_.size(); ++k) {
      line(out, indent, rows_[k], w);
      if (k == 0) {
        std::size_t total = 0;
        for (std::size_t i = 0; i < w.size(); ++i) total += w[i] + (i + 1 < w.size() ? 2 : 0);
        out << indent << std::string(total, '-') << '\n';
      }
    }
  }

 private:
  static void line(std::ostream& out, const std::string& indent, const std::vector<std::string>& r,
                   const std::vector<std::size_t>& w) {
    std::string s = indent;
    for (std::size_t i = 0; i < r.size(); ++i) {
      s += r[i];
      if (i + 1 < r.size()) s += std::string(w[i] - display_width(r[i]) + 2, ' ');
    }
    while (!s.empty() && s.back() == ' ') s.pop_back();
    out << s << '\n';
  }
  std::vector<std::vector<std::string>> rows_;
};

inline std::string layer_label(const std::string& layer) {
  return layer.empty() ? "(root)" : layer;
}

inline ChartOptions chart_options(const ReportOptions& o) {
  return ChartOptions().set_ascii(o.ascii);
}

inline void print_verdict(std::ostream& out, const Verdict& v) {
  out << "verdict: " << to_string(v.health) << " (" << v.reason << ")\n";
}

}  // namespace detail

/// Prints one step's per-layer gradient table: layer, type, parameter count, ||grad||,
/// max|grad|, ||grad||/||W|| and a log-scale bar of ||grad||, then the verdict.
/// \code
///   diag::print_report(std::cout, monitor.record(step));
/// \endcode
/// Output (shape):
/// \code
///   gradient norms at step 3 (bars: log scale, 1.20e-06 .. 3.40e-01)
///   layer  type   params  ||grad||  max|grad|  ||grad||/||W||  bar
///   -------------------------------------------------------------------------
///   0      Dense  40      1.20e-06  3.10e-07   2.40e-06        ▏
///   2      Dense  44      3.40e-01  1.90e-01   1.10e-01        ████████████████████████
///   verdict: vanishing (||g|| at layer '0' / at layer '2' = 3.5e-06 < 0.001)
/// \endcode
inline void print_report(std::ostream& out, const GradientSnapshot& s,
                         const ReportOptions& options = {}) {
  std::vector<double> norms;
  for (const LayerGradStats& l : s.layers) norms.push_back(l.grad_norm);
  if (options.parameters)
    for (const ParameterGradStats& p : s.parameters) norms.push_back(p.grad_norm);
  const ChartOptions chart = detail::chart_options(options);
  double lo = 0.0, hi = 0.0;
  detail::chart_range(norms, chart, lo, hi);
  // Extend the bottom of the scale a little so the smallest norm still shows a short bar.
  if (std::isfinite(lo) && std::isfinite(hi)) lo = hi > lo ? lo / std::pow(hi / lo, 0.05) : lo / 10;

  out << "gradient norms at step " << s.step;
  if (std::isfinite(lo) && std::isfinite(hi))
    out << " (bars: log scale, " << detail::sci(lo) << " .. " << detail::sci(hi) << ")";
  out << '\n';
  detail::TextTable table(
      {"layer", "type", "params", "||grad||", "max|grad|", "||grad||/||W||", "bar"});
  for (const LayerGradStats& l : s.layers) {
    table.add({detail::layer_label(l.layer), l.type_name, std::to_string(l.size),
               detail::sci(l.grad_norm), detail::sci(l.grad_max_abs), detail::sci(l.ratio),
               bar(l.grad_norm, lo, hi, options.bar_width, chart)});
    if (!options.parameters) continue;
    for (const ParameterGradStats& p : s.parameters)
      if (p.layer == l.layer)
        table.add({"  " + p.name, "", std::to_string(p.size), detail::sci(p.grad_norm),
                   detail::sci(p.grad_max_abs), detail::sci(p.ratio),
                   bar(p.grad_norm, lo, hi, options.bar_width, chart)});
  }
  table.print(out);
  detail::print_verdict(out, verdict(s, options.verdict));
}

/// print_report() into a string.
inline std::string format_report(const GradientSnapshot& s, const ReportOptions& options = {}) {
  std::ostringstream out;
  print_report(out, s, options);
  return out.str();
}

/// Prints each layer's gradient norm over the recorded steps as a log-scale sparkline,
/// with its first and last value, then the verdict of the last step.
/// \code
///   diag::print_history(std::cout, monitor.history());
/// \endcode
inline void print_history(std::ostream& out, const std::vector<GradientSnapshot>& history,
                          const ReportOptions& options = {}) {
  if (history.empty()) {
    out << "gradient history: nothing recorded\n";
    return;
  }
  std::vector<std::string> layers;
  for (const GradientSnapshot& s : history)
    for (const LayerGradStats& l : s.layers)
      if (std::find(layers.begin(), layers.end(), l.layer) == layers.end())
        layers.push_back(l.layer);
  out << "gradient norm per layer over steps " << history.front().step << ".."
      << history.back().step << " (sparklines: log scale, one range for all layers)\n";
  std::vector<std::vector<double>> series;
  std::vector<double> all;
  for (const std::string& name : layers) {
    std::vector<double> v;
    for (const GradientSnapshot& s : history) {
      const LayerGradStats* l = s.layer(name);
      v.push_back(l != nullptr ? l->grad_norm : std::numeric_limits<double>::quiet_NaN());
    }
    all.insert(all.end(), v.begin(), v.end());
    series.push_back(std::move(v));
  }
  ChartOptions chart = detail::chart_options(options);
  double lo = 0.0, hi = 0.0;
  detail::chart_range(all, chart, lo, hi);
  chart.set_range(lo, hi);
  detail::TextTable table({"layer", "first", "last", "history"});
  for (std::size_t i = 0; i < layers.size(); ++i)
    table.add({detail::layer_label(layers[i]), detail::sci(series[i].front()),
               detail::sci(series[i].back()), sparkline(series[i], chart)});
  table.print(out);
  detail::print_verdict(out, verdict(history.back(), options.verdict));
}

/// Prints every layer-direction of a hidden-gradient trace: a sparkline of ||dL/dh_t||
/// over t (left = t 0), the first and last norm, their ratio in run order, the fitted
/// per-step backward factor with its R^2, and the verdict.
/// \code
///   diag::print_trace(std::cout, trace);
/// \endcode
/// Output (shape):
/// \code
///   ||dL/dh_t|| over time (sparklines: log scale, t = 0 on the left)
///   layer  dir  steps  ||dh_1||  ||dh_T||  ratio     factor/step back  R^2   verdict    over t
///   ---------------------------------------------------------------------------------------
///   0      0    30     1.1e-09   5.0e-01   2.2e-09   0.50              1.00  vanishing  ▁▂▃▄▅▆▇█
/// \endcode
template <typename T>
void print_trace(std::ostream& out, const HiddenGradientTrace<T>& trace,
                 const ReportOptions& options = {}) {
  if (trace.series().empty()) {
    out << "hidden-gradient trace: nothing recorded\n";
    return;
  }
  out << "||dL/dh_t|| over time (sparklines: log scale, t = 0 on the left; ratio and factor "
         "in run order)\n";
  detail::TextTable table({"layer", "dir", "steps", "||dh_1||", "||dh_T||", "ratio",
                           "factor/step back", "R^2", "verdict", "over t"});
  for (const HiddenGradientSeries& s : trace.series()) {
    const std::vector<double> run = trace.norms_in_run_order(s.layer, s.direction);
    const GrowthFit fit = trace.growth(s.layer, s.direction);
    const Verdict v = verdict(trace, options.verdict, s.layer, s.direction);
    char factor[32] = "n/a", r2[32] = "n/a";
    if (fit.valid()) {
      std::snprintf(factor, sizeof factor, "%.3g", fit.backward_factor());
      std::snprintf(r2, sizeof r2, "%.2f", fit.r_squared);
    }
    table.add({std::to_string(s.layer), std::to_string(s.direction), std::to_string(s.norms.size()),
               detail::sci(run.front()), detail::sci(run.back()),
               detail::sci(trace.first_last_ratio(s.layer, s.direction)), factor, r2,
               to_string(v.health), sparkline(s.norms, detail::chart_options(options))});
  }
  table.print(out);
}

/// print_trace() into a string.
template <typename T>
std::string format_trace(const HiddenGradientTrace<T>& trace, const ReportOptions& options = {}) {
  std::ostringstream out;
  print_trace(out, trace, options);
  return out.str();
}

/// Prints named activation statistics, one row per layer: kind, mean, std, saturated and
/// dead fractions (percent) with a bar of the saturated share (linear, 0..100%).
/// \code
///   diag::print_activations(
///       std::cout, {{"h1", diag::activation_stats(h1, ActivationKind::Tanh)},
///                   {"h2", diag::activation_stats(h2, ActivationKind::ReLU)}});
/// \endcode
inline void print_activations(std::ostream& out,
                              const std::vector<std::pair<std::string, ActivationStats>>& stats,
                              const ReportOptions& options = {}) {
  detail::TextTable table({"layer", "kind", "mean", "std", "saturated", "dead", "saturation"});
  ChartOptions chart = detail::chart_options(options);
  chart.set_log_scale(false);
  for (const auto& [name, s] : stats) {
    char sat[32], dead[32], mean[32], sd[32];
    std::snprintf(sat, sizeof sat, "%.1f%%", 100.0 * s.saturated_fraction);
    std::snprintf(dead, sizeof dead, "%.1f%%", 100.0 * s.dead_fraction);
    std::snprintf(mean, sizeof mean, "%+.3f", s.mean);
    std::snprintf(sd, sizeof sd, "%.3f", s.stddev);
    table.add({name, to_string(s.kind), mean, sd, sat, dead,
               s.saturated_fraction > 0.0
                   ? bar(s.saturated_fraction, 0.0, 1.0, options.bar_width, chart)
                   : ""});
  }
  table.print(out);
}

}  // namespace gradflow::diag
