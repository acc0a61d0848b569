#include <catch2/catch.hpp>
#include <cmath>
#include <gradflow/optim/schedule.hpp>
#include <gradflow/optim/sgd.hpp>
#include <memory>

using namespace gradflow;
using namespace gradflow::optim;

TEST_CASE("Closed-form schedules give PyTorch's values", "[optim][schedule]") {
  REQUIRE(StepDecay(3, 0.5).lr(0, 1.0) == Approx(1.0));
  REQUIRE(StepDecay(3, 0.5).lr(2, 1.0) == Approx(1.0));
  REQUIRE(StepDecay(3, 0.5).lr(3, 1.0) == Approx(0.5));
  REQUIRE(StepDecay(3, 0.5).lr(7, 1.0) == Approx(0.25));
  REQUIRE(ExponentialDecay(0.9).lr(2, 2.0) == Approx(2.0 * 0.81));
  REQUIRE(LinearWarmup(4, 0.2).lr(0, 1.0) == Approx(0.2));
  REQUIRE(LinearWarmup(4, 0.2).lr(2, 1.0) == Approx(0.6));
  REQUIRE(LinearWarmup(4, 0.2).lr(9, 1.0) == Approx(1.0));
  REQUIRE(CosineAnnealing(10, 0.1).lr(0, 1.0) == Approx(1.0));
  REQUIRE(CosineAnnealing(10, 0.1).lr(5, 1.0) == Approx(0.55));
  REQUIRE(CosineAnnealing(10, 0.1).lr(10, 1.0) == Approx(0.1));
}

TEST_CASE("A warm-up followed by cosine decay switches at its milestone", "[optim][schedule]") {
  SequentialSchedule s(
      {std::make_shared<LinearWarmup>(5, 0.5), std::make_shared<CosineAnnealing>(10)}, {5});
  REQUIRE(s.lr(0, 1.0) == Approx(0.5));
  REQUIRE(s.lr(4, 1.0) == Approx(0.9));
  REQUIRE(s.lr(5, 1.0) == Approx(1.0));  // cosine restarts its own count at the milestone
  REQUIRE(s.lr(10, 1.0) == Approx(0.5));
  REQUIRE(s.lr(15, 1.0) == Approx(0.0).margin(1e-12));
  REQUIRE_THROWS_AS(SequentialSchedule({std::make_shared<StepDecay>(1)}, {3}), ArgumentError);
}

TEST_CASE("LRScheduler sets the optimizer's learning rate each step", "[optim][schedule]") {
  Parameter<double> p(Matrix<double>::Zero(1, 1));
  SGD<double> opt({&p}, SGDOptions(0.4));
  LRScheduler<double> scheduler(opt, std::make_shared<StepDecay>(2, 0.1));
  REQUIRE(opt.lr() == Approx(0.4));
  scheduler.step();
  REQUIRE(opt.lr() == Approx(0.4));
  scheduler.step();
  REQUIRE(opt.lr() == Approx(0.04));
  REQUIRE(scheduler.last_step() == 2);
}
