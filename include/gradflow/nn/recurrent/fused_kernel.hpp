#pragma once
/// \file
/// The fused backprop-through-time kernel: one layer-direction of an RNN, LSTM or GRU over
/// a whole sequence as a single tape node.

#include <algorithm>
#include <atomic>
#include <functional>
#include <stdexcept>
#include <utility>

#include "gradflow/core/detail/packed_gemm.hpp"
#include "gradflow/core/detail/parallel.hpp"
#include "gradflow/core/detail/prefetch.hpp"
#include "gradflow/core/detail/transpose.hpp"
#include "gradflow/core/tape.hpp"

namespace gradflow::nn {

/// Which recurrence a layer runs.
enum class CellKind { RnnTanh, RnnRelu, LSTM, GRU };

/// Gates per cell: 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n).
inline Index gate_count(CellKind kind) {
  return kind == CellKind::LSTM ? 4 : kind == CellKind::GRU ? 3 : 1;
}

/// Receives dL/dh_t ([B x H]) for step t of one layer-direction during backward.
template <typename T>
using HiddenGradHook =
    std::function<void(Index layer, Index direction, Index t, ConstMatrixMap<T> dh)>;

namespace detail {

/// One layer-direction over T steps, recorded as one tape node.
///
/// Everything inside runs in a transposed layout, [features x (T*B)] with column t*B + b,
/// so that the B columns of a step are contiguous: the per-step GEMM W_hh h_{t-1} reads and
/// writes one contiguous [G*H x B] slab, and the elementwise gate maths streams over it.
///
/// Forward:  A = W_ih X^T + b (all steps, one GEMM); per step A_t += W_hh h_{t-1} (one GEMM,
///           all gates), then the gate maths. Backward: per step dG_t from the gate maths,
///           its row sums (the bias gradients) and dh_{t-1} = W_hh^T dG_t; after the loop
///           dW_ih = dG X, dW_hh = dG H_prev^T and dX = dG^T W_ih (GEMMs over all steps; the
///           two dW share one packing of dG).
///
/// Threads (worker_threads(), i.e. Eigen's): the samples of a batch never mix inside the
/// recurrence, so each thread runs the whole step loop for its own range of batch columns,
/// with no synchronisation between steps; the whole-segment GEMMs are cut into row or
/// column ranges, one per thread. At 2 threads the phases are pipelined instead: one
/// thread runs the step loop over the whole batch (more columns per product, a faster
/// kernel) while the other projects the inputs of the steps ahead of it (forward) or
/// computes the weight and input gradients of the steps it has finished (backward); the
/// forward's projector, once every step is projected, takes half of the batch. Every
/// product is single-threaded Eigen (or BLAS) code with packing buffers from the tape, so
/// no step allocates.
///
/// Gradient checkpointing splits the steps into segments of `segment` steps (in processing
/// order). Only the last segment's activations stay in memory, plus the state entering each
/// segment; backward recomputes each earlier segment's forward from its checkpoint, then runs
/// the loop above over that segment, with the three weight GEMMs per segment. Without
/// checkpointing there is one segment and nothing is recomputed.
///
/// The node's value is [(T*B) x H], the output of every step (time-major, zero at padded
/// steps), or [H x (T*B)] with feature_major (x is then [I x (T*B)]); h_n (and c_n) are a
/// second node, see fused_recurrence().
template <typename T>
struct FusedRecurrence {
  using Range = gradflow::detail::Range;

  CellKind kind;
  bool reverse;
  Index steps, batch, hidden, layer, direction;
  Index segment;                             // steps per checkpoint segment (steps: no checkpoints)
  Var<T> x, h0, c0, w_ih, w_hh, b_ih, b_hh;  // c0 only for LSTM; biases may be empty
  bool has_bias;
  const T* lengths;               // valid steps per sample (as T), or nullptr
  const HiddenGradHook<T>* hook;  // or nullptr
  // x is [I x (T*B)] and the output [H x (T*B)], column t*B + b (the layer's feature_major
  // option): the layout the kernel runs in, so no step transposes (see forward_steps).
  bool feature_major = false;
  // Buffers of one segment, column (t - first step of the segment)*B + b:
  T* acts = nullptr;         // [G*H x S*B] gate activations (RNN: the hidden states);
                             // LSTM, GRU: dG once backward has run over the segment
  T* cells = nullptr;        // [H x S*B] LSTM cell states
  T* hn = nullptr;           // [H x S*B] GRU: W_hn h_{t-1} + b_hn
  T* hs = nullptr;           // [H x S*B] hidden states (after padding carry)
  T* h_ck = nullptr;         // [H x B] per segment: the state entering it (h0^T first)
  T* c_ck = nullptr;         // [H x B] per segment: LSTM cell state entering it
  T* work = nullptr;         // [H x 4B] backward scratch; [B x H] hook buffer after
  T* ones = nullptr;         // [B] ones: a step's row sums of dG as a GEMV
  T* bias = nullptr;         // [G*H] b_ih + b_hh (GRU's n rows: b_in alone): A's first value
  T* bias_grad = nullptr;    // [(G+1)*H x batch_parts] per step-loop part: the row sums of dG
                             // (what b_ih and b_hh share), then of GRU's dGn (b_hn's)
  T* final_state = nullptr;  // [B x H] h_n, then [B x H] c_n (LSTM): the final-state node's value
  T* final_grad = nullptr;   // the same shape: dL/d(final state), written by that node's backward
  Index threads = 1;         // parts of the whole-segment GEMMs
  Index batch_parts = 1;     // parts of the step loops (1 when a hook watches dh)
  // The first processed step's W_hh h0 is skipped when h0 is zero (the layers' default
  // state), and the last backward step's W_hh^T dG_0 when nothing needs dL/dh0: one of T
  // per-step products in each pass, 1/(3T) of a step's flops. ab --lockstep new / old,
  // Zen 5, 16-20 pairs x 3: L/1 0.980-0.986, L/2 0.984-0.993, M/1 0.991-0.993.
  bool zero_h0 = false, h0_grad = true;
  // W_hh packed once for the per-step products (packing it in every product cost 8% of
  // bptt/lstm/M/1, and Eigen's own product allocated its packing buffers on the heap).
  // GRU packs the r,z rows and the n rows apart: n's product gets its own bias first.
  gradflow::detail::PackedLhs<T, Eigen::ColMajor> w_gates{}, w_n{};
  // W_ih packed once as well (G*H*I scalars of tape, 4 MB at LSTM L), for the input
  // projection, which runs a chunk of pipeline_chunk() steps at a time. At 2 threads the
  // forward projects chunks as the loop goes (forward_pipelined), and Eigen's product packed
  // W_ih again for every one: the projecting thread's share of lstm L/2's forward went 42.8
  // -> 36.9 ms (rnn_tanh 11.3 -> 9.4). ab --lockstep new / old, Zen 5, 20 pairs x 4: L/2
  // 0.975-0.983, M/2 0.973-0.992, LONG/2 0.992-1.001. Otherwise a part projects its columns
  // in such chunks too, rather than in one GEMM: a chunk's result stays in L2 through the
  // depth blocks, where the whole segment's (6.5-26 MB at L) went to memory and back once per
  // depth block. Zen 5, 1 thread, the projection alone, bias included, medians of 40:
  // [512 x 512] x 3200 columns 161 -> 174 GFLOP/s, [2048 x 512] x 3200 171 -> 195,
  // [512 x 128] x 8000 169 -> 177 (64-192-column chunks within 2 % of each other).
  // The backward's chunked dX packs W_ih once as well, as a right-hand side (see w_dx);
  // packed as W_ih^T, a left-hand side, with dX^T added transposed, it measured
  // 1.005-1.017 at L/2.
  gradflow::detail::PackedLhs<T, Eigen::ColMajor> w_in{};
  // W_ih packed once more, as the right-hand side of dX = dG^T W_ih, whose row blocks are a
  // chunk of steps' columns at most. At 2 threads the backward computes dX a chunk of steps
  // at a time, and Eigen's product packed W_ih for each (0.9-1.2 % of both threads' time at
  // L/2 and M/2); ab --lockstep new / old, Zen 5, 120 pairs x 6: lstm L/2 0.984, rnn_tanh
  // L/2 0.987, gru M/2 0.990, gru L/2 0.999, lstm M/2 0.999. At 1 thread, in one product
  // over the segment, Eigen's row block was every row (it sizes it by L3, 532 MB here): its
  // result went to memory once per depth block, and its packed dG^T block (1.6 MB at L)
  // overflowed L2. 160-row blocks keep both in L2 (dX alone, Zen 5, medians of 60:
  // [3200 x 2048] x [2048 x 512] 168 -> 177 GFLOP/s, GRU L's 127 -> 152, RNN L's 186 ->
  // 189). ab --lockstep, 40 pairs x 4: L/1 0.980-0.984, lstm M/1 0.979, gru M/1 0.995,
  // LONG/1 and S/1 0.98-1.02. Packed only if x wants a gradient and without the BLAS
  // back-end (which keeps its own product).
  gradflow::detail::PackedRhs<T, Eigen::ColMajor> w_dx{};
  // With feature_major, dX^T = W_ih^T dG instead, a chunk of steps' columns at a time through
  // W_ih^T packed once (a left-hand side): dX's columns are then contiguous.
  gradflow::detail::PackedLhs<T, Eigen::RowMajor> w_in_t{};
  T* projection_buffers = nullptr;  // threads right-hand side buffers of the projection,
  Index projection_stride = 0;      // of projection_stride scalars each
  T* rhs_buffers = nullptr;         // batch_parts buffers of rhs_stride scalars
  Index rhs_stride = 0;
  T* gemm_buffers = nullptr;  // threads packing buffers of the whole-segment GEMMs
  Index gemm_capacity = 0;    // the size of one, in scalars

  // The steps [first, first + count) of one segment.
  struct Span {
    Index first, count;
  };

  Index gates() const { return gate_count(kind); }
  Index final_rows_count() const { return (kind == CellKind::LSTM ? 2 : 1) * batch; }
  Index n() const { return steps * batch; }
  Index segments() const { return (steps + segment - 1) / segment; }
  // The step processed k-th (reverse runs from the last step to the first).
  Index step_at(Index k) const { return reverse ? steps - 1 - k : k; }
  bool padded(Index t, Index b) const { return lengths != nullptr && T(t) >= lengths[b]; }
  Span span(Index j) const {
    const Index k0 = j * segment, count = std::min(segment, steps - k0);
    return {reverse ? steps - k0 - count : k0, count};
  }
  T* checkpoint(T* base, Index j) const { return base + j * hidden * batch; }
  // Batch columns [begin, begin + count) of step loop part p.
  Range batch_range(Index p) const { return gradflow::detail::split(batch, batch_parts, p); }

  MatrixMap<T> map(T* p, Index rows, Index cols) const { return MatrixMap<T>(p, rows, cols); }

  // Whether a step loop over nb batch columns asks the cache for the next step's slab ahead:
  // with few columns a step's product is too short to hide the wait for its result, which
  // the input projection wrote long before. ab --lockstep, Zen 5, new / old: LONG (8 columns,
  // 4 per thread) 0.950-0.999; with 16 columns, rnn_tanh M/2 1.025 and S 1.01-1.02.
  static bool prefetch_next_step(Index nb) { return nb <= 8; }

  // Asks the cache for what the backward's step loop reads at processed step k (the i-th of
  // segment span s), batch columns [b0, b0 + nb), that the forward wrote long before. The RNN
  // reads its hidden states there, in cache from the step before; asking for its dG's memory
  // instead measured 1.5 % slower (rnn_tanh LONG/1). LSTM and GRU: the gate activations,
  // which dG overwrites (into L1 with few columns, see prefetch_next_step). With more
  // columns, into L2 (there, into L1 measured 1.003-1.017 slower): the activations, and
  // LSTM's cells c_t and c_{t-1} or GRU's hn and h_{t-1}. ab --lockstep, Zen 5, new / old,
  // 60 pairs x 6: lstm M/1 0.985, L/1 0.990, M/2 0.982, L/2 0.998; gru M/1 0.988, L/1 0.987,
  // M/2 0.985, L/2 0.996. Always inlined, as prefetch_block is.
  EIGEN_ALWAYS_INLINE void prefetch_backward_step(Span s, Index k, Index i, Index b0,
                                                  Index nb) const {
    using gradflow::detail::prefetch_block;
    using gradflow::detail::PrefetchTo;
    const bool lstm = kind == CellKind::LSTM, gru = kind == CellKind::GRU;
    if (!lstm && !gru) return;
    const Index H = hidden, B = batch, GH = gates() * H, col = (step_at(k) - s.first) * B + b0;
    if (prefetch_next_step(nb)) {
      prefetch_block(acts + col * GH, GH * nb);
      return;
    }
    prefetch_block<PrefetchTo::L2>(acts + col * GH, GH * nb);
    prefetch_block<PrefetchTo::L2>((lstm ? cells : hn) + col * H, H * nb);
    if (i > 0) {  // the state before step k; step 0 of a segment reads its checkpoint
      const Index prev_col = (step_at(k - 1) - s.first) * B + b0;
      prefetch_block<PrefetchTo::L2>((lstm ? cells : hs) + prev_col * H, H * nb);
    }
  }

  void forward(Tape<T>& tape, MatrixMap<T> out) const {
    const Index H = hidden, B = batch, last_segment = segments() - 1;
    const bool lstm = kind == CellKind::LSTM;
    for (Index j = 0; j <= last_segment; ++j) {
      const Span s = span(j);
      forward_segment(tape, j, out.data());
      if (j == last_segment) break;
      // The state after the segment's last step is where the next one starts.
      const Index end = (step_at((j + 1) * segment - 1) - s.first) * B;
      map(checkpoint(h_ck, j + 1), H, B) = map(hs, H, s.count * B).middleCols(end, B);
      if (lstm) map(checkpoint(c_ck, j + 1), H, B) = map(cells, H, s.count * B).middleCols(end, B);
    }
    const Span s = span(last_segment);
    const Index end = (step_at(steps - 1) - s.first) * B;
    MatrixMap<T> final_rows = map(final_state, final_rows_count(), H);
    final_rows.topRows(B) = map(hs, H, s.count * B).middleCols(end, B).transpose();
    if (lstm) final_rows.bottomRows(B) = map(cells, H, s.count * B).middleCols(end, B).transpose();
  }

  // Runs segment j from its checkpoint, filling the segment buffers, and the segment's rows
  // of the layer output `out` ([T*B x H]) unless it is null (backward's recomputation).
  void forward_segment(Tape<T>& tape, Index j, T* out = nullptr) const {
    const Index H = hidden, GH = gates() * H;
    const Span s = span(j);
    const Index cols = s.count * batch;
    const T* X = x_columns(tape, s.first * batch);
    const T* bih = has_bias ? tape.value(b_ih).data() : nullptr;
    const T* bhh = has_bias ? tape.value(b_hh).data() : nullptr;
    // Biases, then the input projection of every step of the segment, in column ranges
    // (one per thread) and chunks of steps. The two biases are summed once, so A is written
    // in one pass.
    if (has_bias) {
      MatrixMap<T> sum = map(bias, GH, 1);
      sum = ConstMatrixMap<T>(bih, GH, 1);
      const Index rows = kind == CellKind::GRU ? 2 * H : GH;  // GRU's b_hn goes with W_hn h
      sum.topRows(rows) += ConstMatrixMap<T>(bhh, rows, 1);
    }
    // A's columns [r.begin, r.begin + r.count) = biases + their input projections, a chunk
    // of pipeline_chunk() steps at a time (see w_in).
    auto project = [&](Index part, Range r) {
      const Index chunk = pipeline_chunk() * batch, end = r.begin + r.count;
      T* buffer = projection_buffers + part * projection_stride;
      for (Index c = r.begin; c < end; c += chunk) {
        const Index count = std::min(chunk, end - c);
        MatrixMap<T> A = map(acts + c * GH, GH, count);
        if (has_bias)
          A.colwise() = map(bias, GH, 1).col(0);
        else
          A.setZero();
        if (feature_major)
          w_in.template multiply_add<Eigen::ColMajor>(X + c * input_size(), input_size(), count,
                                                      A.data(), GH, buffer);
        else
          w_in.template multiply_add<Eigen::RowMajor>(X + c, n(), count, A.data(), GH, buffer);
      }
    };
    if (pipelined()) {
      forward_pipelined(j, bhh, out, project);
      return;
    }
    if (threads == 1) {
      forward_interleaved(j, bhh, out, project);
      return;
    }
    gradflow::detail::parallel_parts(
        threads, [&](Index p) { project(p, gradflow::detail::split(cols, threads, p)); });
    gradflow::detail::parallel_parts(
        batch_parts, [&](Index p) { forward_steps(j, batch_range(p), bhh, p, out); });
  }

  // Segment j's forward on one thread: a chunk of pipeline_chunk() steps projected, then
  // the loop over those steps, and so on, so that the loop finds each step's projection in
  // cache; projected whole first, the segment's A (26 MB at LSTM L) had left it by then.
  // ab --lockstep new / old, Zen 5, 30 pairs x 2: lstm M/1 0.973, gru M/1 0.978, gru LONG/1
  // 0.975, lstm LONG/1 0.975 (20 x 2), S/1 0.97-0.99, L/1 and rnn_tanh M/1, LONG/1
  // 0.991-1.002.
  template <typename Project>
  void forward_interleaved(Index j, const T* bhh, T* out, Project& project) const {
    const Index count = span(j).count;
    for (Index first = 0; first < count;) {
      const Index last = std::min(count, first + pipeline_chunk());
      project(Index(0), step_columns(j, first, last));
      forward_steps(j, Range{0, batch}, bhh, 0, out, first, [last](Index i) { return i < last; });
      first = last;
    }
  }

  // Whether the two phases of each pass run side by side (forward_pipelined,
  // backward_pipelined): one thread runs the step loop over the whole batch, the other the
  // whole-sequence GEMMs of the steps ahead of it (forward) or finished by it (backward).
  // Eigen's kernel runs faster on more columns (Zen 5, [512 x 512] per-step products:
  // 188-193 GFLOP/s on 64 columns, 147-155 per thread on 32 each). Two threads only: with
  // more, all but two would wait for the loop.
  bool pipelined() const { return threads == 2; }

  // The segment columns of the steps the forward loop of segment j processes
  // [first, last)-th (the backward loop processes them in the opposite order).
  Range step_columns(Index j, Index first, Index last) const {
    const Index count = span(j).count, B = batch;
    if (reverse) return {(count - last) * B, (last - first) * B};
    return {first * B, (last - first) * B};
  }

  // Steps in the projection chunk that starts at processed step `first` of `count`:
  // pipeline_chunk() steps, and halves of what is left at the end, so that the loop waits
  // little for the last chunk.
  Index projection_chunk(Index first, Index count) const {
    return std::max<Index>(1, std::min(pipeline_chunk(), (count - first) / 2));
  }

  // Segment j's forward at 2 threads: part 0 projects chunks of steps (projection_chunk) in
  // processing order and publishes how many are done; part 1 runs the step loop over the
  // whole batch, each step waiting until its projection is published. Part 0 produces, so
  // when parallel_parts runs the parts one after the other (no second thread) it is the
  // plain sequential order. Against both phases cut by threads, ab --lockstep (new / old,
  // Zen 5, 20 pairs x 4 restarts): M 0.960-0.972, L 0.978-0.996, LONG 0.899-0.938, S
  // 0.992-1.007 (60 pairs). The projection and the loop over the whole batch take about
  // as long (lstm M: 12.9 and 12.8 ms a step, the loop waiting 1.0 of them).
  //
  // Both parts first project half of the first pipeline_chunk() steps' columns each, so the
  // loop starts with a chunk ahead of it. Starting with one step projected by part 0 alone,
  // the loop waited for it and then for the next chunk: 2.5 ms of lstm L/2's 106 ms step in
  // spin-waits (timers around them), 0.26 ms after. ab --lockstep new / old, Zen 5, 20
  // pairs x 2: lstm L/2 0.987, gru L/2 0.992, rnn_tanh L/2 0.990, lstm M/2 0.992, gru M/2
  // 0.987, rnn_tanh M/2 1.000.
  //
  // The loop has the gate maths too, so part 0 finishes first (lstm L/2: 37.8 ms against
  // 45.2). It then offers to help, and the loop hands it the second half of the batch from
  // its next step on: the samples never mix, so from there each part runs the steps left
  // over its own columns, as the unpipelined loop does. ab --lockstep new / old, Zen 5, 20
  // pairs x 3: L/2 0.979-0.984, M/2 0.967-0.977, LONG/2 0.909-0.968, S/2 0.93-0.96.
  template <typename Project>
  void forward_pipelined(Index j, const T* bhh, T* out, Project& project) const {
    const Index count = span(j).count, B = batch;
    std::atomic<Index> projected{0};  // steps whose input projection is in A
    // Part p's half of the columns of the first chunk, which both parts project.
    const Index first_chunk = std::min(pipeline_chunk(), count);
    auto first_chunk_half = [&](Index p) {
      const Range all = step_columns(j, 0, first_chunk);
      const Range half = gradflow::detail::split(all.count, 2, p);
      return Range{all.begin + half.begin, half.count};
    };
    std::atomic<bool> projector_done{false};
    HandOff hand_off(count);
    gradflow::detail::parallel_parts(2, [&](Index p) {
      if (p == 0) {
        {
          // The loop waits on projector_done too: it is set however part 0 ends (a GEMM may
          // throw), and the loop then stops at the first step that has no projection.
          const gradflow::detail::SetOnExit done{projector_done};
          project(Index(0), first_chunk_half(0));
          projected.store(first_chunk, std::memory_order_release);
          for (Index first = first_chunk; first < count;) {
            const Index last = first + projection_chunk(first, count);
            project(Index(0), step_columns(j, first, last));
            projected.store(last, std::memory_order_release);
            first = last;
          }
        }
        // The halves are the step loops' batch parts, so there must be two (a hook makes it
        // one; see fused_recurrence()).
        const Index first = batch_parts == 2 ? hand_off.take() : count;
        if (first < count) forward_steps(j, batch_range(1), bhh, 1, out, first);
        return;
      }
      project(Index(1), first_chunk_half(1));
      const typename HandOff::Loop loop(hand_off);
      // Step-loop buffer 0; the projector uses GEMM buffers, then, helping, buffer 1.
      const Index stop = forward_steps(j, Range{0, B}, bhh, 0, out, 0, [&](Index i) {
        if (hand_off.give(i)) return false;
        return gradflow::detail::wait_for_count(projected, i + 1, projector_done);
      });
      if (stop < count && hand_off.given()) forward_steps(j, batch_range(0), bhh, 0, out, stop);
    });
  }

  // How the forward loop hands half of the batch to the projecting part once that is idle.
  // The projector offers only if the loop has started: when parallel_parts runs the parts
  // one after the other, the loop starts after part 0 has returned, and nothing waits.
  class HandOff {
   public:
    explicit HandOff(Index steps) : steps_(steps) {}

    // The projector: the step to start helping at (the segment's step count: none), once
    // the loop has answered.
    Index take() {
      if (!loop_started_.load(std::memory_order_acquire)) return steps_;
      offered_.store(true, std::memory_order_release);
      Index first;
      while ((first = from_.load(std::memory_order_acquire)) == kNotYet)
        gradflow::detail::spin_pause();
      return first;
    }
    // The loop, before its step i: whether it hands the steps from i on over.
    bool give(Index i) {
      if (!offered_.load(std::memory_order_acquire)) return false;
      from_.store(i, std::memory_order_release);
      return true;
    }
    bool given() const { return from_.load(std::memory_order_relaxed) != kNotYet; }

    // Held by the loop: marks it started, and answers "none" however it ends without
    // handing over (it finished, or a step threw), so that a waiting projector goes on.
    class Loop {
     public:
      explicit Loop(HandOff& h) : hand_off_(h) {
        hand_off_.loop_started_.store(true, std::memory_order_release);
      }
      ~Loop() {
        Index expected = kNotYet;
        hand_off_.from_.compare_exchange_strong(expected, hand_off_.steps_,
                                                std::memory_order_acq_rel);
      }
      Loop(const Loop&) = delete;
      Loop& operator=(const Loop&) = delete;

     private:
      HandOff& hand_off_;
    };

   private:
    static constexpr Index kNotYet = -1;
    const Index steps_;
    std::atomic<bool> loop_started_{false}, offered_{false};
    std::atomic<Index> from_{kNotYet};  // the first step the projector takes
  };

  // forward_steps() without a pipeline: A holds every step's input projection.
  struct AllProjected {
    bool operator()(Index) const { return true; }
  };

  // The step loop of segment j for batch columns `r`, from its `first`-th processed step on.
  // A has the i-th processed step's input projection once ready(i) returns true; false
  // stops the loop before step i. Returns the step it stopped before (the segment's step
  // count if none).
  template <typename Ready = AllProjected>
  Index forward_steps(Index j, Range r, const T* bhh, Index part, T* out, Index first = 0,
                      Ready&& ready = Ready{}) const {
    const Index H = hidden, B = batch, GH = gates() * H, b0 = r.begin, nb = r.count;
    const Span s = span(j);
    if (nb == 0) return s.count;
    const Index cols = s.count * B;
    MatrixMap<T> A = map(acts, GH, cols), Hs = map(hs, H, cols);
    MatrixMap<T> C = map(cells, kind == CellKind::LSTM ? H : 0, cols);
    MatrixMap<T> HN = map(hn, kind == CellKind::GRU ? H : 0, cols);
    T* rhs_buffer = rhs_buffers + part * rhs_stride;
    for (Index i = first; i < s.count; ++i) {
      if (!ready(i)) return i;
      const Index k = j * segment + i, t = step_at(k), col = (t - s.first) * B + b0;
      const Index prev_col = (i == 0 ? 0 : (step_at(k - 1) - s.first) * B) + b0;
      const T* prev_h = i == 0 ? checkpoint(h_ck, j) + b0 * H : hs + prev_col * H;
      const T* prev_c = kind != CellKind::LSTM ? nullptr
                        : i == 0               ? checkpoint(c_ck, j) + b0 * H
                                               : cells + prev_col * H;
      ConstMatrixMap<T> hp(prev_h, H, nb);
      auto a = A.middleCols(col, nb);
      auto h = Hs.middleCols(col, nb);
      // The next step's input projections, written long before, are in memory: asking for
      // them now hides that wait (see prefetch_next_step).
      if (i + 1 < s.count && prefetch_next_step(nb))
        gradflow::detail::prefetch_block(A.data() + ((step_at(k + 1) - s.first) * B + b0) * GH,
                                         GH * nb);
      // a += W_hh h_{t-1}, every gate in one product (GRU: the r, z rows only).
      const bool zero_prev = k == 0 && zero_h0;
      if (!zero_prev) w_gates.multiply_add(prev_h, H, nb, a.data(), GH, rhs_buffer);
      switch (kind) {
        case CellKind::RnnTanh:
        case CellKind::RnnRelu:
          if (kind == CellKind::RnnTanh)
            h = a.array().tanh().matrix();
          else
            h = a.cwiseMax(T(0));
          break;
        case CellKind::LSTM: {
          for_gate_columns(nb, [&](Index c0, Index w) {
            auto ab = a.middleCols(c0, w);
            ab.topRows(2 * H) = ab.topRows(2 * H).array().logistic().matrix();
            ab.middleRows(2 * H, H) = ab.middleRows(2 * H, H).array().tanh().matrix();
            ab.bottomRows(H) = ab.bottomRows(H).array().logistic().matrix();
            auto c = C.middleCols(col + c0, w);
            c = ab.middleRows(H, H).cwiseProduct(ConstMatrixMap<T>(prev_c + c0 * H, H, w)) +
                ab.topRows(H).cwiseProduct(ab.middleRows(2 * H, H));
            h.middleCols(c0, w) = ab.bottomRows(H).cwiseProduct(c.array().tanh().matrix());
          });
          break;
        }
        case CellKind::GRU: {
          auto hn_t = HN.middleCols(col, nb);
          if (has_bias)
            hn_t.colwise() = ConstMatrixMap<T>(bhh + 2 * H, H, 1).col(0);
          else
            hn_t.setZero();
          if (!zero_prev) w_n.multiply_add(prev_h, H, nb, hn_t.data(), H, rhs_buffer);
          for_gate_columns(nb, [&](Index c0, Index w) {
            auto ab = a.middleCols(c0, w);
            ab.topRows(2 * H) = ab.topRows(2 * H).array().logistic().matrix();
            ab.bottomRows(H) =
                (ab.bottomRows(H) + ab.topRows(H).cwiseProduct(hn_t.middleCols(c0, w)))
                    .array()
                    .tanh()
                    .matrix();
            // h = (1 - z) n + z h_prev = n + z (h_prev - n)
            h.middleCols(c0, w) = ab.bottomRows(H) + ab.middleRows(H, H).cwiseProduct(
                                                         hp.middleCols(c0, w) - ab.bottomRows(H));
          });
          break;
        }
      }
      if (lengths != nullptr) {
        for (Index b = 0; b < nb; ++b) {
          if (!padded(t, b0 + b)) continue;
          h.col(b) = hp.col(b);
          if (kind == CellKind::LSTM) C.col(col + b) = ConstMatrixMap<T>(prev_c, H, nb).col(b);
        }
      }
      // The step's output rows, written by this thread while h is in cache (a separate
      // transpose of the whole segment afterwards was a serial pass over memory).
      if (out != nullptr && feature_major) {
        MatrixMap<T> out_t = map(out + (t * B + b0) * H, H, nb);
        out_t = h;
        if (lengths != nullptr)
          for (Index b = 0; b < nb; ++b)
            if (padded(t, b0 + b)) out_t.col(b).setZero();
      } else if (out != nullptr) {
        using gradflow::detail::TransposeMode;
        gradflow::detail::transpose_into<TransposeMode::Assign>(h.data(), H, H, nb,
                                                                out + t * B + b0, n());
        if (lengths != nullptr)
          for (Index b = 0; b < nb; ++b)
            if (padded(t, b0 + b)) MatrixMap<T>(out, n(), H).row(t * B + b0 + b).setZero();
      }
    }
    return s.count;
  }

  // Where the backward pass writes: taken before any parallel loop, since Tape::grad
  // creates a gradient on first use.
  struct Grads {
    T *w_ih, *w_hh, *b_ih, *b_hh, *x;
    bool x_fresh;  // x's gradient is new: dX is written over it, not added (see below)
  };
  // dX through the packed W_ih writes each row block of x's gradient once, so a gradient
  // that is new (Tape::fresh_grad) is written over, a row block at a time while it is in
  // cache, where grad() would first have zeroed all of it in memory (the memset was 0.8 % of
  // rnn_tanh L/1 by perf).
  Grads gradient_pointers(Tape<T>& tape) const {
    auto grad_or_null = [&tape](Var<T> v) {
      return tape.requires_grad(v) ? tape.grad(v).data() : nullptr;
    };
    const bool writes_dx = w_dx.packed() || w_in_t.packed();
    T* x_fresh = writes_dx && tape.requires_grad(x) ? tape.fresh_grad(x) : nullptr;
    return {grad_or_null(w_ih),
            grad_or_null(w_hh),
            has_bias ? grad_or_null(b_ih) : nullptr,
            has_bias ? grad_or_null(b_hh) : nullptr,
            x_fresh != nullptr ? x_fresh : grad_or_null(x),
            x_fresh != nullptr};
  }

  void backward(Tape<T>& tape, Var<T> out) const {
    const Index H = hidden, B = batch, GH = gates() * H;
    const bool lstm = kind == CellKind::LSTM, gru = kind == CellKind::GRU;
    auto g_out = tape.grad(out);
    // dG holds the pre-activation gradients of a segment's steps. LSTM and GRU write them
    // over the gate activations, which a step's backward reads last: no second [G*H x S*B]
    // buffer (16 MB at LSTM LONG) and one stream over memory per step instead of two. The
    // RNN's activations are its hidden states, which dW_hh still needs: dG of its own.
    // GRU's hidden-side gradients differ in the n rows only (r * dn instead of dn): those
    // rows are kept apart in dGn ([H x S*B]), and each step assembles its whole hidden-side
    // block for the W_hh^T product in step_dgh ([G*H x B]).
    const Index max_cols = std::min(segment, steps) * B;
    T* dG_data = lstm || gru ? acts : tape.scratch(GH, max_cols).data();
    T* dGn_data = gru ? tape.scratch(H, max_cols).data() : nullptr;
    T* step_dgh = gru ? tape.scratch(GH, B).data() : nullptr;
    // dh_{t-1} = W_hh^T dG_t: W_hh^T packed once (a row-major view of W_hh, no copy).
    using P = gradflow::detail::PackedLhs<T, Eigen::RowMajor>;
    P w_t;
    const T* Whh = tape.value(w_hh).data();
    w_t.pack(Whh, GH, H, GH, B, tape.scratch(P::packed_size(H, GH, B), 1).data(), threads);
    const Index bwd_stride = P::rhs_buffer_size(H, GH, B);
    T* bwd_buffers = tape.scratch(bwd_stride, batch_parts).data();
    const Grads grads = gradient_pointers(tape);
    const bool bias_grads = grads.b_ih != nullptr || grads.b_hh != nullptr;
    const Index sums_stride = bias_sums_rows();
    if (bias_grads) map(bias_grad, sums_stride, batch_parts).setZero();
    auto row_sums = [&](Index part) {
      return bias_grads ? bias_grad + part * sums_stride : nullptr;
    };

    map(work, H, B) = map(final_grad, final_rows_count(), H).topRows(B).transpose();
    if (lstm)
      map(work + 2 * H * B, H, B) =
          map(final_grad, final_rows_count(), H).bottomRows(B).transpose();
    for (Index j = segments(); j-- > 0;) {
      // The last segment's buffers are still those of the forward pass.
      if (j != segments() - 1) forward_segment(tape, j);
      if (pipelined()) {
        backward_pipelined(tape, j, g_out, w_t, bwd_buffers, dG_data, dGn_data, step_dgh,
                           row_sums(0), grads);
        continue;
      }
      if (threads == 1 && interleaved_backward()) {
        backward_interleaved(tape, j, g_out, w_t, bwd_buffers, dG_data, dGn_data, step_dgh,
                             row_sums(0), grads);
        continue;
      }
      const Index count = span(j).count;
      gradflow::detail::parallel_parts(batch_parts, [&](Index p) {
        backward_steps(j, batch_range(p), Range{0, count}, g_out, w_t, bwd_buffers + p * bwd_stride,
                       dG_data, dGn_data, step_dgh, row_sums(p));
      });
      accumulate_weight_grads(tape, j, Range{0, count * B}, dG_data, dGn_data, grads);
    }

    if (bias_grads) add_bias_grads(grads, map(bias_grad, sums_stride, batch_parts));
    // h0_grad, not a second query: it also decided whether the last step computed this dh.
    if (h0_grad) tape.grad(h0) += map(work, H, B).transpose();
    if (lstm && tape.requires_grad(c0)) tape.grad(c0) += map(work + 2 * H * B, H, B).transpose();
  }

  // Whether backward() on one thread computes the weight and input gradients of each chunk
  // of pipeline_chunk() steps right after the loop has run them, while their dG is in
  // cache, rather than of the whole segment after the loop: when dW_ih and dW_hh together
  // fit in half of L2, so that adding into them once per chunk stays in it, and a
  // segment's dG does not fit in L2. ab --lockstep new / old, Zen 5 (1 MiB L2), 30 pairs
  // x 2, in two runs: LONG/1 0.953-0.990, rnn_tanh M/1 0.984-0.997. Where dW is larger, the
  // passes over it cost more than dG's trip to memory: lstm L/1 1.063, gru L/1 1.109, lstm
  // M/1 1.003 (chunks of 2 x pipeline_chunk(): 1.008); where dG fits in L2 (S), 0.99-1.06.
  bool interleaved_backward() const {
    const std::ptrdiff_t l2 = Eigen::l2CacheSize(), scalar = sizeof(T);
    const Index GH = gates() * hidden, dw = GH * (input_size() + hidden) * scalar;
    const Index dG = GH * std::min(segment, steps) * batch * scalar;
    return dw <= l2 / 2 && dG > l2;
  }

  // Segment j's backward on one thread, a chunk of pipeline_chunk() steps at a time from the
  // last: the loop over the chunk's steps, then their weight and input gradients (see
  // interleaved_backward).
  void backward_interleaved(Tape<T>& tape, Index j, MatrixMap<T> g_out,
                            const gradflow::detail::PackedLhs<T, Eigen::RowMajor>& w_t,
                            T* bwd_buffer, T* dG, T* dGn, T* step_dgh, T* row_sums,
                            const Grads& grads) const {
    for (Index high = span(j).count, low; high > 0; high = low) {  // processed steps [low, high)
      low = std::max<Index>(0, high - pipeline_chunk());
      backward_steps(j, Range{0, batch}, Range{low, high - low}, g_out, w_t, bwd_buffer, dG, dGn,
                     step_dgh, row_sums);
      const Range columns = step_columns(j, low, high);
      weight_grads_of(tape, j, columns, Range{0, weight_grad_columns()}, columns, 0, dG, dGn,
                      grads);
    }
  }

  // Steps per chunk of gradient GEMMs in backward_pipelined: 160 batch columns (5 steps at
  // M, 3 at L, 20 at LONG). Against 5 steps everywhere: 8 and 12 steps measured the same at
  // M and L within 1 %, and 12 was 3 % faster at LONG (8 columns a step), 20 the same as 12.
  // Later (ab --lockstep against 160, 14 pairs): 128 columns, whole depth blocks, M/2 and
  // L/2 1.02-1.05, gru L/1 1.033; 256 columns 0.99-1.02.
  Index pipeline_chunk() const {
    constexpr Index kColumns = 160;
    return std::max<Index>(1, (kColumns + batch - 1) / batch);
  }

  // Segment j's backward at 2 threads: part 0 runs the step loop over the whole batch (more
  // columns per product than half the batch each, so a faster kernel), part 1 computes dW
  // and dX of each chunk of finished steps meanwhile, and both share what is left once the
  // loop ends, split as accumulate_weight_grads does. Against both phases cut by
  // threads, ab --lockstep (new / old, Zen 5, 30 pairs x 5 restarts): M 0.944-0.978, L
  // 0.974-0.999, LONG 0.938-0.948, S 0.99-1.02 (noise there is several %).
  void backward_pipelined(Tape<T>& tape, Index j, MatrixMap<T> g_out,
                          const gradflow::detail::PackedLhs<T, Eigen::RowMajor>& w_t, T* bwd_buffer,
                          T* dG, T* dGn, T* step_dgh, T* row_sums, const Grads& grads) const {
    const Index count = span(j).count;
    std::atomic<Index> finished{0};  // steps whose dG is complete, in processing order
    std::atomic<bool> loop_done{false};
    Index taken = 0;  // steps part 1 computed the gradients of
    gradflow::detail::parallel_parts(2, [&](Index p) {
      if (p == 0) {
        // Part 1 waits on loop_done: it is set however the loop ends (a hook may throw).
        const gradflow::detail::SetOnExit done{loop_done};
        backward_steps(j, Range{0, batch}, Range{0, count}, g_out, w_t, bwd_buffer, dG, dGn,
                       step_dgh, row_sums, &finished);
        return;
      }
      // Loop steps per step of gradient GEMMs, from the last chunk: a chunk is cut short
      // (or not started) when the loop would end first and leave part 0 waiting for it.
      double loop_pace = 0;
      while (taken < count) {
        // The first chunk is one step, so that this part starts as soon as the loop has
        // finished one (ab --lockstep against pipeline_chunk() steps, 20 pairs x 3: L/2
        // 0.982-1.000, M/2 0.980-0.993, lstm LONG/2 0.973, gru S/2 0.997).
        Index size = std::min(taken == 0 ? 1 : pipeline_chunk(), count - taken);
        gradflow::detail::wait_for_count(finished, taken + size, loop_done);
        if (loop_done.load(std::memory_order_acquire)) break;  // the rest goes to both
        const Index before = finished.load(std::memory_order_acquire);
        if (loop_pace > 0) size = std::min(size, Index(double(count - before) / loop_pace));
        if (size < 1) break;
        const Index want = taken + size;
        const Range columns = step_columns(j, count - want, count - taken);
        weight_grads_of(tape, j, columns, Range{0, weight_grad_columns()}, columns, 1, dG, dGn,
                        grads);
        loop_pace = double(finished.load(std::memory_order_acquire) - before) / double(size);
        taken = want;
      }
    });
    if (taken < count)
      accumulate_weight_grads(tape, j, step_columns(j, 0, count - taken), dG, dGn, grads);
  }

  // Runs fn(c0, w) for the batch columns [c0, c0 + w) of a step's nb, a block of about
  // 32 KiB of slab and states ((G + 4) H scalars a column) at a time, at least 4 columns:
  // a step's gate maths make several passes over its [G*H x nb] slab and [H x nb] states,
  // which at M and L (128-512 KiB) each streamed through L2; a block stays in L1 from one
  // pass to the next. S and LONG fit in one block. ab --lockstep new / old, Zen 5, 30 pairs
  // x 2: lstm M/1 0.984, L/1 0.991, M/2 0.983, L/2 0.978; gru M/1 0.997, L/2 0.993 (20 x 2:
  // gru L/1 0.993, M/2 1.003). Blocks of 4 at S measured 1.03-1.07 there.
  template <typename Fn>
  void for_gate_columns(Index nb, Fn&& fn) const {
    constexpr Index kBlockBytes = 32 * 1024, kMinColumns = 4;
    const Index column_bytes = (gates() + 4) * hidden * Index(sizeof(T));
    const Index width = std::max(kMinColumns, kBlockBytes / column_bytes);
    for (Index c0 = 0; c0 < nb; c0 += width) fn(c0, std::min(width, nb - c0));
  }

  // The backward step loop of segment j for batch columns `r` over the processed steps
  // `steps` (last first): fills their columns of dG (and dGn) and carries dh (and dc) in
  // their columns of `work`, so the steps before them can follow in another call. With
  // `row_sums` ([(G+1)*H], see bias_grad), adds each step's row sums of dG (and dGn) to it;
  // with `progress`, stores the number of steps done after each step.
  void backward_steps(Index j, Range r, Range steps, MatrixMap<T> g_out,
                      const gradflow::detail::PackedLhs<T, Eigen::RowMajor>& w_t, T* bwd_buffer,
                      T* dG_data, T* dGn_data, T* step_dgh, T* row_sums,
                      std::atomic<Index>* progress = nullptr) const {
    const Index H = hidden, B = batch, GH = gates() * H, b0 = r.begin, nb = r.count;
    if (nb == 0) return;
    const bool lstm = kind == CellKind::LSTM, gru = kind == CellKind::GRU;
    const Span s = span(j);
    const Index cols = s.count * B;
    // dh and dh_next trade buffers each step; dh ends in work's first block (see below).
    T* dh_data = work + b0 * H;
    T* dh_next_data = work + (B + b0) * H;
    MatrixMap<T> dc = map(work + (2 * B + b0) * H, H, nb),
                 tmp = map(work + (3 * B + b0) * H, H, nb);
    MatrixMap<T> A = map(acts, GH, cols), Hs = map(hs, H, cols);
    MatrixMap<T> C = map(cells, lstm ? H : 0, cols), HN = map(hn, gru ? H : 0, cols);
    MatrixMap<T> dG = map(dG_data, GH, cols), dGn = map(dGn_data, gru ? H : 0, cols);
    // The hidden-side gradients of this step: dG's own columns except for GRU.
    MatrixMap<T> dgh = map(gru ? step_dgh + b0 * GH : nullptr, GH, nb);
    for (Index i = steps.begin + steps.count; i-- > steps.begin;) {
      const Index k = j * segment + i, t = step_at(k), col = (t - s.first) * B + b0;
      const Index prev_col = (i == 0 ? 0 : (step_at(k - 1) - s.first) * B) + b0;
      const T* prev_h = i == 0 ? checkpoint(h_ck, j) + b0 * H : hs + prev_col * H;
      ConstMatrixMap<T> hp(prev_h, H, nb);
      MatrixMap<T> dh = map(dh_data, H, nb), dh_next = map(dh_next_data, H, nb);
      if (i > 0) prefetch_backward_step(s, k - 1, i - 1, b0, nb);
      if (feature_major) {
        ConstMatrixMap<T> g_t(g_out.data() + (t * B + b0) * H, H, nb);
        if (lengths == nullptr)
          dh += g_t;
        else
          for (Index b = 0; b < nb; ++b)
            if (!padded(t, b0 + b)) dh.col(b) += g_t.col(b);
      } else if (lengths == nullptr) {
        using gradflow::detail::TransposeMode;
        gradflow::detail::transpose_into<TransposeMode::Add>(g_out.data() + t * B + b0, n(), nb, H,
                                                             dh.data(), H);
      } else {
        for (Index b = 0; b < nb; ++b)
          if (!padded(t, b0 + b)) dh.col(b) += g_out.row(t * B + b0 + b).transpose();
      }
      if (hook != nullptr && *hook) {  // then there is one part: b0 = 0, nb = B
        MatrixMap<T> buffer = map(work + 4 * H * B, B, H);
        buffer = dh.transpose();
        (*hook)(layer, direction, t, ConstMatrixMap<T>(buffer.data(), B, H));
      }
      auto d = dG.middleCols(col, nb);
      switch (kind) {
        case CellKind::RnnTanh:
          d = (dh.array() * (T(1) - Hs.middleCols(col, nb).array().square())).matrix();
          break;
        case CellKind::RnnRelu:
          d = (Hs.middleCols(col, nb).array() > T(0)).select(dh.array(), T(0)).matrix();
          break;
        case CellKind::LSTM: {
          const T* prev_c = i == 0 ? checkpoint(c_ck, j) + b0 * H : cells + prev_col * H;
          if (lengths != nullptr) dh_next = dc;  // keep dc of padded columns
          for_gate_columns(nb, [&](Index c0, Index w) {
            auto ab = A.middleCols(col + c0, w).array();
            auto db = dG.middleCols(col + c0, w);
            auto dhb = dh.middleCols(c0, w).array();
            auto dcb = dc.middleCols(c0, w);
            auto tb = tmp.middleCols(c0, w);
            auto ig = ab.topRows(H), f = ab.middleRows(H, H), g = ab.middleRows(2 * H, H),
                 o = ab.bottomRows(H);
            // d is a (see backward()): each gate's rows are overwritten once nothing else
            // reads them; tmp holds what is still needed meanwhile.
            tb = C.middleCols(col + c0, w).array().tanh().matrix();  // tanh(c_t)
            auto tc = tb.array();
            dcb.array() += dhb * o * (T(1) - tc.square());
            db.bottomRows(H) = (dhb * tc * o * (T(1) - o)).matrix();
            tb = (dcb.array() * ig * (T(1) - g.square())).matrix();  // d of g
            db.topRows(H) = (dcb.array() * g * ig * (T(1) - ig)).matrix();
            db.middleRows(2 * H, H) = tb;
            tb = (dcb.array() * f).matrix();  // dc of the step before
            db.middleRows(H, H) =
                (dcb.array() * ConstMatrixMap<T>(prev_c + c0 * H, H, w).array() * f * (T(1) - f))
                    .matrix();
            dcb = tb;
          });
          if (lengths != nullptr)
            for (Index b = 0; b < nb; ++b)
              if (padded(t, b0 + b)) dc.col(b) = dh_next.col(b);
          break;
        }
        case CellKind::GRU: {
          for_gate_columns(nb, [&](Index c0, Index w) {
            auto ab = A.middleCols(col + c0, w).array();
            auto db = dG.middleCols(col + c0, w);
            auto dhb = dh.middleCols(c0, w).array();
            auto tb = tmp.middleCols(c0, w);
            auto dgnb = dGn.middleCols(col + c0, w);
            auto r_gate = ab.topRows(H), z = ab.middleRows(H, H), nn = ab.bottomRows(H);
            // dn_pre = dh (1 - z)(1 - n^2); dr_pre = dn_pre hn r (1 - r);
            // dz_pre = dh (h_prev - n) z (1 - z). d is a (see backward()), so dn_pre waits in
            // tmp until nothing reads n. The direct path dh_{t-1} = z dh starts dh_next.
            dh_next.middleCols(c0, w) = (dhb * z).matrix();
            tb = (dhb * (T(1) - z) * (T(1) - nn.square())).matrix();
            db.middleRows(H, H) =
                (dhb * (hp.middleCols(c0, w).array() - nn) * z * (T(1) - z)).matrix();
            dgnb = (tb.array() * r_gate).matrix();
            db.topRows(H) =
                (tb.array() * HN.middleCols(col + c0, w).array() * r_gate * (T(1) - r_gate))
                    .matrix();
            db.bottomRows(H) = tb;
            dgh.middleCols(c0, w).topRows(2 * H) = db.topRows(2 * H);
            dgh.middleCols(c0, w).bottomRows(H) = dgnb;
          });
          break;
        }
      }
      if (lengths != nullptr)
        for (Index b = 0; b < nb; ++b)
          if (padded(t, b0 + b)) {
            d.col(b).setZero();
            if (gru) {
              dGn.col(col + b).setZero();
              dgh.col(b).setZero();
            }
          }
      // The bias gradients' row sums while the step's dG is in cache, not in a pass over all
      // of dG after the loop, which came from memory at M and L (0.45 % of gru L/1, perf).
      if (row_sums != nullptr) {
        ConstMatrixMap<T> one(ones, nb, 1);
        map(row_sums, GH, 1).noalias() += d * one;
        if (gru) map(row_sums + GH, H, 1).noalias() += dGn.middleCols(col, nb) * one;
      }
      // dL/dh_{t-1}: through the recurrent GEMM, plus GRU's direct z * dh path (above).
      if (k > 0 || h0_grad) {
        if (!gru) dh_next.setZero();
        w_t.multiply_add(gru ? dgh.data() : d.data(), GH, nb, dh_next.data(), H, bwd_buffer);
      }
      if (lengths != nullptr)
        for (Index b = 0; b < nb; ++b)
          if (padded(t, b0 + b)) dh_next.col(b) = dh.col(b);
      std::swap(dh_data, dh_next_data);
      if (progress != nullptr) progress->store(s.count - i, std::memory_order_release);
    }
    // One copy per segment instead of one swap of contents per step.
    if (dh_data != work + b0 * H) map(work + b0 * H, H, nb) = map(dh_data, H, nb);
  }

  // Weight and input gradients of segment j's columns `columns` (whole steps): GEMMs
  // over all of them (dW_hh and dW_ih in one pass over dG), one range of output columns
  // per thread: of [dW_hh | dW_ih] (H + I), and of dX.
  // The weight gradients are cut by columns, not rows: a thread then packs all of dG but
  // only its own columns' right-hand side (H_prev or X), where cut by rows each thread
  // packed all of H_prev and X. Their row-major packing runs at about half the speed of
  // dG's (Zen 5, from memory: 10 against 20 GB/s), and perf put it at 4.5 % of rnn_tanh
  // L/2's samples, most of it twice over. ab --lockstep new / old, 120 pairs over 12
  // restarts: rnn_tanh L/2 0.983 (94 won), M/2 0.986; gru M/2 0.986, L/2 0.996; lstm (as
  // many rows of dG as columns of H_prev and X together, so the same packing) 1.000-1.001.
  void accumulate_weight_grads(const Tape<T>& tape, Index j, Range columns, const T* dG,
                               const T* dGn, const Grads& grads) const {
    constexpr Index align = 16;  // dX's column ranges start on a 64-byte boundary (float)
    constexpr Index nr = Eigen::internal::gebp_traits<T, T>::nr;  // whole packed panels
    gradflow::detail::parallel_parts(threads, [&](Index p) {
      const Range k = gradflow::detail::split(weight_grad_columns(), threads, p, nr);
      const Range c = gradflow::detail::split(columns.count, threads, p, align);
      weight_grads_of(tape, j, columns, k, Range{columns.begin + c.begin, c.count}, p, dG, dGn,
                      grads);
    });
  }

  // Part `part`'s share of the gradients of segment j's columns `columns`: columns `k` of
  // [dW_hh | dW_ih] (dW_hh's H, then dW_ih's I), and the rows `dx` (segment columns, inside
  // `columns`) of dX.
  // h_prev of step t is step t-1 (t+1 reversed); the segment's first step reads its checkpoint.
  void weight_grads_of(const Tape<T>& tape, Index j, Range columns, Range k, Range dx, Index part,
                       const T* dG, const T* dGn, const Grads& grads) const {
    const Index B = batch, H = hidden, GH = gates() * H, I = input_size(), N = n();
    const Span s = span(j);
    const Index cols = s.count * B;
    const T* entry = checkpoint(h_ck, j);
    const T* X = x_columns(tape, s.first * B);
    const T* Wih = tape.value(w_ih).data();
    // The entry step's columns (the segment's first step in processing order) take h_prev
    // from the checkpoint; the others (`main`) from the hidden states one step before.
    const Index entry_col = reverse ? cols - B : 0;
    const bool has_entry = columns.begin <= entry_col && entry_col < columns.begin + columns.count;
    Range main = columns;
    if (has_entry) main = {reverse ? columns.begin : B, columns.count - B};
    // The entry's h_prev is h0 in segment 0: when that is zero, dW_hh gets nothing from it
    // (1/(6T) of a step's flops; ab --lockstep, 20 pairs x 3: L/1 0.995-0.998, L/2 0.993).
    const bool zero_entry = j == 0 && zero_h0;
    const Index prev_offset = reverse ? B : -B;  // h_prev's column, relative to dG's
    // dW_hh = dG H_prev^T (GRU's n rows: dGn H_prev^T) and dW_ih = dG X in one pass, which
    // packs each of dG, dGn, X and H_prev once (see gemm_add_shared).
    const bool hh = grads.w_hh != nullptr, ih = grads.w_ih != nullptr;
    // Columns k of [dW_hh | dW_ih]: dW_hh's [hh_begin, + hh_count), dW_ih's [ih_begin, +
    // ih_count); none of a weight that takes no gradient (its result is null).
    const Index k_end = k.begin + k.count;
    const Index hh_begin = std::min(k.begin, H), ih_begin = std::max(k.begin, H) - H;
    const Index hh_count = hh ? std::min(k_end, H) - hh_begin : 0;
    const Index ih_count = ih ? std::max(k_end, H) - H - ih_begin : 0;
    T* const dw_hh = hh ? grads.w_hh + hh_begin * GH : nullptr;
    T* const dw_ih = ih ? grads.w_ih + ih_begin * GH : nullptr;
    using gradflow::detail::RhsAndResult;
    using gradflow::detail::SharedLhs;
    // The pieces of the left-hand sides (all G*H rows), at dG's column `col`: where dW_hh
    // reads dG, one piece for both products; GRU's n rows, dG for dW_ih and dGn for dW_hh.
    auto pieces_at = [&](Index col, SharedLhs<T>* pieces) {
      Index count = 0;
      hidden_side_rows(dG, dGn, [&](Index row, Index rows, const T* dGh, Index stride) {
        if (dGh == dG + row) {
          pieces[count++] = {dGh + col * stride, stride, rows, row, hh, ih};
          return;
        }
        pieces[count++] = {dG + row + col * GH, GH, rows, row, false, ih};
        pieces[count++] = {dGh + col * stride, stride, rows, row, hh, false};
      });
      return count;
    };
    // Calls run(rhs) with dW_ih's right-hand side from dG's column `col` on: X, or X^T (the
    // columns of x, row-major) with feature_major.
    auto with_x_rhs = [&](Index col, auto&& run) {
      if (feature_major)
        run(RhsAndResult<T, Eigen::RowMajor>{ih_count, X + col * I + ih_begin, I, dw_ih, GH});
      else
        run(RhsAndResult<T, Eigen::ColMajor>{ih_count, X + col + ih_begin * N, N, dw_ih, GH});
    };
    SharedLhs<T> pieces[3];
    if (main.count > 0) {
      const Index count = pieces_at(main.begin, pieces);
      const RhsAndResult<T, Eigen::RowMajor> h_prev{
          hh_count, hs + (main.begin + prev_offset) * H + hh_begin, H, dw_hh, GH};
      with_x_rhs(main.begin, [&](const auto& x_rhs) {
        gemm_shared(part, main.count, pieces, count, h_prev, x_rhs);
      });
    }
    if (has_entry) {
      const Index count = pieces_at(entry_col, pieces);
      const RhsAndResult<T, Eigen::RowMajor> h_entry{zero_entry ? 0 : hh_count, entry + hh_begin, H,
                                                     dw_hh, GH};
      with_x_rhs(entry_col,
                 [&](const auto& x_rhs) { gemm_shared(part, B, pieces, count, h_entry, x_rhs); });
    }
    if (grads.x != nullptr && dx.count > 0 && feature_major) {
      input_grad_columns(part, s.first * B + dx.begin, dx.count, dG + dx.begin * GH, Wih, grads);
    } else if (grads.x != nullptr && dx.count > 0) {  // dX = dG^T W_ih
      const T* dG_rows = dG + dx.begin * GH;
      T* dX_rows = grads.x + s.first * B + dx.begin;
      if (w_dx.packed())
        w_dx.template multiply_add<Eigen::RowMajor>(dG_rows, GH, dx.count, dX_rows, N,
                                                    buffer_for(part, w_dx.lhs_buffer_size()),
                                                    grads.x_fresh);
      else
        gemm<Eigen::RowMajor, Eigen::ColMajor>(part, dx.count, I, GH, dG_rows, GH, Wih, GH, dX_rows,
                                               N);
    }
  }

  // Rows of one step-loop part's bias sums (a column of bias_grad): dG's G*H, then dGn's H
  // (used by GRU only).
  Index bias_sums_rows() const { return (gates() + 1) * hidden; }

  // Adds the step loops' row sums (`sums`, one column per part, see bias_grad; the parts are
  // folded into the first column) to the bias gradients: b_ih and b_hh get the sums of dG, except
  // GRU's n rows of b_hh (b_hn), which get those of dGn. Summing rows in the step loops, not with
  // rowwise().sum() over dG after them: that walks each row of a column-major matrix with a stride
  // (25.8 ms against 0.19 ms for a GEMV over [1024 x 3200]).
  void add_bias_grads(const Grads& grads, MatrixMap<T> sums) const {
    const Index H = hidden, GH = gates() * H;
    for (Index p = 1; p < sums.cols(); ++p) sums.col(0) += sums.col(p);
    const auto dG_sums = sums.col(0).head(GH);
    if (grads.b_ih != nullptr) map(grads.b_ih, GH, 1) += dG_sums;
    if (grads.b_hh == nullptr) return;
    MatrixMap<T> b_hh = map(grads.b_hh, GH, 1);
    if (kind != CellKind::GRU) {
      b_hh += dG_sums;
      return;
    }
    b_hh.topRows(2 * H) += dG_sums.head(2 * H);
    b_hh.bottomRows(H) += sums.col(0).segment(GH, H);
  }

  // Calls fn(row, count, data, stride) for the pieces of a segment's hidden-side gradients
  // dGh: dG's G*H rows, except GRU's n rows (from 2H on), which are dGn's.
  template <typename Fn>
  void hidden_side_rows(const T* dG, const T* dGn, Fn&& fn) const {
    const Index GH = gates() * hidden, n_row = 2 * hidden;
    if (dGn == nullptr) {
      fn(Index(0), GH, dG, GH);
      return;
    }
    fn(Index(0), n_row, dG, GH);
    fn(n_row, hidden, dGn, hidden);
  }

  Index input_size() const { return w_ih.cols(); }
  // Columns of [dW_hh | dW_ih], the range weight_grads_of() cuts between threads.
  Index weight_grad_columns() const { return hidden + input_size(); }

  // x's value from its step-sample column (feature_major) or row `col` on.
  const T* x_columns(const Tape<T>& tape, Index col) const {
    return tape.value(x).data() + col * (feature_major ? input_size() : 1);
  }

  // feature_major's dX: columns [col, col + count) of x's [I x (T*B)] gradient get W_ih^T dG
  // (dG's matching columns at `dG`), a chunk of pipeline_chunk() steps at a time through the
  // once-packed W_ih^T (w_in_t), each chunk zeroed first, in cache, when the gradient is
  // new. BLAS builds add Eigen's or the BLAS's product instead.
  void input_grad_columns(Index part, Index col, Index count, const T* dG, const T* Wih,
                          const Grads& grads) const {
    const Index GH = gates() * hidden, I = input_size();
    T* dX = grads.x + col * I;
    if (!w_in_t.packed()) {
      gemm<Eigen::RowMajor, Eigen::ColMajor>(part, I, count, GH, Wih, GH, dG, GH, dX, I);
      return;
    }
    const Index chunk = pipeline_chunk() * batch;
    T* buffer = buffer_for(part, input_grad_buffer_size());
    for (Index c = 0; c < count; c += chunk) {
      const Index m = std::min(chunk, count - c);
      if (grads.x_fresh) map(dX + c * I, I, m).setZero();
      w_in_t.multiply_add(dG + c * GH, GH, m, dX + c * I, I, buffer);
    }
  }

  // res += lhs * rhs on this thread (part `part`): Eigen's GEMM with packing buffers from
  // gemm_buffers, or the BLAS.
  template <int LhsOrder, int RhsOrder>
  void gemm(Index part, Index rows, Index cols, Index depth, const T* lhs, Index lhs_stride,
            const T* rhs, Index rhs_stride, T* res, Index res_stride) const {
    gradflow::detail::gemm_add<LhsOrder, RhsOrder>(
        rows, cols, depth, lhs, lhs_stride, rhs, rhs_stride, res, res_stride,
        [this, part](Index size) { return buffer_for(part, size); }, gemm_capacity);
  }

  // Part `part`'s packing buffer, of at least `size` scalars.
  T* buffer_for(Index part, Index size) const {
    if (size > gemm_capacity) throw std::logic_error("FusedRecurrence: GEMM buffer too small");
    return gemm_buffers + part * gemm_capacity;
  }

  // gemm_add_shared() on this thread (part `part`), with its packing buffer.
  template <int Order1, int Order2>
  void gemm_shared(Index part, Index depth, const gradflow::detail::SharedLhs<T>* pieces,
                   Index piece_count, const gradflow::detail::RhsAndResult<T, Order1>& first,
                   const gradflow::detail::RhsAndResult<T, Order2>& second) const {
    gradflow::detail::gemm_add_shared(
        depth, pieces, piece_count, first, second,
        [this, part](Index size) { return buffer_for(part, size); }, gemm_capacity);
  }

  // Floats of the right-hand side buffer of feature_major's dX through w_in_t.
  Index input_grad_buffer_size() const {
    using P = gradflow::detail::PackedLhs<T, Eigen::RowMajor>;
    return P::rhs_buffer_size(input_size(), gates() * hidden, pipeline_chunk() * batch);
  }

  // The largest packing buffer of the whole-segment GEMMs above (full and last segment,
  // uncut: buffer_bound() also bounds every part's). The chunks of backward_pipelined are
  // shallower, and their blocking is fitted to this size (ProvidedBlocking::fit,
  // SharedBlocking).
  Index gemm_buffer_size() const {
    using Blocking = gradflow::detail::ProvidedBlocking<T>;
    const Index GH = gates() * hidden, H = hidden, I = input_size(), B = batch;
    Index size = 0;
    for (Index cols : {segment * batch, span(segments() - 1).count * batch}) {
      // dX as one Eigen product would block it. Only BLAS builds (no buffer) run that
      // product now, but the 2-thread chunks' blockings are fitted to this size as measured.
      if (cols > 0 && I > 0 && GH > 0) size = std::max(size, Blocking::buffer_bound(cols, I, GH));
      if (feature_major && cols > 0 && I > 0 && GH > 0)  // dX^T, the same product transposed
        size = std::max(size, Blocking::buffer_bound(I, cols, GH));
      // The weight gradients (gemm_shared). Row blocks outermost (SharedBlocking::rows_outer)
      // take both right-hand sides packed whole: 13 MB over a whole segment at L, at 1
      // thread. At 2 threads the chunks of backward_pipelined (160 columns deep) fit them in
      // the buffer without, and the columns of dW left after the loop are split in two.
      for (Index depth : {cols - B, B})
        if (depth > 0)
          size = std::max(
              size, gradflow::detail::SharedBlocking<T>::bound(GH, H, I, depth, !pipelined()));
    }
    // dX through the packed W_ih: a row block of dG^T at a time.
    if (w_dx.packed()) size = std::max(size, w_dx.lhs_buffer_size());
    if (w_in_t.packed()) size = std::max(size, input_grad_buffer_size());
    return size;
  }
};

/// The two nodes one fused layer-direction records.
template <typename T>
struct FusedOutputs {
  Var<T> output;       ///< [(T*B) x H] ([H x (T*B)] feature_major): every step's output,
                       ///< time-major, zero at padded steps
  Var<T> final_state;  ///< [B x H] h_n, then [B x H] c_n for LSTM
};

/// Records one fused layer-direction; see FusedRecurrence. `h0`/`c0` are [B x H] Vars;
/// `checkpoint_every` is the segment length in steps (0: no checkpointing); `feature_major`:
/// x and the output are [features x (T*B)] (see FusedRecurrence::feature_major).
template <typename T>
FusedOutputs<T> fused_recurrence(CellKind kind, bool reverse, Index steps, Index batch, Var<T> x,
                                 Var<T> h0, Var<T> c0, Var<T> w_ih, Var<T> w_hh, Var<T> b_ih,
                                 Var<T> b_hh, const T* lengths, const HiddenGradHook<T>* hook,
                                 Index layer, Index direction, Index checkpoint_every,
                                 const char* name, bool feature_major = false) {
  Tape<T>& tape = x.tape();
  const Index H = w_hh.cols(), G = gate_count(kind);
  const bool lstm = kind == CellKind::LSTM;
  const Index segment = checkpoint_every > 0 && checkpoint_every < steps ? checkpoint_every : steps;
  // The buffers below start empty (default member initialisers).
  FusedRecurrence<T> op{kind, reverse, steps, batch, H,    layer, direction,    segment, x,
                        h0,   c0,      w_ih,  w_hh,  b_ih, b_hh,  b_ih.valid(), lengths, hook};
  op.feature_major = feature_major;
  const Index cols = segment * batch, segments = op.segments();
  op.threads = gradflow::detail::worker_threads();
  // A hook sees dL/dh_t of the whole batch at every step, so its step loop stays whole.
  op.batch_parts = hook != nullptr && *hook ? 1 : std::min(op.threads, batch);
  op.hs = tape.scratch(H, cols).data();
  op.acts = G == 1 ? op.hs : tape.scratch(G * H, cols).data();
  if (lstm) op.cells = tape.scratch(H, cols).data();
  if (kind == CellKind::GRU) op.hn = tape.scratch(H, cols).data();
  MatrixMap<T> h_ck = tape.scratch(H, segments * batch);
  h_ck.leftCols(batch) = tape.value(h0).transpose();
  op.zero_h0 = (tape.value(h0).array() == T(0)).all();
  op.h0_grad = tape.requires_grad(h0);
  op.h_ck = h_ck.data();
  if (lstm) {
    MatrixMap<T> c_ck = tape.scratch(H, segments * batch);
    c_ck.leftCols(batch) = tape.value(c0).transpose();
    op.c_ck = c_ck.data();
  }
  op.work = tape.scratch(H, 5 * batch).data();
  // W_hh packed once per node, and every buffer from the tape: a step allocates nothing.
  // The weights are packed by every thread (so is W_hh^T in backward()): on one, the other
  // waited through 1.3 % of an lstm L/2 step (perf). ab --lockstep new / old, Zen 5, 60 pairs
  // x 6: lstm L/2 0.988, gru L/2 0.994, rnn_tanh L/2 0.988, lstm M/2 0.997.
  using P = gradflow::detail::PackedLhs<T, Eigen::ColMajor>;
  const Index gate_rows = kind == CellKind::GRU ? 2 * H : G * H;
  const T* w = tape.value(w_hh).data();
  op.w_gates.pack(w, G * H, gate_rows, H, batch,
                  tape.scratch(P::packed_size(gate_rows, H, batch), 1).data(), op.threads);
  if (kind == CellKind::GRU)
    op.w_n.pack(w + 2 * H, G * H, H, H, batch, tape.scratch(P::packed_size(H, H, batch), 1).data(),
                op.threads);
  op.rhs_stride =
      std::max(P::rhs_buffer_size(gate_rows, H, batch), P::rhs_buffer_size(H, H, batch));
  op.rhs_buffers = tape.scratch(op.rhs_stride, op.batch_parts).data();
  const Index GH = G * H, I = op.input_size(), chunk = op.pipeline_chunk() * batch;
  op.w_in.pack(tape.value(w_ih).data(), GH, GH, I, chunk,
               tape.scratch(P::packed_size(GH, I, chunk), 1).data(), op.threads);
  op.projection_stride = P::rhs_buffer_size(GH, I, chunk);
  op.projection_buffers = tape.scratch(op.projection_stride, op.threads).data();
  if (!gradflow::detail::kUseBlas && tape.requires_grad(x) && feature_major) {
    using PT = gradflow::detail::PackedLhs<T, Eigen::RowMajor>;
    op.w_in_t.pack(tape.value(w_ih).data(), GH, I, GH, chunk,
                   tape.scratch(PT::packed_size(I, GH, chunk), 1).data(), op.threads);
  } else if (!gradflow::detail::kUseBlas && tape.requires_grad(x)) {
    // Row blocks of a chunk's columns at most, from the GEMM buffers (gemm_buffer_size).
    using R = gradflow::detail::PackedRhs<T, Eigen::ColMajor>;
    const Index rows = std::min(op.pipeline_chunk(), segment) * batch;
    op.w_dx.pack(tape.value(w_ih).data(), GH, GH, I, rows,
                 tape.scratch(R::packed_size(rows, GH, I), 1).data(), op.threads);
  }
  op.gemm_capacity = op.gemm_buffer_size();
  op.gemm_buffers = tape.scratch(op.gemm_capacity, op.threads).data();
  if (op.has_bias) {
    MatrixMap<T> ones = tape.scratch(batch, 1);
    ones.setOnes();
    op.ones = ones.data();
    op.bias = tape.scratch(G * H, 1).data();
    op.bias_grad = tape.scratch(op.bias_sums_rows(), op.batch_parts).data();
  }
  const Index final_rows = op.final_rows_count();
  op.final_state = tape.scratch(final_rows, H).data();
  MatrixMap<T> final_grad = tape.scratch(final_rows, H);
  final_grad.setZero();
  op.final_grad = final_grad.data();
  auto forward = [&tape, op](MatrixMap<T> out) { op.forward(tape, out); };
  auto backward = [op](Tape<T>& tp, Var<T> out) { op.backward(tp, out); };
  const Var<T> bias_ih = b_ih.valid() ? b_ih : w_ih, bias_hh = b_hh.valid() ? b_hh : w_hh;
  FusedOutputs<T> result;
  const Index out_rows = feature_major ? H : op.n(), out_cols = feature_major ? op.n() : H;
  result.output = lstm ? tape.apply(name, {x, h0, c0, w_ih, w_hh, bias_ih, bias_hh}, out_rows,
                                    out_cols, forward, backward)
                       : tape.apply(name, {x, h0, w_ih, w_hh, bias_ih, bias_hh}, out_rows, out_cols,
                                    forward, backward);
  // The final states are a node of their own, so that the output needs no copy (nor a
  // second gradient) to drop them. Its backward hands dL/d(final state) to the layer's
  // node through final_grad, which the layer's backward reads first.
  const T* state = op.final_state;
  T* state_grad = op.final_grad;
  const Var<T> layer_output = result.output;
  result.final_state = tape.apply(
      "recurrent_final_state", {layer_output}, final_rows, H,
      [state](MatrixMap<T> out) { out = ConstMatrixMap<T>(state, out.rows(), out.cols()); },
      [state_grad, layer_output](Tape<T>& tp, Var<T> out) {
        auto g = tp.grad(out);
        MatrixMap<T>(state_grad, g.rows(), g.cols()) += g;
        tp.grad(layer_output);  // created if the output had none: the layer's backward must run
      });
  return result;
}

}  // namespace detail
}  // namespace gradflow::nn
