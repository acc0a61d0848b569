// Proves that a steady-state training step allocates nothing on the heap (counters in
// tests/common/alloc_counting.hpp, which must come first; see CMakeLists.txt).

// clang-format off: the counters must be included before Eigen.
#include "../common/alloc_counting.hpp"
// clang-format on

#include <catch2/catch.hpp>
#include <gradflow/core/ops.hpp>
#include <gradflow/core/parameter.hpp>
#include <gradflow/core/tape.hpp>

#include "core_test_util.hpp"

using namespace gradflow;
using gradflow::test::uniform_matrix;

namespace {

using alloc_count::count_allocations;
using alloc_count::Counts;

void require_no_allocations(const Counts& c) {
#ifndef GRADFLOW_TEST_ASAN
  REQUIRE(c.news == 0);
#endif
  REQUIRE(c.eigen_mallocs == 0);
}

// A two-layer perceptron trained with plain SGD on a fixed batch.
template <typename T>
struct Mlp {
  Parameter<T> w1{uniform_matrix<T>(8, 16, 101, -0.5, 0.5)};
  Parameter<T> b1{Matrix<T>::Zero(1, 16)};
  Parameter<T> w2{uniform_matrix<T>(16, 4, 102, -0.5, 0.5)};
  Parameter<T> b2{Matrix<T>::Zero(1, 4)};
  Matrix<T> x = uniform_matrix<T>(32, 8, 103);
  Matrix<T> y = uniform_matrix<T>(32, 4, 104);
  Tape<T> tape;
  T loss = 0;

  void step() {
    tape.clear();
    auto h = tanh(matmul(tape.constant(x), tape.param(w1)) + tape.param(b1));
    auto out = matmul(h, tape.param(w2)) + tape.param(b2);
    auto l = mean(square(out - tape.constant(y)));
    l.backward();
    loss = l.item();
    for (Parameter<T>* p : {&w1, &b1, &w2, &b2}) {
      p->value() -= T(0.1) * p->grad();
      p->zero_grad();
    }
  }
};

}  // namespace

TEST_CASE("The allocation counters see heap allocations", "[core][alloc]") {
  const Counts c = count_allocations([] {
    Matrix<double> m(10, 10);  // Eigen's allocator
    m.setZero();
    // operator new, called directly: a new-expression whose result is unused may be elided.
    void* p = ::operator new(16);
    ::operator delete(p);
  });
  REQUIRE(c.eigen_mallocs == 1);
#ifndef GRADFLOW_TEST_ASAN
  REQUIRE(c.news >= 1);
#endif
}

TEMPLATE_TEST_CASE("A steady-state training step of an MLP makes no heap allocation",
                   "[core][alloc]", float, double) {
  Mlp<TestType> mlp;
  mlp.step();
  const TestType first_loss = mlp.loss;
  mlp.step();
  for (int i = 3; i <= 10; ++i) {
    CAPTURE(i);
    const Counts c = count_allocations([&] { mlp.step(); });
    require_no_allocations(c);
  }
  REQUIRE(mlp.loss < first_loss);  // the steps really trained
}

TEST_CASE("A steady-state step through every built-in op makes no heap allocation",
          "[core][alloc]") {
  Tape<double> tape;
  Parameter<double> w(uniform_matrix(6, 6, 105));
  const Matrix<double> xv = uniform_matrix(4, 6, 106, 0.1, 1.0);
  Generator gen(1);
  auto step = [&] {
    tape.clear();
    auto x = tape.constant(xv);
    auto p = tape.param(w);
    auto h = matmul(x, p) + matmul(x, p, false, true) - transpose(matmul(p, x, true, true)) +
             matmul(x, matmul_tn(x, x)) * 0.1;
    auto b = sigmoid(h) * tanh(h) - relu(h) / (exp(h) + 1.0);
    auto c = leaky_relu(h, 0.1) + elu(h) + gelu(h) + gelu(h, GeluApproximation::Tanh);
    auto d = softmax(h, Axis::Cols) + log_softmax(h, Axis::Rows) + softmax(h, Axis::Rows) +
             log_softmax(h, Axis::Cols);
    auto e =
        sqrt(abs(h) + 1.0) + log(square(h) + 1.0) + pow(abs(h) + 1.0, 1.5) + clamp(h, -0.5, 0.5);
    auto f = concat({slice_cols(b, 0, 3), slice_cols(c, 3, 3)}, Axis::Cols) +
             concat({slice_rows(d, 0, 2), slice_rows(e, 2, 2)}, Axis::Rows);
    auto g = reshape(transpose(f), 4, 6) + sum(f, Axis::Rows) + mean(f, Axis::Cols) +
             dropout(f, 0.3, gen) + 2.0 / (square(f) + 1.0);
    auto loss = mean(g) + sum(g) * 0.5 - 3.0;
    loss.backward();
    w.zero_grad();
  };
  step();
  step();
  for (int i = 3; i <= 5; ++i) {
    CAPTURE(i);
    const Counts c = count_allocations(step);
    require_no_allocations(c);
  }
}
