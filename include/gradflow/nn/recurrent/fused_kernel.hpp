#pragma once
/// \file
/// The fused backprop-through-time kernel: one layer-direction of an RNN, LSTM or GRU over
/// a whole sequence as a single tape node.

#include <functional>

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
/// The node's value is [(T*B + B) x H] (RNN, GRU) or [(T*B + 2B) x H] (LSTM): the output of
/// every step (time-major, zero at padded steps), then h_n, then c_n.
template <typename T>
struct FusedRecurrence {
  CellKind kind;
  bool reverse;
  Index steps, batch, hidden, layer, direction;
  Var<T> x, h0, c0, w_ih, w_hh, b_ih, b_hh;  // c0 only for LSTM; biases may be empty
  bool has_bias;
  const T* lengths;                      // valid steps per sample (as T), or nullptr
  const HiddenGradHook<T>* hook;         // or nullptr
  T* acts;                               // [G*H x N] gate activations (RNN: the hidden states)
  T* cells;                              // [H x N] LSTM cell states
  T* hn;                                 // [H x N] GRU: W_hn h_{t-1} + b_hn
  T* hs;                                 // [H x N] hidden states (after padding carry)
  T* h0t;                                // [H x B] initial hidden state, transposed
  T* c0t;                                // [H x B] initial cell state, transposed
  T* work;                               // [H x 4B] backward scratch; [B x H] hook buffer after

  Index gates() const { return gate_count(kind); }
  Index n() const { return steps * batch; }
  // The step processed k-th (reverse runs from the last step to the first).
  Index step_at(Index k) const { return reverse ? steps - 1 - k : k; }
  bool padded(Index t, Index b) const { return lengths != nullptr && T(t) >= lengths[b]; }

  MatrixMap<T> map(T* p, Index rows, Index cols) const { return MatrixMap<T>(p, rows, cols); }

  void forward(Tape<T>& tape, MatrixMap<T> out) const {
    const Index H = hidden, B = batch, N = n(), GH = gates() * H;
    auto X = tape.value(x);
    auto Wih = tape.value(w_ih);
    auto Whh = tape.value(w_hh);
    MatrixMap<T> A = map(acts, GH, N), Hs = map(hs, H, N), H0 = map(h0t, H, B);
    MatrixMap<T> C = map(cells, kind == CellKind::LSTM ? H : 0, N);
    MatrixMap<T> C0 = map(c0t, kind == CellKind::LSTM ? H : 0, B);
    MatrixMap<T> HN = map(hn, kind == CellKind::GRU ? H : 0, N);

    A.noalias() = Wih * X.transpose();  // input projection of every step, one GEMM
    if (has_bias) {
      A.colwise() += tape.value(b_ih).transpose().col(0);
      if (kind == CellKind::GRU) A.topRows(2 * H).colwise() += tape.value(b_hh).transpose().col(0).head(2 * H);
      else A.colwise() += tape.value(b_hh).transpose().col(0);
    }

    for (Index k = 0; k < steps; ++k) {
      const Index t = step_at(k);
      const T* prev_h = k == 0 ? h0t : hs + step_at(k - 1) * B * H;
      const T* prev_c = kind != CellKind::LSTM ? nullptr : k == 0 ? c0t : cells + step_at(k - 1) * B * H;
      ConstMatrixMap<T> hp(prev_h, H, B);
      auto a = A.middleCols(t * B, B);
      auto h = Hs.middleCols(t * B, B);
      switch (kind) {
        case CellKind::RnnTanh:
        case CellKind::RnnRelu:
          a.noalias() += Whh * hp;
          if (kind == CellKind::RnnTanh) h = a.array().tanh().matrix();
          else h = a.cwiseMax(T(0));
          break;
        case CellKind::LSTM: {
          a.noalias() += Whh * hp;
          a.topRows(2 * H) = a.topRows(2 * H).array().logistic().matrix();
          a.middleRows(2 * H, H) = a.middleRows(2 * H, H).array().tanh().matrix();
          a.bottomRows(H) = a.bottomRows(H).array().logistic().matrix();
          ConstMatrixMap<T> cp(prev_c, H, B);
          auto c = C.middleCols(t * B, B);
          c = a.middleRows(H, H).cwiseProduct(cp) + a.topRows(H).cwiseProduct(a.middleRows(2 * H, H));
          h = a.bottomRows(H).cwiseProduct(c.array().tanh().matrix());
          break;
        }
        case CellKind::GRU: {
          auto hn_t = HN.middleCols(t * B, B);
          hn_t.noalias() = Whh.bottomRows(H) * hp;
          if (has_bias) hn_t.colwise() += tape.value(b_hh).transpose().col(0).tail(H);
          a.topRows(2 * H).noalias() += Whh.topRows(2 * H) * hp;
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
          if (kind == CellKind::LSTM) C.col(t * B + b) = ConstMatrixMap<T>(prev_c, H, B).col(b);
        }
      }
    }

    out.topRows(N) = Hs.transpose();
    if (lengths != nullptr)
      for (Index t = 0; t < steps; ++t)
        for (Index b = 0; b < B; ++b)
          if (padded(t, b)) out.row(t * B + b).setZero();
    const Index last = step_at(steps - 1);
    out.middleRows(N, B) = Hs.middleCols(last * B, B).transpose();
    if (kind == CellKind::LSTM) out.middleRows(N + B, B) = C.middleCols(last * B, B).transpose();
    (void)H0;
    (void)C0;
  }

  void backward(Tape<T>& tape, Var<T> out) const {
    const Index H = hidden, B = batch, N = n(), G = gates(), GH = G * H;
    const bool lstm = kind == CellKind::LSTM, gru = kind == CellKind::GRU;
    auto g_out = tape.grad(out);
    auto Whh = tape.value(w_hh);
    MatrixMap<T> A = map(acts, GH, N), Hs = map(hs, H, N);
    MatrixMap<T> C = map(cells, lstm ? H : 0, N);
    MatrixMap<T> HN = map(hn, gru ? H : 0, N);
    // dG holds the pre-activation gradients of every step; GRU also needs the hidden-side
    // ones (they differ in the n block: r * dn instead of dn).
    MatrixMap<T> dG = tape.scratch(GH, N);
    MatrixMap<T> dGh = gru ? tape.scratch(GH, N) : dG;
    MatrixMap<T> dh = map(work, H, B), dh_next = map(work + H * B, H, B);
    MatrixMap<T> dc = map(work + 2 * H * B, H, B), tmp = map(work + 3 * H * B, H, B);

    dh = g_out.middleRows(N, B).transpose();
    if (lstm) dc = g_out.middleRows(N + B, B).transpose();
    for (Index k = steps; k-- > 0;) {
      const Index t = step_at(k);
      const T* prev_h = k == 0 ? h0t : hs + step_at(k - 1) * B * H;
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
      auto a = A.middleCols(t * B, B).array();
      auto d = dG.middleCols(t * B, B);
      switch (kind) {
        case CellKind::RnnTanh:
          d = (dh.array() * (T(1) - Hs.middleCols(t * B, B).array().square())).matrix();
          break;
        case CellKind::RnnRelu:
          d = (Hs.middleCols(t * B, B).array() > T(0)).select(dh.array(), T(0)).matrix();
          break;
        case CellKind::LSTM: {
          const T* prev_c = k == 0 ? c0t : cells + step_at(k - 1) * B * H;
          ConstMatrixMap<T> cp(prev_c, H, B);
          auto i = a.topRows(H), f = a.middleRows(H, H), g = a.middleRows(2 * H, H), o = a.bottomRows(H);
          tmp = C.middleCols(t * B, B).array().tanh().matrix();  // tanh(c_t)
          auto tc = tmp.array();
          if (lengths != nullptr) dh_next = dc;  // keep dc of padded columns
          dc.array() += dh.array() * o * (T(1) - tc.square());
          d.topRows(H) = (dc.array() * g * i * (T(1) - i)).matrix();
          d.middleRows(H, H) = (dc.array() * cp.array() * f * (T(1) - f)).matrix();
          d.middleRows(2 * H, H) = (dc.array() * i * (T(1) - g.square())).matrix();
          d.bottomRows(H) = (dh.array() * tc * o * (T(1) - o)).matrix();
          dc.array() *= f;
          if (lengths != nullptr)
            for (Index b = 0; b < B; ++b)
              if (padded(t, b)) dc.col(b) = dh_next.col(b);
          break;
        }
        case CellKind::GRU: {
          auto r = a.topRows(H), z = a.middleRows(H, H), nn = a.bottomRows(H);
          auto dgh = dGh.middleCols(t * B, B);
          // dn_pre = dh (1 - z)(1 - n^2); dr_pre = dn_pre hn r(1 - r); dz_pre = dh (h_prev - n) z(1 - z)
          d.bottomRows(H) = (dh.array() * (T(1) - z) * (T(1) - nn.square())).matrix();
          d.topRows(H) = (d.bottomRows(H).array() * HN.middleCols(t * B, B).array() * r * (T(1) - r)).matrix();
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
            if (gru) dGh.col(t * B + b).setZero();
          }
      // dL/dh_{t-1}: through the recurrent GEMM, plus GRU's direct z * dh path.
      dh_next.noalias() = Whh.transpose() * dGh.middleCols(t * B, B);
      if (gru) dh_next.array() += dh.array() * a.middleRows(H, H);
      if (lengths != nullptr)
        for (Index b = 0; b < B; ++b)
          if (padded(t, b)) dh_next.col(b) = dh.col(b);
      dh.swap(dh_next);
    }

    if (tape.requires_grad(h0)) tape.grad(h0) += dh.transpose();
    if (lstm && tape.requires_grad(c0)) tape.grad(c0) += dc.transpose();

    // Weight gradients over all steps at once. h_prev of step t is step t-1 (t+1 reversed).
    ConstMatrixMap<T> H0(h0t, H, B);
    if (tape.requires_grad(w_hh)) {
      auto dW = tape.grad(w_hh);
      if (!reverse) {
        dW.noalias() += dGh.rightCols(N - B) * Hs.leftCols(N - B).transpose();
        dW.noalias() += dGh.leftCols(B) * H0.transpose();
      } else {
        dW.noalias() += dGh.leftCols(N - B) * Hs.rightCols(N - B).transpose();
        dW.noalias() += dGh.rightCols(B) * H0.transpose();
      }
    }
    if (tape.requires_grad(w_ih)) tape.grad(w_ih).noalias() += dG * tape.value(x);
    if (has_bias && tape.requires_grad(b_ih)) tape.grad(b_ih) += dG.rowwise().sum().transpose();
    if (has_bias && tape.requires_grad(b_hh)) tape.grad(b_hh) += dGh.rowwise().sum().transpose();
    if (tape.requires_grad(x)) tape.grad(x).noalias() += dG.transpose() * tape.value(w_ih);
  }
};

/// Records one fused layer-direction; see FusedRecurrence. `h0`/`c0` are [B x H] Vars.
template <typename T>
Var<T> fused_recurrence(CellKind kind, bool reverse, Index steps, Index batch, Var<T> x, Var<T> h0,
                        Var<T> c0, Var<T> w_ih, Var<T> w_hh, Var<T> b_ih, Var<T> b_hh,
                        const T* lengths, const HiddenGradHook<T>* hook, Index layer,
                        Index direction, const char* name) {
  Tape<T>& tape = x.tape();
  const Index H = w_hh.cols(), G = gate_count(kind), N = steps * batch;
  FusedRecurrence<T> op{kind, reverse, steps, batch, H, layer, direction, x, h0, c0, w_ih, w_hh,
                        b_ih, b_hh, b_ih.valid(), lengths, hook, nullptr, nullptr, nullptr,
                        nullptr, nullptr, nullptr, nullptr};
  op.hs = tape.scratch(H, N).data();
  op.acts = G == 1 ? op.hs : tape.scratch(G * H, N).data();
  if (kind == CellKind::LSTM) op.cells = tape.scratch(H, N).data();
  if (kind == CellKind::GRU) op.hn = tape.scratch(H, N).data();
  MatrixMap<T> h0t = tape.scratch(H, batch);
  h0t = tape.value(h0).transpose();
  op.h0t = h0t.data();
  if (kind == CellKind::LSTM) {
    MatrixMap<T> c0t = tape.scratch(H, batch);
    c0t = tape.value(c0).transpose();
    op.c0t = c0t.data();
  }
  op.work = tape.scratch(H, 5 * batch).data();
  const Index out_rows = N + (kind == CellKind::LSTM ? 2 : 1) * batch;
  if (kind == CellKind::LSTM)
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
