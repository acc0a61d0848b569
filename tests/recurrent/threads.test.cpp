// The fused layers split batch columns and GEMM rows or columns across OpenMP threads:
// every split must compute what one thread computes.

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <map>
#include <set>
#include <stdexcept>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "recurrent_test_util.hpp"

using namespace gradflow;

namespace {

using test::ThreadCount;

// Whether the build has OpenMP, i.e. more than one thread to compare with; warns if not.
bool have_threads() {
#ifdef _OPENMP
  return true;
#else
  WARN("built without OpenMP: one thread only, nothing to compare");
  return false;
#endif
}

// The cells with the most state per step, where the 2-thread pipelines do the most.
const nn::CellKind gated_kinds[] = {nn::CellKind::LSTM, nn::CellKind::GRU};

}  // namespace

TEST_CASE("split cuts a range into aligned parts that cover it once", "[recurrent][threads]") {
  for (Index n : {0, 1, 5, 16, 17, 100, 1024}) {
    for (Index parts : {1, 2, 3, 7}) {
      for (Index align : {1, 16}) {
        Index next = 0;
        for (Index p = 0; p < parts; ++p) {
          const detail::Range r = detail::split(n, parts, p, align);
          CHECK(r.begin == next);
          CHECK(r.count >= 0);
          if (p > 0 && r.count > 0) CHECK(r.begin % align == 0);
          next = r.begin + r.count;
        }
        CHECK(next == n);
      }
    }
  }
  // Even parts when n allows: 32 samples on two threads are 16 and 16.
  CHECK(detail::split(32, 2, 1).begin == 16);
  CHECK(detail::split(32, 2, 1).count == 16);
}

#ifdef _OPENMP
TEST_CASE("parallel_parts runs each part once, on its own thread, and rethrows",
          "[recurrent][threads]") {
  std::vector<int> thread_of(3, -1);
  detail::parallel_parts(3, [&](Index p) { thread_of[std::size_t(p)] = omp_get_thread_num(); });
  CHECK(std::set<int>(thread_of.begin(), thread_of.end()) == std::set<int>{0, 1, 2});
  CHECK_THROWS_WITH(detail::parallel_parts(2,
                                           [](Index p) {
                                             if (p == 1) throw std::runtime_error("part 1 failed");
                                           }),
                    "part 1 failed");
}
#endif

TEST_CASE("Threaded fused layers compute what one thread computes", "[recurrent][threads]") {
  if (!have_threads()) return;
  struct Variant {
    const char* name;
    nn::RecurrentOptions options;
    std::vector<Index> lengths;
    Index steps = 7;
  };
  // Batch 5 does not split evenly; 20 hidden units make the GEMM row ranges uneven too.
  // At 2 threads the backward loop runs on one thread while the other takes the gradients
  // of finished chunks of steps: the long sequences leave it time to take some (which
  // chunks it takes depends on timing; every way must give the same result).
  const Variant variants[] = {
      {"two layers, bidirectional",
       nn::RecurrentOptions(6, 20).num_layers(2).bidirectional(true),
       {}},
      {"variable lengths", nn::RecurrentOptions(6, 20).bidirectional(true), {7, 2, 5, 7, 1}},
      {"checkpointed, no bias", nn::RecurrentOptions(6, 20).checkpoint_every(3).bias(false), {}},
      {"61 steps, bidirectional", nn::RecurrentOptions(6, 20).bidirectional(true), {}, 61},
      {"61 steps, checkpointed every 13, variable lengths",
       nn::RecurrentOptions(6, 20).checkpoint_every(13),
       {61, 30, 5, 61, 44},
       61},
      {"61 steps, feature-major, bidirectional, variable lengths",
       nn::RecurrentOptions(6, 20).feature_major(true).bidirectional(true),
       {61, 30, 5, 61, 44},
       61},
      // The weight gradients are cut by columns of [dW_hh | dW_ih]: with more inputs than
      // hidden units, a thread's columns start inside dW_ih (in both layouts of x).
      {"wide input", nn::RecurrentOptions(40, 12), {}},
      {"wide input, feature-major", nn::RecurrentOptions(40, 12).feature_major(true), {}},
  };
  const nn::CellKind kinds[] = {nn::CellKind::RnnTanh, nn::CellKind::RnnRelu, nn::CellKind::LSTM,
                                nn::CellKind::GRU};
  for (nn::CellKind kind : kinds) {
    for (const Variant& v : variants) {
      for (int threads : {2, 3}) {
        DYNAMIC_SECTION(test::kind_name(kind) << ", " << v.name << ", " << threads << " threads") {
          const std::vector<Index>* lengths = v.lengths.empty() ? nullptr : &v.lengths;
          auto layer = test::make_layer<double>(kind, nn::RecurrentOptions(v.options).seed(17));
          test::Run one, many;
          {
            ThreadCount count(1);
            one = test::run(*layer, v.steps, 5, true, lengths);
          }
          {
            ThreadCount count(threads);
            REQUIRE(detail::worker_threads() == threads);
            many = test::run(*layer, v.steps, 5, true, lengths);
          }
          // Other column groupings in the products may round differently: close, not equal.
          CHECK(test::max_diff(one.output, many.output) < 1e-13);
          CHECK(test::max_diff(one.h_n, many.h_n) < 1e-13);
          CHECK(test::max_diff(one.grad_x, many.grad_x) < 1e-13);
          CHECK(test::max_diff(one.grad_h0, many.grad_h0) < 1e-13);
          REQUIRE(one.param_grads.size() == many.param_grads.size());
          for (std::size_t k = 0; k < one.param_grads.size(); ++k)
            CHECK(test::max_diff(one.param_grads[k], many.param_grads[k]) < 1e-12);
        }
      }
    }
  }
}

TEST_CASE("At 2 threads without a second thread to run on, the layers still finish, in order",
          "[recurrent][threads]") {
  if (!have_threads()) return;
  // At 2 threads one thread of each pipelined phase waits for the other (forward: the loop
  // for the projector; backward: the gradients for the loop). Inside a caller's parallel
  // region, or in a team of one, parallel_parts runs the parts one after the other on the
  // calling thread: the producer must come first, or the step would never end.
  for (nn::CellKind kind : gated_kinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      auto layer = test::make_layer<double>(
          kind, nn::RecurrentOptions(6, 20).bidirectional(true).checkpoint_every(13).seed(5));
      test::Run one, nested, alone;
      {
        ThreadCount count(1);
        one = test::run(*layer, 61, 5, true, nullptr);
      }
      ThreadCount count(2);
#pragma omp parallel num_threads(2)
#pragma omp single
      nested = test::run(*layer, 61, 5, true, nullptr);
#pragma omp parallel num_threads(1)
      alone = test::run(*layer, 61, 5, true, nullptr);
      for (const test::Run* run : {&nested, &alone}) {
        CHECK(test::max_diff(one.output, run->output) < 1e-13);
        CHECK(test::max_diff(one.grad_x, run->grad_x) < 1e-13);
        REQUIRE(one.param_grads.size() == run->param_grads.size());
        for (std::size_t k = 0; k < one.param_grads.size(); ++k)
          CHECK(test::max_diff(one.param_grads[k], run->param_grads[k]) < 1e-12);
      }
    }
  }
}

TEST_CASE("At 2 threads the hidden-gradient hook sees what it sees on one, and may throw",
          "[recurrent][threads][hook]") {
  if (!have_threads()) return;
  // At 2 threads one thread runs the backward loop (and calls the hook) while the other
  // waits for finished steps: a hook that throws must not leave it waiting.
  for (nn::CellKind kind : gated_kinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      auto layer = test::make_layer<double>(kind, nn::RecurrentOptions(4, 20).seed(11));
      const Matrix<double> input = test::random_matrix<double>(61 * 5, 4, 2);
      std::map<Index, Matrix<double>> seen[2];
      for (int threads : {1, 2}) {
        ThreadCount count(threads);
        layer->set_hidden_grad_hook(
            [&seen, threads](Index, Index, Index t, ConstMatrixMap<double> dh) {
              seen[threads - 1][t] = dh;
            });
        Tape<double> tape;
        test::weighted_loss(tape, layer->forward(tape.constant(input), 5)).backward();
      }
      REQUIRE(seen[0].size() == 61);
      REQUIRE(seen[1].size() == 61);
      for (auto& [t, dh] : seen[0]) CHECK(test::max_diff(dh, seen[1][t]) < 1e-13);

      ThreadCount count(2);
      layer->set_hidden_grad_hook([](Index, Index, Index t, ConstMatrixMap<double>) {
        if (t == 30) throw std::runtime_error("hook stopped at step 30");
      });
      Tape<double> tape;
      Var<double> loss = test::weighted_loss(tape, layer->forward(tape.constant(input), 5));
      CHECK_THROWS_WITH(loss.backward(), "hook stopped at step 30");
    }
  }
}

TEST_CASE("parallel_column_ranges covers every column once, split only when large",
          "[recurrent][threads]") {
  for (int threads : {1, 2, 3}) {
    ThreadCount count(threads);
    for (Index rows : {1, 512, 1000}) {
      for (Index cols : {1, 2, 5, 512}) {
        std::vector<int> seen(std::size_t(cols), 0);
        std::atomic<Index> ranges{0};
        detail::parallel_column_ranges(rows, cols, [&](Index begin, Index n) {
          ++ranges;
          for (Index c = begin; c < begin + n; ++c) ++seen[std::size_t(c)];
        });
        CHECK(std::count(seen.begin(), seen.end(), 1) == cols);
        const bool large = rows * cols >= detail::kParallelPassMinSize;
        CHECK(ranges.load() == (large ? std::min<Index>(detail::worker_threads(), cols) : 1));
      }
    }
  }
}

TEST_CASE("The tape's copies, zeroed gradients and seeds are whole on any thread count",
          "[recurrent][threads]") {
  // 700 x 400 is above kParallelPassMinSize: these passes run in column ranges.
  const Matrix<double> a = Matrix<double>::Random(700, 400);
  const Matrix<double> seed = Matrix<double>::Random(700, 400);
  REQUIRE(a.size() >= detail::kParallelPassMinSize);
  for (int threads : {1, 2, 3}) {
    ThreadCount count(threads);
    Tape<double> tape;
    // Three steps: the first clear() merges the arena's blocks into one, so the third step
    // reuses the second's memory, which holds its values and gradients: a column range
    // left unzeroed or uncopied shows.
    for (double step : {1.0, 2.0, 3.0}) {
      tape.clear();
      Var<double> x = tape.variable(a * step);    // an expression: evaluated whole
      Var<double> x2 = tape.variable(x.value());  // a stored matrix: copied in column ranges
      CHECK(tape.value(x) == a * step);
      CHECK(tape.value(x2) == a * step);
      Var<double> y = tape.apply(
          "copy", {x2}, a.rows(), a.cols(), [&](MatrixMap<double> out) { out = tape.value(x2); },
          [x2](Tape<double>& t, Var<double> out) { t.grad(x2) += t.grad(out); });
      tape.backward(y, seed * step);  // a fresh root gradient: the seed itself
      CHECK(tape.grad(y) == seed * step);
      CHECK(tape.grad(x2) == seed * step);  // zeroed in column ranges, then accumulated
    }

    Tape<double> again;
    Var<double> z = again.variable(a);
    again.grad(z).setOnes();  // a root that already has a gradient adds the seed to it
    again.backward(z, seed);
    CHECK(again.grad(z) == (seed.array() + 1.0).matrix());
  }
}
