// oneDNN peer for the backprop-through-time comparison (see benchmarks/README.md).
//
// One training step, as in bptt_bench: forward_training over the whole sequence, then the
// backward primitive with an upstream gradient of ones on every output, producing the
// gradients of the input, the weights and the bias. Weights are kept in the user's ldigo
// layout (as a framework keeps them between optimizer steps), so each step includes the
// reorders into the layouts the primitives chose and of the weight gradients back.
//
// Usage: onednn_bptt [--threads N] [--filter SUBSTR] [--min-time SECONDS] [--gemm-peak]
// Prints one JSON object per benchmark on its own line. --gemm-peak instead times
// dnnl_sgemm on large squares (a second opinion on the machine's SGEMM peak). Threads: OpenMP
// (oneDNN's CPU runtime in Debian's build); set both --threads and OMP_NUM_THREADS to be sure.

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "dnnl.hpp"

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Config {
  const char* name;
  memory::dim batch, steps, input, hidden;
};
// Keep in step with benchmarks/common/configs.hpp and benchmarks/compare.
const Config kConfigs[] = {{"S", 16, 50, 64, 64},
                           {"M", 32, 100, 256, 256},
                           {"L", 64, 50, 512, 512},
                           {"LONG", 8, 1000, 128, 128}};
const char* const kCells[] = {"rnn_tanh", "lstm", "gru"};

int gates_of(const std::string& cell) { return cell == "lstm" ? 4 : cell == "gru" ? 3 : 1; }

void fill_random(memory& m, std::mt19937& rng, float scale) {
  std::uniform_real_distribution<float> u(-scale, scale);
  auto* p = static_cast<float*>(m.get_data_handle());
  const std::size_t n = m.get_desc().get_size() / sizeof(float);
  for (std::size_t i = 0; i < n; ++i) p[i] = u(rng);
}

void fill_value(memory& m, float v) {
  auto* p = static_cast<float*>(m.get_data_handle());
  std::fill(p, p + m.get_desc().get_size() / sizeof(float), v);
}

// One cell and shape: the primitives, their memories and one training step.
class Bench {
 public:
  Bench(const std::string& cell, const Config& c, dnnl::engine& eng) : eng_(eng) {
    const memory::dim G = gates_of(cell), T = c.steps, B = c.batch, I = c.input, H = c.hidden;
    const memory::dim bias_gates = cell == "gru" ? 4 : G;  // lbr_gru keeps b_hn apart
    const memory::desc src_layer({T, B, I}, dt::f32, tag::tnc);
    const memory::desc dst_layer({T, B, H}, dt::f32, tag::tnc);
    const memory::desc w_layer_any({1, 1, I, G, H}, dt::f32, tag::any);
    const memory::desc w_iter_any({1, 1, H, G, H}, dt::f32, tag::any);
    const memory::desc bias({1, 1, bias_gates, H}, dt::f32, tag::ldgo);
    const memory::desc none;  // zero initial state, final state not wanted
    const auto fwd = dnnl::prop_kind::forward_training;
    const auto bwd = dnnl::prop_kind::backward;
    const auto dir = dnnl::rnn_direction::unidirectional_left2right;

    if (cell == "rnn_tanh") {
      const auto act = dnnl::algorithm::eltwise_tanh;
      dnnl::vanilla_rnn_forward::primitive_desc f(
          {fwd, act, dir, src_layer, none, w_layer_any, w_iter_any, bias, dst_layer, none}, eng);
      dnnl::vanilla_rnn_backward::primitive_desc b(
          {bwd, act, dir, src_layer, none, w_layer_any, w_iter_any, bias, dst_layer, none,
           src_layer, none, w_layer_any, w_iter_any, bias, dst_layer, none},
          eng, f);
      fwd_pd_ = f;
      bwd_pd_ = b;
      fwd_ = dnnl::vanilla_rnn_forward(f);
      bwd_ = dnnl::vanilla_rnn_backward(b);
    } else if (cell == "lstm") {
      dnnl::lstm_forward::primitive_desc f(
          {fwd, dir, src_layer, none, none, w_layer_any, w_iter_any, bias, dst_layer, none, none},
          eng);
      dnnl::lstm_backward::primitive_desc b(
          {bwd,         dir,        src_layer, none,      none,      w_layer_any, w_iter_any,
           bias,        dst_layer,  none,      none,      src_layer, none,        none,
           w_layer_any, w_iter_any, bias,      dst_layer, none,      none},
          eng, f);
      fwd_pd_ = f;
      bwd_pd_ = b;
      fwd_ = dnnl::lstm_forward(f);
      bwd_ = dnnl::lstm_backward(b);
    } else {
      dnnl::lbr_gru_forward::primitive_desc f(
          {fwd, dir, src_layer, none, w_layer_any, w_iter_any, bias, dst_layer, none}, eng);
      dnnl::lbr_gru_backward::primitive_desc b(
          {bwd, dir, src_layer, none, w_layer_any, w_iter_any, bias, dst_layer, none, src_layer,
           none, w_layer_any, w_iter_any, bias, dst_layer, none},
          eng, f);
      fwd_pd_ = f;
      bwd_pd_ = b;
      fwd_ = dnnl::lbr_gru_forward(f);
      bwd_ = dnnl::lbr_gru_backward(b);
    }

    std::mt19937 rng(42);
    const float scale = 1.0f / static_cast<float>(H);
    src_ = memory(src_layer, eng);
    fill_random(src_, rng, 1.0f);
    user_w_layer_ = memory({{1, 1, I, G, H}, dt::f32, tag::ldigo}, eng);
    user_w_iter_ = memory({{1, 1, H, G, H}, dt::f32, tag::ldigo}, eng);
    fill_random(user_w_layer_, rng, scale);
    fill_random(user_w_iter_, rng, scale);
    bias_ = memory(bias, eng);
    fill_random(bias_, rng, scale);
    dst_ = memory(fwd_pd_.dst_layer_desc(), eng);
    workspace_ = memory(fwd_pd_.workspace_desc(), eng);
    diff_dst_ = memory(bwd_pd_.diff_dst_layer_desc(), eng);
    fill_value(diff_dst_, 1.0f);  // loss = sum of all outputs
    diff_src_ = memory(bwd_pd_.diff_src_layer_desc(), eng);
    diff_bias_ = memory(bwd_pd_.diff_bias_desc(), eng);
    fill_value(diff_bias_, 0.0f);
    user_dw_layer_ = memory(user_w_layer_.get_desc(), eng);
    user_dw_iter_ = memory(user_w_iter_.get_desc(), eng);

    // Weights in the layouts each primitive chose, with the reorders that fill them.
    fwd_w_layer_ = layout_for(fwd_pd_.weights_layer_desc(), user_w_layer_, &to_fwd_);
    fwd_w_iter_ = layout_for(fwd_pd_.weights_iter_desc(), user_w_iter_, &to_fwd_);
    bwd_w_layer_ = layout_for(bwd_pd_.weights_layer_desc(), user_w_layer_, &to_bwd_);
    bwd_w_iter_ = layout_for(bwd_pd_.weights_iter_desc(), user_w_iter_, &to_bwd_);
    dw_layer_ = grad_layout_for(bwd_pd_.diff_weights_layer_desc(), user_dw_layer_);
    dw_iter_ = grad_layout_for(bwd_pd_.diff_weights_iter_desc(), user_dw_iter_);
    fill_value(dw_layer_, 0.0f);
    fill_value(dw_iter_, 0.0f);
  }

  void step(dnnl::stream& s) {
    for (auto& r : to_fwd_) r.prim.execute(s, r.from, r.to);
    fwd_.execute(s, {{DNNL_ARG_SRC_LAYER, src_},
                     {DNNL_ARG_WEIGHTS_LAYER, fwd_w_layer_},
                     {DNNL_ARG_WEIGHTS_ITER, fwd_w_iter_},
                     {DNNL_ARG_BIAS, bias_},
                     {DNNL_ARG_DST_LAYER, dst_},
                     {DNNL_ARG_WORKSPACE, workspace_}});
    for (auto& r : to_bwd_) r.prim.execute(s, r.from, r.to);
    bwd_.execute(s, {{DNNL_ARG_SRC_LAYER, src_},
                     {DNNL_ARG_WEIGHTS_LAYER, bwd_w_layer_},
                     {DNNL_ARG_WEIGHTS_ITER, bwd_w_iter_},
                     {DNNL_ARG_BIAS, bias_},
                     {DNNL_ARG_DST_LAYER, dst_},
                     {DNNL_ARG_DIFF_DST_LAYER, diff_dst_},
                     {DNNL_ARG_WORKSPACE, workspace_},
                     {DNNL_ARG_DIFF_SRC_LAYER, diff_src_},
                     {DNNL_ARG_DIFF_WEIGHTS_LAYER, dw_layer_},
                     {DNNL_ARG_DIFF_WEIGHTS_ITER, dw_iter_},
                     {DNNL_ARG_DIFF_BIAS, diff_bias_}});
    for (auto& r : to_user_) r.prim.execute(s, r.from, r.to);
    s.wait();
  }

  std::string weight_formats() const {
    return std::string(to_fwd_.empty() ? "fwd:ldigo" : "fwd:reordered") +
           (to_bwd_.empty() ? " bwd:ldigo" : " bwd:reordered") +
           (to_user_.empty() ? " dW:ldigo" : " dW:reordered");
  }

 private:
  struct Reorder {
    dnnl::reorder prim;
    memory from, to;
  };

  memory layout_for(const memory::desc& want, memory& user, std::vector<Reorder>* reorders) {
    if (want == user.get_desc()) return user;
    memory m(want, eng_);
    reorders->push_back({dnnl::reorder(user, m), user, m});
    return m;
  }

  memory grad_layout_for(const memory::desc& have, memory& user) {
    if (have == user.get_desc()) return user;
    memory m(have, eng_);
    to_user_.push_back({dnnl::reorder(m, user), m, user});
    return m;
  }

  dnnl::engine& eng_;
  dnnl::rnn_primitive_desc_base fwd_pd_, bwd_pd_;
  dnnl::primitive fwd_, bwd_;
  memory src_, user_w_layer_, user_w_iter_, bias_, dst_, workspace_, diff_dst_, diff_src_,
      diff_bias_, user_dw_layer_, user_dw_iter_;
  memory fwd_w_layer_, fwd_w_iter_, bwd_w_layer_, bwd_w_iter_, dw_layer_, dw_iter_;
  std::vector<Reorder> to_fwd_, to_bwd_, to_user_;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median milliseconds of `fn` after a warm-up: at least 5 runs and `min_time` seconds.
template <typename Fn>
std::pair<double, std::vector<double>> time_ms(Fn&& fn, double min_time) {
  using clock = std::chrono::steady_clock;
  for (int i = 0; i < 3; ++i) fn();
  std::vector<double> ms;
  const auto start = clock::now();
  while (ms.size() < 5 || std::chrono::duration<double>(clock::now() - start).count() < min_time) {
    const auto t0 = clock::now();
    fn();
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
  }
  return {median(ms), ms};
}

void gemm_peak(int threads, double min_time) {
  for (const dnnl_dim_t n : {512, 1024, 2048}) {
    std::vector<float> a(static_cast<std::size_t>(n * n), 0.5f), b(a), c(a);
    const auto [med, ms] = time_ms(
        [&] { dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.data(), n, b.data(), n, 0.0f, c.data(), n); },
        min_time);
    const double flops =
        2.0 * static_cast<double>(n) * static_cast<double>(n) * static_cast<double>(n);
    std::printf(
        "{\"name\": \"gemm/peak/%ld/%d\", \"threads\": %d, \"ms\": %.4f, \"repeats\": %zu, "
        "\"gflops\": %.3f}\n",
        static_cast<long>(n), threads, threads, med, ms.size(), flops / (med * 1e6));
    std::fflush(stdout);
  }
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 1;
  std::string filter;
  double min_time = 0.5;
  bool peak = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc)
      threads = std::atoi(argv[++i]);
    else if (a == "--filter" && i + 1 < argc)
      filter = argv[++i];
    else if (a == "--min-time" && i + 1 < argc)
      min_time = std::atof(argv[++i]);
    else if (a == "--gemm-peak")
      peak = true;
    else {
      std::fprintf(stderr,
                   "usage: %s [--threads N] [--filter SUBSTR] [--min-time SECONDS] [--gemm-peak]\n",
                   argv[0]);
      return 2;
    }
  }
  omp_set_num_threads(threads);
  if (peak) {
    gemm_peak(threads, min_time);
    return 0;
  }
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream s(eng);

  for (const Config& c : kConfigs) {
    for (const char* cell : kCells) {
      const std::string name =
          std::string("bptt/") + cell + "/" + c.name + "/" + std::to_string(threads);
      if (!filter.empty() && name.find(filter) == std::string::npos) continue;
      Bench bench(cell, c, eng);
      // The warm-up covers first touch of every buffer, oneDNN's JIT and scratchpad.
      const auto [med, ms] = time_ms([&] { bench.step(s); }, min_time);
      const double G = gates_of(cell);
      const double flops = 3.0 * static_cast<double>(c.steps) * 2.0 * static_cast<double>(c.batch) *
                           G * static_cast<double>(c.hidden) *
                           static_cast<double>(c.input + c.hidden);
      std::printf(
          "{\"name\": \"%s\", \"cell\": \"%s\", \"config\": \"%s\", \"threads\": %d, "
          "\"ms\": %.4f, \"min_ms\": %.4f, \"repeats\": %zu, \"gflops\": %.3f, "
          "\"layouts\": \"%s\"}\n",
          name.c_str(), cell, c.name, threads, med, *std::min_element(ms.begin(), ms.end()),
          ms.size(), flops / (med * 1e6), bench.weight_formats().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}
