// One recurrent layer's training step, run once per request: the worker that benchmarks/ab
// drives two of (before and after a change), alternating single steps, so that the speed of a
// shared machine, which changes within seconds, lands on both sides of every ratio.
//
//   bptt_lockstep <cell>/<config>/<threads>     e.g. lstm/M/1
//
// Builds the layer and data of bptt/<cell>/<config>/<threads> (bptt_step.hpp), runs three
// untimed steps, prints "ready", then for each line read from stdin runs one step and prints
// its wall time in milliseconds. Exits at end of input.

#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

#include "bptt_step.hpp"

namespace {

using gradflow::bench::BpttConfig;
using gradflow::bench::Cell;

template <typename Step>
int serve(Step& step) {
  for (int i = 0; i < 3; ++i) step.run();
  std::printf("ready\n");
  std::fflush(stdout);
  for (std::string line; std::getline(std::cin, line);) {
    const auto start = std::chrono::steady_clock::now();
    step.run();
    const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
    std::printf("%.6f\n", took.count());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string usage = "usage: bptt_lockstep <rnn_tanh|lstm|gru>/<S|M|L|LONG>/<threads>";
  if (argc != 2) {
    std::fprintf(stderr, "%s\n", usage.c_str());
    return 2;
  }
  const std::string name = argv[1];
  for (Cell cell : gradflow::bench::kCells)
    for (const BpttConfig& cfg : gradflow::bench::kBpttConfigs)
      for (int threads : {1, 2}) {
        if (name != std::string(gradflow::bench::cell_name(cell)) + "/" + cfg.name + "/" +
                        std::to_string(threads))
          continue;
        gradflow::bench::set_threads(threads);
        gradflow::bench::BpttStep<gradflow::bench::Layer<true, true>> step(cell, cfg);
        return serve(step);
      }
  std::fprintf(stderr, "bptt_lockstep: no benchmark '%s'\n%s\n", name.c_str(), usage.c_str());
  return 2;
}
