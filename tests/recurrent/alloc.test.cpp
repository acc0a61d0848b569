// Proves that a steady-state training step of the fused recurrent layers allocates nothing
// on the heap (counters in tests/common/alloc_counting.hpp, which must come first).

// clang-format off: the counters must be included before Eigen.
#include "../common/alloc_counting.hpp"
// clang-format on

#include <catch2/catch.hpp>
#include <gradflow/core/ops.hpp>
#include <gradflow/nn/recurrent/recurrent.hpp>

#include "recurrent_test_util.hpp"

using namespace gradflow;

TEST_CASE("A steady-state fused recurrent training step allocates nothing", "[recurrent][alloc]") {
  const nn::CellKind kinds[] = {nn::CellKind::RnnTanh, nn::CellKind::LSTM, nn::CellKind::GRU};
#ifdef _OPENMP
  const int thread_counts[] = {1, 2};
#else
  const int thread_counts[] = {1};
#endif
  const int saved_threads = Eigen::nbThreads();
  for (nn::CellKind kind : kinds) {
    // H = 96 makes W_hh's packed block larger than Eigen's 128 KiB stack limit for LSTM.
    // The input by reference with a gradient (as the benchmarks take it), in both layouts.
    for (Index every : {0, 4}) {
      for (bool by_columns : {false, true})
        for (int threads : thread_counts)
          DYNAMIC_SECTION(test::kind_name(kind) << (every ? ", checkpointed" : "")
                                                << (by_columns ? ", feature-major" : "") << ", "
                                                << threads << " threads") {
            Eigen::setNbThreads(threads);
            auto layer = test::make_layer<float>(kind, nn::RecurrentOptions(40, 96)
                                                           .num_layers(2)
                                                           .bidirectional(true)
                                                           .checkpoint_every(every)
                                                           .feature_major(by_columns));
            const Index B = 8, steps = 10;
            const Matrix<float> x = by_columns ? Matrix<float>::Random(40, steps * B)
                                               : Matrix<float>::Random(steps * B, 40);
            const std::vector<Index> lengths{10, 9, 8, 7, 10, 3, 10, 1};
            Tape<float> tape;
            auto step = [&] {
              tape.clear();
              auto out = layer->forward(tape.variable_view(x, "input"), B, lengths);
              Var<float> loss = sum(out.output) + sum(out.h_n);
              loss.backward();
            };
            step();
            step();
            const alloc_count::Counts c = alloc_count::count_allocations([&] {
              for (int i = 0; i < 3; ++i) step();
            });
#ifndef GRADFLOW_TEST_ASAN
            CHECK(c.news == 0);
#endif
            CHECK(c.eigen_mallocs == 0);
            Eigen::setNbThreads(saved_threads);
          }
    }
  }
}
