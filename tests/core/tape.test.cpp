#include <catch2/catch.hpp>
#include <gradflow/core/ops.hpp>
#include <gradflow/core/tape.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "core_test_util.hpp"

using namespace gradflow;
using Catch::Matchers::Contains;
using gradflow::test::probe;
using gradflow::test::require_gradcheck;
using gradflow::test::uniform_matrix;

namespace {
using VarList = std::vector<Var<double>>;

// A user-defined op: y = a^3 * b (a any shape, b [1x1]), recorded with Tape::apply.
// Backward: da = 3 a^2 b g, db = sum(a^3 g).
Var<double> cube_times(Var<double> a, Var<double> b, bool wrong_backward = false) {
  Tape<double>& t = a.tape();
  return t.apply(
      "cube_times", {a, b}, a.rows(), a.cols(),
      [&t, a, b](MatrixMap<double> out) { out = t.value(a).array().cube() * t.value(b)(0, 0); },
      [a, b, wrong_backward](Tape<double>& tp, Var<double> out) {
        auto g = tp.grad(out).array();
        auto av = tp.value(a).array();
        const double k = wrong_backward ? 2.0 : 3.0;
        if (tp.requires_grad(a)) tp.grad(a).array() += k * av.square() * tp.value(b)(0, 0) * g;
        if (tp.requires_grad(b)) tp.grad(b)(0, 0) += (av.cube() * g).sum();
      });
}
}  // namespace

TEST_CASE("A variable used twice receives the sum of both gradients", "[core][tape]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Constant(2, 3, 1.5));
  auto y = sum(x * x + x);  // d/dx = 2x + 1
  y.backward();
  REQUIRE(x.grad()(1, 2) == Approx(4.0));
}

TEST_CASE("A Var reports its value, shape, item and position on the tape", "[core][tape]") {
  Tape<double> tape;
  REQUIRE(tape.size() == 0);
  auto x = tape.variable(uniform_matrix(2, 3, 71));
  auto s = tape.scalar(4.0);
  auto y = sum(x) * s;
  REQUIRE(tape.size() == 4);  // variable, scalar, sum, mul
  REQUIRE(x.rows() == 2);
  REQUIRE(x.cols() == 3);
  REQUIRE(x.size() == 6);
  REQUIRE(x.index() == 0);
  REQUIRE(y.index() == 3);
  REQUIRE(y.item() == Approx(4.0 * uniform_matrix(2, 3, 71).sum()));
  REQUIRE(std::string(tape.op_name(y)) == "mul");
  REQUIRE(x.requires_grad());
  REQUIRE_FALSE(s.requires_grad());
  REQUIRE(tape.filled(2, 2, 7.0).value() == Matrix<double>::Constant(2, 2, 7.0));
  REQUIRE_THROWS_AS(x.item(), ShapeError);
  REQUIRE_THROWS_WITH(x.item(), Contains("[2x3]"));
}

TEST_CASE("A gradient that never reached a value reads as zeros", "[core][tape]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(2, 2));
  auto unused = tape.variable(Matrix<double>::Ones(1, 3));
  sum(x).backward();
  REQUIRE(unused.grad() == Matrix<double>::Zero(1, 3));
}

namespace {
// Whether variable_view accepts an argument of type Arg (the rvalue overload is deleted).
template <typename Arg, typename = void>
struct ViewAccepts : std::false_type {};
template <typename Arg>
struct ViewAccepts<
    Arg, std::void_t<decltype(std::declval<Tape<double>&>().variable_view(std::declval<Arg>()))>>
    : std::true_type {};
}  // namespace

TEST_CASE("variable_view records the matrix itself and differentiates like variable",
          "[core][tape]") {
  const Matrix<double> m = uniform_matrix(3, 4, 11);
  Tape<double> tape;
  auto viewed = tape.variable_view(m);
  auto copied = tape.variable(m);
  CHECK(tape.value(viewed).data() == m.data());  // no copy
  CHECK(tape.value(copied).data() != m.data());
  CHECK(std::string(tape.op_name(viewed)) == "variable_view");
  sum(viewed * viewed + copied).backward();
  CHECK(viewed.grad().isApprox(2.0 * m));
  CHECK(copied.grad() == Matrix<double>::Ones(3, 4));
  CHECK(m == uniform_matrix(3, 4, 11));  // read, never written
  // A temporary would dangle: only lvalues are viewed.
  STATIC_REQUIRE(ViewAccepts<const Matrix<double>&>::value);
  STATIC_REQUIRE_FALSE(ViewAccepts<Matrix<double>>::value);
  const Matrix<double> empty(0, 3);
  REQUIRE_THROWS_WITH(tape.variable_view(empty), Contains("variable_view") && Contains("[0x3]"));
}

#ifndef NDEBUG
TEST_CASE("Debug builds catch a viewed matrix written before backward", "[core][tape][errors]") {
  Matrix<double> m = uniform_matrix(2, 3, 5);
  Tape<double> tape;
  auto x = tape.variable_view(m, "batch");
  auto y = sum(x * x);
  m(1, 2) += 1.0;  // the tape would differentiate at a value the forward pass never saw
  REQUIRE_THROWS_AS(y.backward(), TapeError);
  REQUIRE_THROWS_WITH(y.backward(), Contains("variable_view") && Contains("'batch'"));
  tape.clear();  // a new step views the matrix as it is now
  auto x2 = tape.variable_view(m, "batch");
  sum(x2 * x2).backward();
  CHECK(x2.grad().isApprox(2.0 * m));
}
#endif

TEST_CASE("Zero-size inputs are rejected with a ShapeError naming the shape",
          "[core][tape][errors]") {
  Tape<double> tape;
  REQUIRE_THROWS_AS(tape.variable(Matrix<double>(0, 3)), ShapeError);
  REQUIRE_THROWS_WITH(tape.variable(Matrix<double>(0, 3)),
                      Contains("variable") && Contains("[0x3]"));
  REQUIRE_THROWS_WITH(tape.constant(Matrix<double>(2, 0)),
                      Contains("constant") && Contains("[2x0]"));
  Parameter<double> empty{Matrix<double>(0, 0)};
  REQUIRE_THROWS_AS(tape.param(empty), ShapeError);
  auto x = tape.variable(Matrix<double>::Ones(2, 2));
  REQUIRE_THROWS_WITH(
      tape.apply(
          "my_op", {x}, 0, 2, [](MatrixMap<double>) {}, [](Tape<double>&, Var<double>) {}),
      Contains("my_op") && Contains("[0x2]"));
}

TEST_CASE("Using a Var after its tape was cleared throws TapeError", "[core][tape][errors]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(2, 2));
  tape.clear();
  REQUIRE(tape.size() == 0);
  REQUIRE_THROWS_AS(x.value(), TapeError);
  REQUIRE_THROWS_WITH(sum(x), Contains("stale"));
  // Even when a new node now sits at the same position.
  auto y = tape.variable(Matrix<double>::Ones(2, 2));
  REQUIRE(y.index() == x.index());
  REQUIRE_THROWS_AS(x + y, TapeError);
  REQUIRE_THROWS_AS(y + x, TapeError);
}

TEST_CASE("A Var from another tape or an empty Var is rejected", "[core][tape][errors]") {
  Tape<double> a, b;
  auto x = a.variable(Matrix<double>::Ones(2, 2));
  auto y = b.variable(Matrix<double>::Ones(2, 2));
  REQUIRE_THROWS_AS(x + y, TapeError);
  REQUIRE_THROWS_WITH(x * y, Contains("mul") && Contains("another tape"));
  REQUIRE_THROWS_WITH(matmul(x, y), Contains("matmul") && Contains("another tape"));
  REQUIRE_THROWS_AS(concat({x, y}, Axis::Rows), TapeError);
  REQUIRE_THROWS_AS(a.backward(sum(y)), TapeError);
  Var<double> empty;
  REQUIRE_FALSE(empty.valid());
  REQUIRE_THROWS_AS(empty.rows(), TapeError);
  REQUIRE_THROWS_AS(a.value(empty), TapeError);
}

TEST_CASE("backward twice on one tape throws TapeError", "[core][tape][errors]") {
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Ones(2, 2));
  auto y = sum(square(x));
  y.backward();
  REQUIRE_THROWS_AS(y.backward(), TapeError);
  REQUIRE_THROWS_WITH(y.backward(), Contains("already"));
  // The first gradient is untouched by the refused second call.
  REQUIRE(x.grad() == Matrix<double>::Constant(2, 2, 2.0));
}

TEST_CASE("backward on a non-scalar needs a seed of the same shape", "[core][tape][errors]") {
  Tape<double> tape;
  auto x = tape.variable(uniform_matrix(2, 3, 72));
  auto y = square(x);
  REQUIRE_THROWS_AS(y.backward(), TapeError);
  REQUIRE_THROWS_WITH(y.backward(), Contains("[2x3]") && Contains("seed"));
  REQUIRE_THROWS_AS(tape.backward(y, Matrix<double>::Ones(3, 2)), ShapeError);
  REQUIRE_THROWS_WITH(tape.backward(y, Matrix<double>::Ones(3, 2)),
                      Contains("[3x2]") && Contains("[2x3]"));
}

TEST_CASE("backward with a seed propagates that upstream gradient", "[core][tape]") {
  Tape<double> tape;
  const Matrix<double> xv = uniform_matrix(2, 3, 73), seed = uniform_matrix(2, 3, 74);
  auto x = tape.variable(xv);
  tape.backward(square(x), seed);
  REQUIRE(x.grad().isApprox(2.0 * xv.cwiseProduct(seed)));
}

TEST_CASE("backward on a value that needs no gradient throws TapeError", "[core][tape][errors]") {
  Tape<double> tape;
  auto c = tape.constant(Matrix<double>::Ones(2, 2));
  REQUIRE_THROWS_WITH(sum(c).backward(), Contains("does not require a gradient"));
}

TEST_CASE("Tape storage is reused: capacity stays fixed across steps of one shape",
          "[core][tape][memory]") {
  Tape<double> tape;
  Parameter<double> w(uniform_matrix(64, 64, 75));
  auto step = [&] {
    tape.clear();
    auto x = tape.constant(uniform_matrix(32, 64, 76));
    auto h = tanh(matmul(x, tape.param(w)));
    for (int i = 0; i < 20; ++i) h = tanh(matmul(h, tape.param(w)));
    mean(square(h)).backward();
  };
  step();
  step();
  const std::size_t capacity = tape.capacity_bytes();
  const std::size_t used = tape.used_bytes();
  REQUIRE(capacity > 20 * 32 * 64 * sizeof(double));  // more than one block was needed
  REQUIRE(used <= capacity);
  for (int i = 0; i < 3; ++i) {
    step();
    REQUIRE(tape.capacity_bytes() == capacity);
    REQUIRE(tape.used_bytes() == used);
  }
  REQUIRE(tape.size() == 1 + 1 + 21 * 2 + 2);
}

TEST_CASE("A parameter recorded twice in one step is one node and gets both gradients",
          "[core][tape][parameter]") {
  Tape<double> tape;
  Parameter<double> p(Matrix<double>::Constant(1, 2, 3.0));
  auto a = tape.param(p);
  auto b = tape.param(p);
  REQUIRE(a.index() == b.index());
  sum(a * b).backward();  // d/dp p^2 = 2p
  REQUIRE(p.grad().isApprox(Matrix<double>::Constant(1, 2, 6.0)));
}

TEST_CASE("A user op recorded with Tape::apply passes gradcheck", "[core][tape][custom]") {
  require_gradcheck([](Tape<double>&, const VarList& v) { return probe(cube_times(v[0], v[1])); },
                    {uniform_matrix(3, 2, 77), uniform_matrix(1, 1, 78, 0.5, 1.5)});
  Tape<double> tape;
  auto y = cube_times(tape.constant(Matrix<double>::Constant(1, 1, 2.0)),
                      tape.constant(Matrix<double>::Constant(1, 1, 3.0)));
  REQUIRE(y.item() == Approx(24.0));
  REQUIRE(std::string(tape.op_name(y)) == "cube_times");
}

TEST_CASE("gradcheck catches a user op whose backward rule is wrong", "[core][tape][custom]") {
  const diag::GradCheckReport report = diag::gradcheck<double>(
      [](Tape<double>&, const VarList& v) { return probe(cube_times(v[0], v[1], true)); },
      {uniform_matrix(3, 2, 77), uniform_matrix(1, 1, 78, 0.5, 1.5)});
  INFO(report.summary());
  REQUIRE_FALSE(report.passed);
  REQUIRE(report.worst_input == 0);
  REQUIRE(report.max_rel_error > 0.1);
}

TEST_CASE("A user op whose state needs a destructor is destroyed on clear",
          "[core][tape][custom]") {
  auto counter = std::make_shared<int>(0);
  {
    Tape<double> tape;
    auto x = tape.variable(Matrix<double>::Ones(1, 1));
    tape.apply(
        "holds_shared", {x}, 1, 1, [](MatrixMap<double> out) { out.setZero(); },
        [counter](Tape<double>&, Var<double>) { ++*counter; });
    REQUIRE(counter.use_count() == 2);
    tape.clear();
    REQUIRE(counter.use_count() == 1);
    auto y = tape.variable(Matrix<double>::Ones(1, 1));
    tape.apply(
        "holds_shared", {y}, 1, 1, [](MatrixMap<double> out) { out.setZero(); },
        [counter](Tape<double>&, Var<double>) { ++*counter; });
    REQUIRE(counter.use_count() == 2);
  }
  REQUIRE(counter.use_count() == 1);  // the tape's destructor released it
}

TEST_CASE("register_hook delivers dL/dv once the gradient of v is complete",
          "[core][tape][hooks]") {
  Tape<double> tape;
  const Matrix<double> xv = uniform_matrix(2, 2, 79);
  auto x = tape.variable(xv);
  auto h = tanh(x);
  Matrix<double> seen;
  int calls = 0;
  tape.register_hook(h, [&](ConstMatrixMap<double> g) {
    seen = g;
    ++calls;
  });
  // h feeds two ops, so its gradient is only complete after both backward rules ran.
  auto loss = sum(square(h)) + sum(3.0 * h);
  loss.backward();
  REQUIRE(calls == 1);
  const Matrix<double> expected = 2.0 * xv.array().tanh() + 3.0;
  REQUIRE(seen.isApprox(expected));
  // Hooks are forgotten by clear().
  tape.clear();
  auto y = tape.variable(xv);
  sum(tanh(y)).backward();
  REQUIRE(calls == 1);
}

TEST_CASE("fresh_grad hands out a new gradient once, for writing over", "[core][tape]") {
  // A rule that writes its input's gradient over (not adding) when it is the first to touch
  // it, and adds otherwise: used twice, the second use must see the first one's values.
  Tape<double> tape;
  auto x = tape.variable(Matrix<double>::Constant(2, 3, 1.5));
  auto doubled = [&tape](Var<double> a) {
    return tape.apply(
        "doubled", {a}, a.rows(), a.cols(),
        [&tape, a](MatrixMap<double> out) { out = 2.0 * tape.value(a); },
        [a](Tape<double>& tp, Var<double> out) {
          if (double* g = tp.fresh_grad(a)) {
#ifndef NDEBUG
            CHECK(MatrixMap<double>(g, a.rows(), a.cols()).array().isNaN().all());
#endif
            MatrixMap<double>(g, a.rows(), a.cols()) = 2.0 * tp.grad(out);
            return;
          }
          tp.grad(a) += 2.0 * tp.grad(out);
        });
  };
  auto y = sum(doubled(x) + doubled(x));
  y.backward();
  CHECK(tape.grad(x).isApprox(Matrix<double>::Constant(2, 3, 4.0)));
  CHECK(tape.fresh_grad(x) == nullptr);  // it has one now
}
