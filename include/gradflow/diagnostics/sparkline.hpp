#pragma once
/// \file
/// Compact text charts: sparklines and bars, Unicode block characters or plain ASCII.

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace gradflow::diag {

/// How sparkline() and bar() draw.
struct ChartOptions {
  /// Plain ASCII ("_.-:=+*#" for the eight levels, '#' for bars) instead of Unicode blocks
  /// ("▁▂▃▄▅▆▇█", "█" with eighth blocks), for terminals and logs without UTF-8.
  bool ascii = false;
  /// Log scale (the default: gradient norms span orders of magnitude); values <= 0 have no
  /// place on it and draw as a blank.
  bool log_scale = true;
  /// Range mapped onto the chart; NaN (default) takes the smallest and largest drawable
  /// value of the data. Values outside are clamped.
  double lo = std::numeric_limits<double>::quiet_NaN();
  double hi = std::numeric_limits<double>::quiet_NaN();

  ChartOptions& set_ascii(bool v) { return ascii = v, *this; }
  ChartOptions& set_log_scale(bool v) { return log_scale = v, *this; }
  ChartOptions& set_range(double low, double high) {
    lo = low;
    hi = high;
    return *this;
  }
};

namespace detail {

inline bool drawable(double v, bool log_scale) {
  return std::isfinite(v) && (!log_scale || v > 0.0);
}

inline double chart_coord(double v, bool log_scale) { return log_scale ? std::log10(v) : v; }

// [lo, hi] of the chart: the options' range, or the data's drawable extent.
inline void chart_range(const std::vector<double>& values, const ChartOptions& o, double& lo,
                        double& hi) {
  lo = std::numeric_limits<double>::infinity();
  hi = -std::numeric_limits<double>::infinity();
  for (double v : values)
    if (drawable(v, o.log_scale)) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  if (!std::isnan(o.lo)) lo = o.lo;
  if (!std::isnan(o.hi)) hi = o.hi;
}

// Position of v in [lo, hi] as a fraction in [0, 1]; 0.5 when the range is a point.
inline double chart_position(double v, double lo, double hi, bool log_scale) {
  const double a = chart_coord(lo, log_scale), b = chart_coord(hi, log_scale);
  if (!(b > a)) return 0.5;
  return std::clamp((chart_coord(v, log_scale) - a) / (b - a), 0.0, 1.0);
}

}  // namespace detail

/// One character per value, eight levels from lowest to highest (log scale by default):
/// "▁▂▃▄▅▆▇█", or "_.-:=+*#" with ascii. Special values: NaN '?', +-Inf '!', and on a log
/// scale 0 or negative ' '. A series whose drawable values are all equal draws at the
/// middle level ('▄' / ':').
/// \code
///   diag::sparkline({1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7});   // "▁▂▃▄▅▆▇█"
///   diag::sparkline(trace.norms(), diag::ChartOptions().set_ascii(true));
/// \endcode
/// Maths: level = round(7 (log v - log lo) / (log hi - log lo)).
inline std::string sparkline(const std::vector<double>& values, const ChartOptions& options = {}) {
  static const char* const unicode[8] = {"\u2581", "\u2582", "\u2583", "\u2584",
                                         "\u2585", "\u2586", "\u2587", "\u2588"};
  static const char ascii[] = "_.-:=+*#";
  double lo = 0.0, hi = 0.0;
  detail::chart_range(values, options, lo, hi);
  std::string out;
  for (double v : values) {
    if (std::isnan(v)) {
      out += '?';
    } else if (std::isinf(v)) {
      out += '!';
    } else if (!detail::drawable(v, options.log_scale)) {
      out += ' ';
    } else {
      const double pos = detail::chart_position(v, lo, hi, options.log_scale);
      const int level = std::clamp(static_cast<int>(std::lround(pos * 7.0)), 0, 7);
      if (options.ascii)
        out += ascii[level];
      else
        out += unicode[level];
    }
  }
  return out;
}

/// A horizontal bar for `value` on [lo, hi], at most `width` cells long (log scale by
/// default; options.lo / options.hi are ignored in favour of the arguments).
///
/// Unicode bars have eighth-cell resolution ("███▍"); ASCII bars whole cells ("###").
/// A drawable value always gets at least the smallest mark, so the minimum of a range is
/// still visible; NaN draws "?", Inf "!", and a non-positive value on a log scale nothing.
/// \code
///   diag::bar(1e-2, 1e-4, 1.0, 10);   // "█████" (half-way on a log scale)
/// \endcode
inline std::string bar(double value, double lo, double hi, int width,
                       const ChartOptions& options = {}) {
  static const char* const eighths[8] = {"",       "\u258F", "\u258E", "\u258D",
                                         "\u258C", "\u258B", "\u258A", "\u2589"};
  if (std::isnan(value)) return "?";
  if (std::isinf(value)) return "!";
  if (!detail::drawable(value, options.log_scale) || width <= 0) return "";
  const double pos = detail::chart_position(value, lo, hi, options.log_scale);
  std::string out;
  if (options.ascii) {
    const int cells = std::max(1, static_cast<int>(std::lround(pos * width)));
    return std::string(static_cast<std::size_t>(cells), '#');
  }
  const int units = std::max(1, static_cast<int>(std::lround(pos * width * 8)));
  for (int i = 0; i < units / 8; ++i) out += "\u2588";
  out += eighths[units % 8];
  return out;
}

}  // namespace gradflow::diag
