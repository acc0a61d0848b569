#pragma once
// Reader for the PyTorch reference cases (format: ../shared/reference/FORMAT.md) and the
// comparison every checker reports through.

#include <algorithm>
#include <cmath>
#include <fstream>
#include <gradflow/config.hpp>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace gradflow::reference {

/// One tensor of a case: its shape and its values in row-major order.
struct Tensor {
  std::vector<Index> shape;
  std::vector<double> values;

  Index dim(std::size_t i) const { return i < shape.size() ? shape[i] : 1; }

  /// A 1-D [n] tensor as a [1 x n] row, a 2-D [r, c] tensor as [r x c].
  Matrix<double> matrix() const {
    if (shape.size() > 2)
      throw std::runtime_error("tensor of rank " + std::to_string(shape.size()) +
                               " read as a matrix");
    const Index rows = shape.size() == 2 ? shape[0] : 1;
    const Index cols = shape.empty() ? 1 : shape.back();
    return rows_from(0, rows, cols);
  }

  /// For a 3-D [a, b, c] tensor, the [b x c] matrix at index i of the first dimension.
  Matrix<double> slice(Index i) const {
    if (shape.size() != 3) throw std::runtime_error("slice() needs a rank-3 tensor");
    return rows_from(i * shape[1] * shape[2], shape[1], shape[2]);
  }

 private:
  Matrix<double> rows_from(Index offset, Index rows, Index cols) const {
    Matrix<double> m(rows, cols);
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < cols; ++c)
        m(r, c) = values[static_cast<std::size_t>(offset + r * cols + c)];
    return m;
  }
};

/// One parsed .case file.
struct Case {
  std::string name, kind;
  std::map<std::string, std::vector<std::string>> params;
  std::map<std::string, Tensor> tensors;

  bool has(const std::string& tensor_name) const { return tensors.count(tensor_name) != 0; }
  const Tensor& tensor(const std::string& tensor_name) const {
    auto it = tensors.find(tensor_name);
    if (it == tensors.end()) throw std::runtime_error("missing tensor '" + tensor_name + "'");
    return it->second;
  }
  bool has_param(const std::string& key) const { return params.count(key) != 0; }
  /// Word i of a param line; `fallback` when the param is absent.
  std::string param(const std::string& key, const std::string& fallback, std::size_t i = 0) const {
    auto it = params.find(key);
    if (it == params.end() || it->second.size() <= i) return fallback;
    return it->second[i];
  }
  double param_double(const std::string& key, double fallback, std::size_t i = 0) const {
    auto it = params.find(key);
    if (it == params.end() || it->second.size() <= i) return fallback;
    const std::string& w = it->second[i];
    if (w == "inf") return INFINITY;
    if (w == "True" || w == "true") return 1.0;
    if (w == "False" || w == "false") return 0.0;
    return std::stod(w);
  }
  long param_int(const std::string& key, long fallback) const {
    return static_cast<long>(param_double(key, static_cast<double>(fallback)));
  }
};

/// Parses one case file; throws with the line number on malformed input.
inline Case read_case(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Case c;
  std::string line;
  int line_no = 0;
  bool ended = false;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error(path + ":" + std::to_string(line_no) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++line_no;
    if (line.empty() || line[0] == '#') continue;
    std::istringstream words(line);
    std::string key;
    words >> key;
    if (key == "case") {
      words >> c.name;
    } else if (key == "kind") {
      words >> c.kind;
    } else if (key == "param") {
      std::string name, w;
      words >> name;
      std::vector<std::string> values;
      while (words >> w) values.push_back(w);
      c.params[name] = values;
    } else if (key == "tensor") {
      std::string name;
      std::size_t rank = 0;
      words >> name >> rank;
      Tensor t;
      std::size_t count = 1;
      for (std::size_t i = 0; i < rank; ++i) {
        Index d = 0;
        if (!(words >> d)) fail("tensor " + name + ": missing dimension");
        t.shape.push_back(d);
        count *= static_cast<std::size_t>(d);
      }
      t.values.reserve(count);
      while (t.values.size() < count) {
        if (!std::getline(in, line)) fail("tensor " + name + ": file ends inside its values");
        ++line_no;
        std::istringstream nums(line);
        std::string v;
        while (nums >> v) t.values.push_back(std::stod(v));
      }
      if (t.values.size() != count) fail("tensor " + name + ": too many values");
      c.tensors[name] = std::move(t);
    } else if (key == "end") {
      ended = true;
      break;
    } else {
      fail("unknown line '" + key + "'");
    }
  }
  if (c.name.empty() || c.kind.empty()) fail("no 'case' or 'kind' line");
  if (!ended) fail("no 'end' line");
  return c;
}

/// Collects the worst relative error of a case's results and the first failure.
///
/// Relative error of a tensor: max |actual - expected| / max(max |expected|, 1e-12),
/// i.e. measured against the tensor's scale, so tiny entries near zero do not dominate.
class Comparison {
 public:
  explicit Comparison(double tolerance = 1e-8) : tolerance_(tolerance) {}

  /// Compares `actual` with the expected tensor, which must hold the same number of
  /// values (row-major order of the expected tensor = row-major order of `actual`).
  void expect(const std::string& what, const Matrix<double>& actual, const Tensor& expected) {
    if (static_cast<std::size_t>(actual.size()) != expected.values.size()) {
      fail(what + ": got " + std::to_string(actual.size()) + " values, expected " +
           std::to_string(expected.values.size()));
      return;
    }
    double scale = 1e-12, diff = 0.0;
    const Index cols = actual.cols();
    for (Index i = 0; i < actual.size(); ++i) {
      const double e = expected.values[static_cast<std::size_t>(i)];
      const double a = actual(i / cols, i % cols);
      scale = std::max(scale, std::abs(e));
      diff = std::isfinite(a) ? std::max(diff, std::abs(a - e)) : INFINITY;
    }
    const double rel = diff / scale;
    ++compared_;
    if (rel > max_rel_ || !std::isfinite(rel)) max_rel_ = rel;
    if (!(rel <= tolerance_)) {
      std::ostringstream s;
      s << what << ": relative error " << rel << " above " << tolerance_;
      fail(s.str());
    }
  }

  /// Records a failure that is not a numeric mismatch.
  void fail(const std::string& why) {
    if (failure_.empty()) failure_ = why;
  }

  bool passed() const { return failure_.empty() && compared_ > 0; }
  const std::string& failure() const { return failure_; }
  double max_rel_error() const { return max_rel_; }
  int compared() const { return compared_; }

 private:
  double tolerance_;
  double max_rel_ = 0.0;
  int compared_ = 0;
  std::string failure_;
};

/// A checker runs gradflow on a case's inputs and compares with its expected tensors.
using Checker = void (*)(const Case&, Comparison&);
using Registry = std::map<std::string, Checker>;

/// Kinds mlp, batchnorm1d and loss_* (nn_cases.cpp).
void register_nn_checkers(Registry& registry);
/// Kinds clip_grad_norm, clip_grad_value and optim_* (optim_cases.cpp).
void register_optim_checkers(Registry& registry);
/// Kinds of the recurrent issue: rnn_tanh, rnn_relu, lstm, gru.
void register_recurrent_checkers(Registry& registry);  // recurrent_cases.cpp

}  // namespace gradflow::reference
