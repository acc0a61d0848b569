#pragma once
/// \file
/// The fused backprop-through-time kernel: one layer-direction of an RNN, LSTM or GRU over
/// a whole sequence as a single tape node.

#include <algorithm>
#include <functional>
#include <stdexcept>

#include "gradflow/core/detail/packed_gemm.hpp"
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
using HiddenGradHook = std::function<void(Index layer, Index direction, Index t, ConstMatrixMap<T> dh)>;

namespace detail {

/// One layer-direction over T steps, recorded as one tape node.
///
/// Everything inside runs in a transposed layout, [features x (T*B)] with column t*B + b,
/// so that the B columns of a step are contiguous: the per-step GEMM W_hh h_{t-1} reads and
/// writes one contiguous [G*H x B] slab, and the elementwise gate maths streams over it.
///
/// Forward:  A = W_ih X^T + b (all steps, one GEMM); per step A_t += W_hh h_{t-1} (one GEMM,
///           all gates), then the gate maths. Backward: per step dG_t from the gate maths and
///           dh_{t-1} = W_hh^T dG_t; after the loop dW_ih = dG X, dW_hh = dG H_prev^T,
///           dX = dG^T W_ih (three GEMMs over all steps) and bias gradients as row sums.
///
/// Gradient checkpointing splits the steps into segments of `segment` steps (in processing
/// order). Only the last segment's activations stay in memory, plus the state entering each
/// segment; backward recomputes each earlier segment's forward from its checkpoint, then runs
/// the loop above over that segment, with the three weight GEMMs per segment. Without
/// checkpointing there is one segment and nothing is recomputed.
///
/// The node's value is [(T*B + B) x H] (RNN, GRU) or [(T*B + 2B) x H] (LSTM): the output of
/// every step (time-major, zero at padded steps), then h_n, then c_n.
template <typename T>
struct FusedRecurrence {
  CellKind kind;
  bool reverse;
  Index steps, batch, hidden, layer, direction;
  Index segment;                         // steps per checkpoint segment (steps: no checkpoints)
  Var<T> x, h0, c0, w_ih, w_hh, b_ih, b_hh;  // c0 only for LSTM; biases may be empty
  bool has_bias;
  const T* lengths;                      // valid steps per sample (as T), or nullptr
  const HiddenGradHook<T>* hook;         // or nullptr
  // Buffers of one segment, column (t - first step of the segment)*B + b:
  T* acts;                               // [G*H x S*B] gate activations (RNN: the hidden states)
  T* cells;                              // [H x S*B] LSTM cell states
  T* hn;                                 // [H x S*B] GRU: W_hn h_{t-1} + b_hn
  T* hs;                                 // [H x S*B] hidden states (after padding carry)
  T* h_ck;                               // [H x B] per segment: the state entering it (h0^T first)
  T* c_ck;                               // [H x B] per segment: LSTM cell state entering it
  T* work;                               // [H x 4B] backward scratch; [B x H] hook buffer after
  T* ones;                               // [S*B] ones: bias gradients as a GEMV
  // W_hh packed once for the per-step products, which run on one thread at any thread count:
  // Eigen's parallel GEMM on these [G*H x B] products was slower than one thread and
  // allocated per call (bptt/lstm/LONG/2: 111 -> 49 ms per step; lstm/M/2: 214 -> 14 allocations per step).
  // GRU packs the r,z rows and the n rows apart: n's product gets its own bias first.
  bool packed;
  bool own_gemm;                         // whole-segment GEMMs with gemm_buffer (1 thread)
  gradflow::detail::PackedLhs<T, Eigen::ColMajor> w_gates, w_n;
  T* rhs_buffer;
  T* gemm_buffer;                        // packing buffers of the whole-segment GEMMs (packed runs)
  Index gemm_capacity;                   // its size in scalars

  // The steps [first, first + count) of one segment.
  struct Span {
    Index first, count;
  };

  Index gates() const { return gate_count(kind); }
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

  MatrixMap<T> map(T* p, Index rows, Index cols) const { return MatrixMap<T>(p, rows, cols); }

  void forward(Tape<T>& tape, MatrixMap<T> out) const {
    const Index H = hidden, B = batch, N = n(), last_segment = segments() - 1;
    const bool lstm = kind == CellKind::LSTM;
    for (Index j = 0; j <= last_segment; ++j) {
      const Span s = span(j);
      forward_segment(tape, j);
      // This segment's outputs, zero at padded steps.
      out.middleRows(s.first * B, s.count * B) = map(hs, H, s.count * B).transpose();
      if (lengths != nullptr)
        for (Index t = s.first; t < s.first + s.count; ++t)
          for (Index b = 0; b < B; ++b)
            if (padded(t, b)) out.row(t * B + b).setZero();
      if (j == last_segment) break;
      // The state after the segment's last step is where the next one starts.
      const Index end = (step_at((j + 1) * segment - 1) - s.first) * B;
      map(checkpoint(h_ck, j + 1), H, B) = map(hs, H, s.count * B).middleCols(end, B);
      if (lstm) map(checkpoint(c_ck, j + 1), H, B) = map(cells, H, s.count * B).middleCols(end, B);
    }
    const Span s = span(last_segment);
    const Index end = (step_at(steps - 1) - s.first) * B;
    out.middleRows(N, B) = map(hs, H, s.count * B).middleCols(end, B).transpose();
    if (lstm) out.middleRows(N + B, B) = map(cells, H, s.count * B).middleCols(end, B).transpose();
  }

  // Runs segment j from its checkpoint, filling the segment buffers.
  void forward_segment(Tape<T>& tape, Index j) const {
    const Index H = hidden, B = batch, GH = gates() * H;
    const Span s = span(j);
    const Index cols = s.count * B;
    auto Whh = tape.value(w_hh);
    MatrixMap<T> A = map(acts, GH, cols), Hs = map(hs, H, cols);
    MatrixMap<T> C = map(cells, kind == CellKind::LSTM ? H : 0, cols);
    MatrixMap<T> HN = map(hn, kind == CellKind::GRU ? H : 0, cols);

    // Input projection of every step of the segment, one GEMM.
    if (own_gemm) {  // the same product with packing buffers from the tape: no heap allocation
      A.setZero();
      gemm<Eigen::ColMajor, Eigen::RowMajor>(GH, cols, input_size(), tape.value(w_ih).data(), GH,
                                            tape.value(x).data() + s.first * B, n(), A.data(), GH);
    } else {
      A.noalias() = tape.value(w_ih) * tape.value(x).middleRows(s.first * B, cols).transpose();
    }
    if (has_bias) {
      A.colwise() += tape.value(b_ih).transpose().col(0);
      if (kind == CellKind::GRU) A.topRows(2 * H).colwise() += tape.value(b_hh).transpose().col(0).head(2 * H);
      else A.colwise() += tape.value(b_hh).transpose().col(0);
    }

    for (Index i = 0; i < s.count; ++i) {
      const Index k = j * segment + i, t = step_at(k), col = (t - s.first) * B;
      const Index prev_col = i == 0 ? 0 : (step_at(k - 1) - s.first) * B;
      const T* prev_h = i == 0 ? checkpoint(h_ck, j) : hs + prev_col * H;
      const T* prev_c = kind != CellKind::LSTM ? nullptr : i == 0 ? checkpoint(c_ck, j) : cells + prev_col * H;
      ConstMatrixMap<T> hp(prev_h, H, B);
      auto a = A.middleCols(col, B);
      auto h = Hs.middleCols(col, B);
      // a += W_hh h_{t-1}, every gate in one product (GRU: the r, z rows only).
      if (packed) w_gates.multiply_add(prev_h, H, B, a.data(), GH, rhs_buffer);
      else if (kind == CellKind::GRU) a.topRows(2 * H).noalias() += Whh.topRows(2 * H) * hp;
      else a.noalias() += Whh * hp;
      switch (kind) {
        case CellKind::RnnTanh:
        case CellKind::RnnRelu:
          if (kind == CellKind::RnnTanh) h = a.array().tanh().matrix();
          else h = a.cwiseMax(T(0));
          break;
        case CellKind::LSTM: {
          a.topRows(2 * H) = a.topRows(2 * H).array().logistic().matrix();
          a.middleRows(2 * H, H) = a.middleRows(2 * H, H).array().tanh().matrix();
          a.bottomRows(H) = a.bottomRows(H).array().logistic().matrix();
          ConstMatrixMap<T> cp(prev_c, H, B);
          auto c = C.middleCols(col, B);
          c = a.middleRows(H, H).cwiseProduct(cp) + a.topRows(H).cwiseProduct(a.middleRows(2 * H, H));
          h = a.bottomRows(H).cwiseProduct(c.array().tanh().matrix());
          break;
        }
        case CellKind::GRU: {
          auto hn_t = HN.middleCols(col, B);
          if (has_bias) hn_t.colwise() = tape.value(b_hh).transpose().col(0).tail(H);
          else hn_t.setZero();
          if (packed) w_n.multiply_add(prev_h, H, B, hn_t.data(), H, rhs_buffer);
          else hn_t.noalias() += Whh.bottomRows(H) * hp;
          a.topRows(2 * H) = a.topRows(2 * H).array().logistic().matrix();
          a.bottomRows(H) = (a.bottomRows(H) + a.topRows(H).cwiseProduct(hn_t)).array().tanh().matrix();
          // h = (1 - z) n + z h_prev = n + z (h_prev - n)
          h = a.bottomRows(H) + a.middleRows(H, H).cwiseProduct(hp - a.bottomRows(H));
          break;
        }
      }
      if (lengths != nullptr) {
        for (Index b = 0; b < B; ++b) {
          if (!padded(t, b)) continue;
          h.col(b) = hp.col(b);
          if (kind == CellKind::LSTM) C.col(col + b) = ConstMatrixMap<T>(prev_c, H, B).col(b);
        }
      }
    }
  }

  void backward(Tape<T>& tape, Var<T> out) const {
    const Index H = hidden, B = batch, N = n(), G = gates(), GH = G * H;
    const bool lstm = kind == CellKind::LSTM, gru = kind == CellKind::GRU;
    auto g_out = tape.grad(out);
    auto Whh = tape.value(w_hh);
    // dG holds the pre-activation gradients of a segment's steps; GRU also needs the
    // hidden-side ones (they differ in the n block: r * dn instead of dn).
    T* dG_data = tape.scratch(GH, std::min(segment, steps) * B).data();
    T* dGh_data = gru ? tape.scratch(GH, std::min(segment, steps) * B).data() : dG_data;
    MatrixMap<T> dh = map(work, H, B), dh_next = map(work + H * B, H, B);
    MatrixMap<T> dc = map(work + 2 * H * B, H, B), tmp = map(work + 3 * H * B, H, B);
    // dh_{t-1} = W_hh^T dG_t: W_hh^T packed once (a row-major view of W_hh, no copy).
    gradflow::detail::PackedLhs<T, Eigen::RowMajor> w_t;
    T* bwd_buffer = nullptr;
    if (packed) {
      using P = gradflow::detail::PackedLhs<T, Eigen::RowMajor>;
      w_t.pack(Whh.data(), GH, H, GH, B, tape.scratch(P::packed_size(H, GH, B), 1).data());
      bwd_buffer = tape.scratch(P::rhs_buffer_size(H, GH, B), 1).data();
    }

    dh = g_out.middleRows(N, B).transpose();
    if (lstm) dc = g_out.middleRows(N + B, B).transpose();
    for (Index j = segments(); j-- > 0;) {
      // The last segment's buffers are still those of the forward pass.
      if (j != segments() - 1) forward_segment(tape, j);
      const Span s = span(j);
      const Index cols = s.count * B;
      MatrixMap<T> A = map(acts, GH, cols), Hs = map(hs, H, cols);
      MatrixMap<T> C = map(cells, lstm ? H : 0, cols), HN = map(hn, gru ? H : 0, cols);
      MatrixMap<T> dG = map(dG_data, GH, cols), dGh = map(dGh_data, GH, cols);
      for (Index i = s.count; i-- > 0;) {
        const Index k = j * segment + i, t = step_at(k), col = (t - s.first) * B;
        const Index prev_col = i == 0 ? 0 : (step_at(k - 1) - s.first) * B;
        const T* prev_h = i == 0 ? checkpoint(h_ck, j) : hs + prev_col * H;
        ConstMatrixMap<T> hp(prev_h, H, B);
        if (lengths == nullptr) {
          dh += g_out.middleRows(t * B, B).transpose();
        } else {
          for (Index b = 0; b < B; ++b)
            if (!padded(t, b)) dh.col(b) += g_out.row(t * B + b).transpose();
        }
        if (hook != nullptr && *hook) {
          MatrixMap<T> buffer = map(work + 4 * H * B, B, H);
          buffer = dh.transpose();
          (*hook)(layer, direction, t, ConstMatrixMap<T>(buffer.data(), B, H));
        }
        auto a = A.middleCols(col, B).array();
        auto d = dG.middleCols(col, B);
        switch (kind) {
          case CellKind::RnnTanh:
            d = (dh.array() * (T(1) - Hs.middleCols(col, B).array().square())).matrix();
            break;
          case CellKind::RnnRelu:
            d = (Hs.middleCols(col, B).array() > T(0)).select(dh.array(), T(0)).matrix();
            break;
          case CellKind::LSTM: {
            const T* prev_c = i == 0 ? checkpoint(c_ck, j) : cells + prev_col * H;
            ConstMatrixMap<T> cp(prev_c, H, B);
            auto ig = a.topRows(H), f = a.middleRows(H, H), g = a.middleRows(2 * H, H), o = a.bottomRows(H);
            tmp = C.middleCols(col, B).array().tanh().matrix();  // tanh(c_t)
            auto tc = tmp.array();
            if (lengths != nullptr) dh_next = dc;  // keep dc of padded columns
            dc.array() += dh.array() * o * (T(1) - tc.square());
            d.topRows(H) = (dc.array() * g * ig * (T(1) - ig)).matrix();
            d.middleRows(H, H) = (dc.array() * cp.array() * f * (T(1) - f)).matrix();
            d.middleRows(2 * H, H) = (dc.array() * ig * (T(1) - g.square())).matrix();
            d.bottomRows(H) = (dh.array() * tc * o * (T(1) - o)).matrix();
            dc.array() *= f;
            if (lengths != nullptr)
              for (Index b = 0; b < B; ++b)
                if (padded(t, b)) dc.col(b) = dh_next.col(b);
            break;
          }
          case CellKind::GRU: {
            auto r = a.topRows(H), z = a.middleRows(H, H), nn = a.bottomRows(H);
            auto dgh = dGh.middleCols(col, B);
            // dn_pre = dh (1 - z)(1 - n^2); dr_pre = dn_pre hn r(1 - r); dz_pre = dh (h_prev - n) z(1 - z)
            d.bottomRows(H) = (dh.array() * (T(1) - z) * (T(1) - nn.square())).matrix();
            d.topRows(H) = (d.bottomRows(H).array() * HN.middleCols(col, B).array() * r * (T(1) - r)).matrix();
            d.middleRows(H, H) = (dh.array() * (hp.array() - nn) * z * (T(1) - z)).matrix();
            dgh.topRows(2 * H) = d.topRows(2 * H);
            dgh.bottomRows(H) = (d.bottomRows(H).array() * r).matrix();
            break;
          }
        }
        if (lengths != nullptr)
          for (Index b = 0; b < B; ++b)
            if (padded(t, b)) {
              d.col(b).setZero();
              if (gru) dGh.col(col + b).setZero();
            }
        // dL/dh_{t-1}: through the recurrent GEMM, plus GRU's direct z * dh path.
        if (packed) {
          dh_next.setZero();
          w_t.multiply_add(dGh.data() + col * GH, GH, B, dh_next.data(), H, bwd_buffer);
        } else {
          dh_next.noalias() = Whh.transpose() * dGh.middleCols(col, B);
        }
        if (gru) dh_next.array() += dh.array() * a.middleRows(H, H);
        if (lengths != nullptr)
          for (Index b = 0; b < B; ++b)
            if (padded(t, b)) dh_next.col(b) = dh.col(b);
        dh.swap(dh_next);
      }
      accumulate_weight_grads(tape, j, dG, dGh, Hs);
    }

    if (tape.requires_grad(h0)) tape.grad(h0) += dh.transpose();
    if (lstm && tape.requires_grad(c0)) tape.grad(c0) += dc.transpose();
  }

  // Weight, bias and input gradients of segment j, three GEMMs over all of its steps.
  // h_prev of step t is step t-1 (t+1 reversed); the segment's first step reads its checkpoint.
  void accumulate_weight_grads(Tape<T>& tape, Index j, MatrixMap<T> dG, MatrixMap<T> dGh,
                               MatrixMap<T> Hs) const {
    const Index B = batch, cols = dG.cols();
    const Span s = span(j);
    ConstMatrixMap<T> entry(checkpoint(h_ck, j), hidden, B);
    const Index H = hidden, GH = dG.rows(), I = input_size(), N = n();
    if (own_gemm) {  // the same products with packing buffers from the tape: no heap allocation
      if (tape.requires_grad(w_hh)) {
        T* dW = tape.grad(w_hh).data();
        const Index inner = reverse ? 0 : B, entry_col = reverse ? cols - B : 0;
        // dW_hh += dGh[steps after the first] Hs[steps before the last]^T + dGh[first] entry^T
        gemm<Eigen::ColMajor, Eigen::RowMajor>(GH, H, cols - B, dGh.data() + inner * GH, GH,
                                              Hs.data() + (B - inner) * H, H, dW, GH);
        gemm<Eigen::ColMajor, Eigen::RowMajor>(GH, H, B, dGh.data() + entry_col * GH, GH,
                                              entry.data(), H, dW, GH);
      }
      if (tape.requires_grad(w_ih))
        gemm<Eigen::ColMajor, Eigen::ColMajor>(GH, I, cols, dG.data(), GH,
                                              tape.value(x).data() + s.first * B, N,
                                              tape.grad(w_ih).data(), GH);
      if (tape.requires_grad(x))
        gemm<Eigen::RowMajor, Eigen::ColMajor>(cols, I, GH, dG.data(), GH, tape.value(w_ih).data(),
                                              GH, tape.grad(x).data() + s.first * B, N);
    } else {
      if (tape.requires_grad(w_hh)) {
        auto dW = tape.grad(w_hh);
        if (!reverse) {
          dW.noalias() += dGh.rightCols(cols - B) * Hs.leftCols(cols - B).transpose();
          dW.noalias() += dGh.leftCols(B) * entry.transpose();
        } else {
          dW.noalias() += dGh.leftCols(cols - B) * Hs.rightCols(cols - B).transpose();
          dW.noalias() += dGh.rightCols(B) * entry.transpose();
        }
      }
      auto X = tape.value(x).middleRows(s.first * B, cols);
      if (tape.requires_grad(w_ih)) tape.grad(w_ih).noalias() += dG * X;
      if (tape.requires_grad(x))
        tape.grad(x).middleRows(s.first * B, cols).noalias() += dG.transpose() * tape.value(w_ih);
    }
    // Row sums as GEMVs: rowwise().sum() of a column-major matrix walks each row with a stride
    // (25.8 ms against 0.19 ms for [1024 x 3200], a quarter of an LSTM M step).
    // Biases are [1 x GH]: viewed as the column they are in memory.
    ConstMatrixMap<T> one(ones, cols, 1);
    if (has_bias && tape.requires_grad(b_ih)) map(tape.grad(b_ih).data(), GH, 1).noalias() += dG * one;
    if (has_bias && tape.requires_grad(b_hh)) map(tape.grad(b_hh).data(), GH, 1).noalias() += dGh * one;
  }

  Index input_size() const { return w_ih.cols(); }

  // res += lhs * rhs, single-threaded Eigen GEMM whose packing buffers are gemm_buffer.
  template <int LhsOrder, int RhsOrder>
  void gemm(Index rows, Index cols, Index depth, const T* lhs, Index lhs_stride, const T* rhs,
            Index rhs_stride, T* res, Index res_stride) const {
    gradflow::detail::gemm_add<LhsOrder, RhsOrder>(
        rows, cols, depth, lhs, lhs_stride, rhs, rhs_stride, res, res_stride, [this](Index size) {
          if (size > gemm_capacity) throw std::logic_error("FusedRecurrence: GEMM buffer too small");
          return gemm_buffer;
        });
  }

  // The largest packing buffer of the whole-segment GEMMs above (full and last segment).
  Index gemm_buffer_size() const {
    using Blocking = gradflow::detail::ProvidedBlocking<T>;
    const Index GH = gates() * hidden, H = hidden, I = input_size(), B = batch;
    Index size = 0;
    for (Index cols : {segment * batch, span(segments() - 1).count * batch}) {
      const Index shapes[][3] = {{GH, cols, I}, {GH, H, cols - B}, {GH, H, B},
                                 {GH, I, cols}, {cols, I, GH}};
      for (const auto& sh : shapes)
        if (sh[0] > 0 && sh[1] > 0 && sh[2] > 0)
          size = std::max(size, Blocking(sh[0], sh[1], sh[2]).buffer_size());
    }
    return size;
  }
};

/// Records one fused layer-direction; see FusedRecurrence. `h0`/`c0` are [B x H] Vars;
/// `checkpoint_every` is the segment length in steps (0: no checkpointing).
template <typename T>
Var<T> fused_recurrence(CellKind kind, bool reverse, Index steps, Index batch, Var<T> x, Var<T> h0,
                        Var<T> c0, Var<T> w_ih, Var<T> w_hh, Var<T> b_ih, Var<T> b_hh,
                        const T* lengths, const HiddenGradHook<T>* hook, Index layer,
                        Index direction, Index checkpoint_every, const char* name) {
  Tape<T>& tape = x.tape();
  const Index H = w_hh.cols(), G = gate_count(kind);
  const bool lstm = kind == CellKind::LSTM;
  const Index segment = checkpoint_every > 0 && checkpoint_every < steps ? checkpoint_every : steps;
  FusedRecurrence<T> op{kind, reverse, steps, batch, H, layer, direction, segment, x, h0, c0,
                        w_ih, w_hh, b_ih, b_hh, b_ih.valid(), lengths, hook, nullptr, nullptr,
                        nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                        false, false, {}, {}, nullptr, nullptr, 0};
  const Index cols = segment * batch, segments = op.segments();
  op.hs = tape.scratch(H, cols).data();
  op.acts = G == 1 ? op.hs : tape.scratch(G * H, cols).data();
  if (lstm) op.cells = tape.scratch(H, cols).data();
  if (kind == CellKind::GRU) op.hn = tape.scratch(H, cols).data();
  MatrixMap<T> h_ck = tape.scratch(H, segments * batch);
  h_ck.leftCols(batch) = tape.value(h0).transpose();
  op.h_ck = h_ck.data();
  if (lstm) {
    MatrixMap<T> c_ck = tape.scratch(H, segments * batch);
    c_ck.leftCols(batch) = tape.value(c0).transpose();
    op.c_ck = c_ck.data();
  }
  op.work = tape.scratch(H, 5 * batch).data();
  // Measured on bptt/lstm/M/1: packing W_hh once instead of in every per-step product, and
  // without heap packing buffers (see detail::PackedLhs). The whole-segment GEMMs are large
  // enough for Eigen's threads, so they keep Eigen's (allocating) parallel product there.
  // With the BLAS back-end every product goes through the BLAS, which has its own threads.
  op.packed = true;
  op.own_gemm = Eigen::nbThreads() == 1 || gradflow::detail::kUseBlas;
  if (op.packed) {
    using P = gradflow::detail::PackedLhs<T, Eigen::ColMajor>;
    const Index gate_rows = kind == CellKind::GRU ? 2 * H : G * H;
    const T* w = tape.value(w_hh).data();
    op.w_gates.pack(w, G * H, gate_rows, H, batch, tape.scratch(P::packed_size(gate_rows, H, batch), 1).data());
    if (kind == CellKind::GRU)
      op.w_n.pack(w + 2 * H, G * H, H, H, batch, tape.scratch(P::packed_size(H, H, batch), 1).data());
    op.rhs_buffer = tape.scratch(std::max(P::rhs_buffer_size(gate_rows, H, batch),
                                          P::rhs_buffer_size(H, H, batch)), 1).data();
  }
  if (op.own_gemm) {
    op.gemm_capacity = op.gemm_buffer_size();
    op.gemm_buffer = tape.scratch(op.gemm_capacity, 1).data();
  }
  if (op.has_bias) {
    MatrixMap<T> ones = tape.scratch(cols, 1);
    ones.setOnes();
    op.ones = ones.data();
  }
  const Index out_rows = steps * batch + (lstm ? 2 : 1) * batch;
  if (lstm)
    return tape.apply(
        name, {x, h0, c0, w_ih, w_hh, b_ih.valid() ? b_ih : w_ih, b_hh.valid() ? b_hh : w_hh},
        out_rows, H, [&tape, op](MatrixMap<T> out) { op.forward(tape, out); },
        [op](Tape<T>& tp, Var<T> out) { op.backward(tp, out); });
  return tape.apply(
      name, {x, h0, w_ih, w_hh, b_ih.valid() ? b_ih : w_ih, b_hh.valid() ? b_hh : w_hh}, out_rows,
      H, [&tape, op](MatrixMap<T> out) { op.forward(tape, out); },
      [op](Tape<T>& tp, Var<T> out) { op.backward(tp, out); });
}

}  // namespace detail
}  // namespace gradflow::nn
