// Proves that optimizer steps and clipping allocate nothing once the optimizer exists
// (counters in tests/common/alloc_counting.hpp, which must come first).

// clang-format off: the counters must be included before Eigen.
#include "../common/alloc_counting.hpp"
// clang-format on

#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/optim/optim.hpp>
#include <limits>
#include <vector>

using namespace gradflow;

namespace {

// Runs fn() with both counters on; returns how many allocations they saw.
template <typename Fn>
long allocations_in(Fn&& fn) {
  return alloc_count::count_allocations(fn).total();
}

template <typename T>
struct Model {
  Parameter<T> w{Matrix<T>::Constant(7, 5, T(0.5))};
  Parameter<T> b{Matrix<T>::Constant(1, 5, T(-0.25))};
  std::vector<Parameter<T>*> params{&w, &b};

  void set_grads(int step) {
    w.grad().setConstant(T(0.1) * T(step + 1));
    b.grad().setConstant(T(-0.3));
  }
};

// Steps `opt` once to warm up, then counts the allocations of three more steps.
template <typename T, typename Opt>
long allocations_of_steps(Model<T>& m, Opt& opt) {
  m.set_grads(0);
  opt.step();
  return allocations_in([&] {
    for (int s = 1; s < 4; ++s) {
      m.set_grads(s);
      opt.step();
      opt.zero_grad();
    }
  });
}

}  // namespace

TEMPLATE_TEST_CASE("Optimizer steps allocate nothing", "[optim][alloc]", float, double) {
  using T = TestType;
  Model<T> m;
  SECTION("SGD with Nesterov momentum and weight decay") {
    optim::SGD<T> opt(m.params,
                      optim::SGDOptions(0.1).momentum(0.9).nesterov(true).weight_decay(0.1));
    REQUIRE(allocations_of_steps(m, opt) == 0);
  }
  SECTION("Adam with amsgrad and weight decay") {
    optim::Adam<T> opt(m.params, optim::AdamOptions(0.01).amsgrad(true).weight_decay(0.1));
    REQUIRE(allocations_of_steps(m, opt) == 0);
  }
  SECTION("AdamW") {
    optim::AdamW<T> opt(m.params, optim::AdamWOptions(0.01).maximize(true));
    REQUIRE(allocations_of_steps(m, opt) == 0);
  }
  SECTION("RMSprop centered with momentum") {
    optim::RMSprop<T> opt(m.params, optim::RMSpropOptions().centered(true).momentum(0.5));
    REQUIRE(allocations_of_steps(m, opt) == 0);
  }
  SECTION("Adagrad with lr decay") {
    optim::Adagrad<T> opt(m.params, optim::AdagradOptions().lr_decay(0.01).weight_decay(0.1));
    REQUIRE(allocations_of_steps(m, opt) == 0);
  }
}

TEST_CASE("Clipping allocates nothing", "[optim][alloc][clip]") {
  Model<double> m;
  m.set_grads(20);
  const double inf = std::numeric_limits<double>::infinity();
  REQUIRE(allocations_in([&] {
            optim::clip_grad_norm_(m.params, 1.0);
            optim::clip_grad_norm_(m.params, 0.5, inf);
            optim::clip_grad_norm_(m.params, 0.25, 3.0);
            optim::clip_grad_value_(m.params, 0.01);
          }) == 0);
}

TEST_CASE("The allocation counter sees an Eigen temporary", "[optim][alloc]") {
  // Proves the test above can fail: a heap matrix made while counting is seen.
  Model<double> m;
  const long seen = allocations_in([&] {
    Matrix<double> copy = m.w.value() * 2.0;
    m.w.grad() = copy;
  });
  REQUIRE(seen > 0);
}
