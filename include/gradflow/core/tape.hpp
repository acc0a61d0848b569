#pragma once
/// \file
/// Tape: the Wengert list that records ops and runs reverse-mode differentiation.

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <limits>
#include <new>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "gradflow/config.hpp"
#include "gradflow/core/detail/arena.hpp"
#include "gradflow/core/detail/parallel.hpp"
#include "gradflow/core/error.hpp"
#include "gradflow/core/parameter.hpp"
#include "gradflow/core/var.hpp"

namespace gradflow {

namespace detail {
// Every tape (and every clear() of one) gets a fresh generation, so a handle
// can be checked against the tape it came from even across tape lifetimes.
inline std::uint64_t next_generation() {
  static std::atomic<std::uint64_t> counter{1};
  return counter.fetch_add(1, std::memory_order_relaxed);
}
}  // namespace detail

/// Records operations as they run and differentiates them in reverse.
///
/// The tape is a flat array of nodes in creation order; backward() is one reverse loop
/// over it. Values, gradients and op state live in an arena that clear() rewinds, so a
/// training loop of fixed shape does no heap allocation per op after its first step.
///
/// \code
///   Tape<float> tape;
///   for (int step = 0; step < 100; ++step) {
///     tape.clear();
///     auto x = tape.constant(batch);
///     auto loss = mean(square(matmul(x, tape.param(w)) - tape.constant(y)));
///     loss.backward();               // w.grad() += dloss/dw
///   }
/// \endcode
///
/// Custom ops: apply() records any op given its forward and backward as callables; the
/// built-in ops and the fused recurrent layers use nothing else.
template <typename T>
class Tape {
 public:
  using Scalar = T;

  Tape() : generation_(detail::next_generation()) {}
  Tape(const Tape&) = delete;
  Tape& operator=(const Tape&) = delete;
  ~Tape() { destroy_op_state(); }

  // ---------------------------------------------------------------- leaves

  /// Records a copy of `m` that needs no gradient (inputs, targets, masks).
  template <typename Derived>
  Var<T> constant(const Eigen::MatrixBase<Derived>& m, const char* name = "constant") {
    Var<T> v = new_leaf(name, m.rows(), m.cols(), false);
    copy_value(v, m);
    return v;
  }

  /// Records a rows x cols constant filled with `fill`.
  Var<T> filled(Index rows, Index cols, T fill, const char* name = "filled") {
    Var<T> v = new_leaf(name, rows, cols, false);
    value_map(v.index_).setConstant(fill);
    return v;
  }

  /// Records a 1x1 constant.
  Var<T> scalar(T s) { return filled(1, 1, s, "scalar"); }

  /// Records a copy of `m` whose gradient is wanted (a per-step leaf).
  template <typename Derived>
  Var<T> variable(const Eigen::MatrixBase<Derived>& m, const char* name = "variable") {
    Var<T> v = new_leaf(name, m.rows(), m.cols(), grad_enabled_);
    copy_value(v, m);
    return v;
  }

  /// Records `m` itself, not a copy, as a value whose gradient is wanted. The tape reads
  /// m's storage until clear(): m must outlive the step and stay unchanged until then
  /// (debug builds check the latter at backward). For large inputs passed in every step (a
  /// batch of sequences): copying a [3200 x 512] float batch was 0.6 ms of a 37 ms
  /// bptt/rnn_tanh/L/2 step.
  Var<T> variable_view(const Matrix<T>& m, const char* name = "variable_view") {
    Var<T> v = new_leaf(name, m.rows(), m.cols(), grad_enabled_, m.data());
#ifndef NDEBUG
    view_fingerprints_.push_back({v.index_, fingerprint(m.data(), m.size())});
#endif
    return v;
  }
  /// A temporary would be gone before the tape reads it: copy it with variable() instead.
  Var<T> variable_view(const Matrix<T>&& m, const char* name = "variable_view") = delete;

  /// Records a parameter; its gradient accumulates into p.grad(). Recording the same
  /// parameter twice in one step returns the same node, unless gradient recording was
  /// switched in between (under no_grad, or set_requires_grad): then a new node is made,
  /// so a parameter first read under no_grad still gets its gradient afterwards.
  Var<T> param(Parameter<T>& p, const char* name = "parameter") {
    const bool wants_grad = grad_enabled_ && p.requires_grad_;
    if (p.bound_tape_ == this && p.bound_generation_ == generation_ &&
        p.bound_index_ < nodes_.size() && nodes_[p.bound_index_].value == p.value_.data() &&
        nodes_[p.bound_index_].requires_grad == wants_grad) {
      return Var<T>(this, p.bound_index_, generation_);
    }
    if (p.value_.size() == 0) throw ShapeError(std::string(name) + ": empty parameter");
    if (p.grad_.rows() != p.value_.rows() || p.grad_.cols() != p.value_.cols())
      p.grad_ = Matrix<T>::Zero(p.value_.rows(), p.value_.cols());
    Node n = blank_node(name, p.value_.rows(), p.value_.cols());
    n.value = p.value_.data();
    n.requires_grad = wants_grad;
    if (n.requires_grad) n.grad = p.grad_.data();
    Var<T> v = push(n);
    p.bound_tape_ = this;
    p.bound_generation_ = generation_;
    p.bound_index_ = v.index_;
    return v;
  }

  /// A new value that shares `v`'s storage but stops gradients (PyTorch's detach()).
  Var<T> detach(Var<T> v) {
    check(v, "detach");
    const Node src = nodes_[v.index_];
    Node n = blank_node("detach", src.rows, src.cols);
    n.value = src.value;
    return push(n);
  }

  // ------------------------------------------------------------- custom ops

  /// Records one op: allocates its rows x cols output, runs `forward(MatrixMap<T> out)`,
  /// and keeps `backward(Tape&, Var<T> out)` for the reverse pass.
  ///
  /// Inside backward, read `tape.grad(out)` and `tape.value(x)`, and accumulate into the
  /// inputs with `tape.grad(x) += ...` only when `tape.requires_grad(x)`. Both callables
  /// are copied into tape storage: capture Vars and small values, not containers.
  /// When no input needs a gradient (or inside no_grad) backward is not kept.
  template <typename Forward, typename Backward>
  Var<T> apply(const char* op, std::initializer_list<Var<T>> inputs, Index rows, Index cols,
               Forward&& forward, Backward&& backward) {
    return apply(op, inputs.begin(), inputs.size(), rows, cols, std::forward<Forward>(forward),
                 std::forward<Backward>(backward));
  }

  /// apply() over an array of `count` inputs (concat and friends).
  template <typename Forward, typename Backward>
  Var<T> apply(const char* op, const Var<T>* inputs, std::size_t count, Index rows, Index cols,
               Forward&& forward, Backward&& backward) {
    return apply(op, inputs, count, rows, cols, std::forward<Forward>(forward),
                 std::forward<Backward>(backward), nullptr);
  }

 private:
  struct ViewForward {
    void operator()(MatrixMap<T>) const {}
  };

  template <typename Backward>
  Var<T> apply(const char* op, std::initializer_list<Var<T>> inputs, Index rows, Index cols,
               ViewForward forward, Backward&& backward, T* aliased) {
    return apply(op, inputs.begin(), inputs.size(), rows, cols, forward,
                 std::forward<Backward>(backward), aliased);
  }

  // `aliased` non-null: the output is a view of existing storage (see apply_view).
  template <typename Forward, typename Backward>
  Var<T> apply(const char* op, const Var<T>* inputs, std::size_t count, Index rows, Index cols,
               Forward&& forward, Backward&& backward, T* aliased) {
    if (rows <= 0 || cols <= 0)
      throw ShapeError(std::string(op) + ": empty result " + detail::shape_str(rows, cols));
    bool needs_grad = false;
    for (std::size_t i = 0; i < count; ++i) {
      check(inputs[i], op);
      needs_grad = needs_grad || nodes_[inputs[i].index_].requires_grad;
    }
    needs_grad = needs_grad && grad_enabled_;

    Node n = blank_node(op, rows, cols);
    n.value = aliased != nullptr ? aliased
                                 : arena_.allocate_array<T>(static_cast<std::size_t>(rows * cols));
    n.input_begin = static_cast<std::uint32_t>(inputs_.size());
    n.input_count = static_cast<std::uint32_t>(count);
    for (std::size_t i = 0; i < count; ++i) inputs_.push_back(inputs[i].index_);
    n.requires_grad = needs_grad;
    Var<T> out = push(n);

    forward(MatrixMap<T>(nodes_[out.index_].value, rows, cols));
    if (anomaly_mode_) check_finite(out.index_, "forward", nodes_[out.index_].value, rows * cols);

    if (needs_grad) {
      using F = std::decay_t<Backward>;
      void* mem = arena_.allocate(sizeof(F), alignof(F));
      F* state = new (mem) F(std::forward<Backward>(backward));
      Node& node = nodes_[out.index_];
      node.state = state;
      node.run_backward = [](void* s, Tape& t, Var<T> o) { (*static_cast<F*>(s))(t, o); };
      if constexpr (!std::is_trivially_destructible_v<F>) {
        node.destroy = [](void* s) { static_cast<F*>(s)->~F(); };
        has_destructors_ = true;
      }
    }
    return out;
  }

 public:
  /// Records an op whose output shares the input's storage (reshape, column slices):
  /// `offset` elements into it, rows x cols in column-major order. No copy is made.
  template <typename Backward>
  Var<T> apply_view(const char* op, Var<T> input, std::size_t offset, Index rows, Index cols,
                    Backward&& backward) {
    check(input, op);
    const Node src = nodes_[input.index_];
    if (rows <= 0 || cols <= 0 ||
        offset + static_cast<std::size_t>(rows * cols) >
            static_cast<std::size_t>(src.rows * src.cols))
      throw ShapeError(std::string(op) + ": view " + detail::shape_str(rows, cols) +
                       " does not fit in " + detail::shape_str(src.rows, src.cols));
    T* data = src.value + offset;
    return apply(op, {input}, rows, cols, ViewForward{}, std::forward<Backward>(backward), data);
  }

  // ---------------------------------------------------------------- backward

  /// Differentiates the 1x1 value `root` (seed 1) into every value that requires a gradient.
  void backward(Var<T> root) {
    check(root, "backward");
    const Node& r = nodes_[root.index_];
    if (r.rows != 1 || r.cols != 1)
      throw TapeError("backward: root " + std::string(r.op) + " has shape " +
                      detail::shape_str(r.rows, r.cols) +
                      "; a non-scalar root needs a seed gradient of the same shape");
    check_backward_allowed(root);
    backward_done_ = true;
    grad(root)(0, 0) += T(1);  // no seed matrix: a training step must not allocate
    reverse_pass(root);
  }

  /// Differentiates `root` with upstream gradient `seed` (same shape as root).
  void backward(Var<T> root, const Eigen::Ref<const Matrix<T>>& seed) {
    check(root, "backward");
    const Node& r = nodes_[root.index_];
    if (seed.rows() != r.rows || seed.cols() != r.cols)
      throw ShapeError("backward: seed " + detail::shape_str(seed.rows(), seed.cols()) +
                       " does not match root " + std::string(r.op) + " " +
                       detail::shape_str(r.rows, r.cols));
    check_backward_allowed(root);
    backward_done_ = true;
    // A root without a gradient yet takes the seed as it is: no zeroing pass before it.
    const bool fresh = fresh_grad(root) != nullptr;
    MatrixMap<T> g = grad(root);
    detail::parallel_column_ranges(g.rows(), g.cols(), [&](Index begin, Index count) {
      if (fresh)
        g.middleCols(begin, count) = seed.middleCols(begin, count);
      else
        g.middleCols(begin, count) += seed.middleCols(begin, count);
    });
    reverse_pass(root);
  }

  // ----------------------------------------------------------------- access

  /// The forward value of `v`.
  ConstMatrixMap<T> value(Var<T> v) const {
    check(v, "value");
    const Node& n = nodes_[v.index_];
    return ConstMatrixMap<T>(n.value, n.rows, n.cols);
  }

  /// The gradient of `v`, created as zeros on first use (use it in backward rules).
  MatrixMap<T> grad(Var<T> v) {
    check(v, "grad");
    Node& n = nodes_[v.index_];
    if (n.grad == nullptr) {
      T* g = allocate_grad(n);
      detail::parallel_column_ranges(n.rows, n.cols, [g, rows = n.rows](Index begin, Index count) {
        std::memset(static_cast<void*>(g + begin * rows), 0,
                    sizeof(T) * static_cast<std::size_t>(rows * count));
      });
    }
    return MatrixMap<T>(n.grad, n.rows, n.cols);
  }

  /// The gradient of `v`, created without zeroing, if it has none yet; nullptr if it has one
  /// (add to grad(v) then). The caller must write every element before anything reads it:
  /// for a backward rule that overwrites its input's gradient in one pass, rather than
  /// adding to zeros that grad() wrote to memory first. Debug builds fill it with NaN, so
  /// that an element left unwritten shows.
  T* fresh_grad(Var<T> v) {
    check(v, "fresh_grad");
    Node& n = nodes_[v.index_];
    if (n.grad != nullptr) return nullptr;
    T* g = allocate_grad(n);
#ifndef NDEBUG
    MatrixMap<T>(g, n.rows, n.cols).setConstant(std::numeric_limits<T>::quiet_NaN());
#endif
    return g;
  }

  /// Whether gradients flow into `v`.
  bool requires_grad(Var<T> v) const {
    check(v, "requires_grad");
    return nodes_[v.index_].requires_grad;
  }

  /// The op name of node `v` ("matmul", "sigmoid", a custom op's name, ...).
  const char* op_name(Var<T> v) const {
    check(v, "op_name");
    return nodes_[v.index_].op;
  }

  /// Calls `fn(Var<T>)` for each input of the op that produced `v`, in order.
  template <typename Fn>
  void for_each_input(Var<T> v, Fn&& fn) {
    check(v, "for_each_input");
    const Node& n = nodes_[v.index_];
    for (std::uint32_t k = 0; k < n.input_count; ++k)
      fn(Var<T>(this, inputs_[n.input_begin + k], generation_));
  }

  /// Uninitialised rows x cols storage that lives until clear(): the place for a custom
  /// op's saved state (gate activations of a fused recurrent layer, masks, ...), so that
  /// recording a step allocates nothing from the system once the tape has warmed up.
  MatrixMap<T> scratch(Index rows, Index cols) {
    if (rows < 0 || cols < 0)
      throw ShapeError("scratch: negative shape " + detail::shape_str(rows, cols));
    return MatrixMap<T>(arena_.allocate_array<T>(static_cast<std::size_t>(rows * cols)), rows,
                        cols);
  }

  /// Calls `hook(dL/dv)` during backward once the gradient of `v` is complete.
  /// Used by diagnostics (per-step hidden-state gradients); costs nothing when unused.
  void register_hook(Var<T> v, std::function<void(ConstMatrixMap<T>)> hook) {
    check(v, "register_hook");
    nodes_[v.index_].has_hook = true;
    hooks_.emplace_back(v.index_, std::move(hook));
  }

  // ------------------------------------------------------------------ state

  /// Forgets every recorded node; handles taken before become invalid.
  /// Keeps all memory, so the next step of the same shape allocates nothing.
  void clear() {
    destroy_op_state();
    nodes_.clear();
    inputs_.clear();
    hooks_.clear();
    view_fingerprints_.clear();
    arena_.reset();
    backward_done_ = false;
    generation_ = detail::next_generation();
  }

  /// Number of recorded nodes.
  std::size_t size() const { return nodes_.size(); }

  /// Bytes of tape storage reserved from the system.
  std::size_t capacity_bytes() const { return arena_.capacity(); }
  /// Bytes of tape storage used by the current step.
  std::size_t used_bytes() const { return arena_.used(); }

  bool grad_enabled() const { return grad_enabled_; }
  /// Off: ops compute values but record no backward (see NoGradGuard).
  void set_grad_enabled(bool on) { grad_enabled_ = on; }

  bool anomaly_mode() const { return anomaly_mode_; }
  /// On: the first NaN or Inf in a forward value or a backward gradient throws
  /// AnomalyError naming the op and its tape position (see AnomalyGuard).
  void set_anomaly_mode(bool on) { anomaly_mode_ = on; }

  /// Throws TapeError when `v` is empty, from another tape, or from before a clear().
  void check(Var<T> v, const char* op) const {
    if (v.tape_ == nullptr)
      throw TapeError(std::string(op) + ": empty Var (default-constructed handle)");
    if (v.tape_ != this) throw TapeError(std::string(op) + ": Var belongs to another tape");
    if (v.generation_ != generation_ || v.index_ >= nodes_.size())
      throw TapeError(std::string(op) +
                      ": Var is stale (its tape was cleared after it was recorded)");
  }

 private:
  struct Node {
    const char* op;
    T* value;
    T* grad;
    Index rows, cols;
    std::uint32_t input_begin, input_count;
    void* state;
    void (*run_backward)(void*, Tape&, Var<T>);
    void (*destroy)(void*);
    bool requires_grad;
    bool has_hook;
  };

  static Node blank_node(const char* op, Index rows, Index cols) {
    Node n{};
    n.op = op;
    n.rows = rows;
    n.cols = cols;
    return n;
  }

  void check_backward_allowed(Var<T> root) const {
    if (backward_done_)
      throw TapeError(
          "backward: this tape was already differentiated; clear() it and record "
          "the next step before calling backward again");
    if (!nodes_[root.index_].requires_grad)
      throw TapeError("backward: root " + std::string(nodes_[root.index_].op) +
                      " does not require a gradient (no parameter or variable feeds it, or it "
                      "was recorded under no_grad)");
    for (const ViewFingerprint& f : view_fingerprints_) {  // filled in debug builds only
      const Node& n = nodes_[f.node];
      if (fingerprint(n.value, n.rows * n.cols) != f.hash)
        throw TapeError("backward: the matrix recorded by variable_view as '" + std::string(n.op) +
                        "' changed after it was recorded; keep it unchanged until clear(), "
                        "or record a copy with variable()");
    }
  }

  // FNV-1a over the bytes of `count` scalars: detects a viewed matrix written in between.
  static std::uint64_t fingerprint(const T* data, Index count) {
    const auto* bytes = reinterpret_cast<const unsigned char*>(data);
    std::uint64_t hash = 14695981039346656037ull;
    for (std::size_t i = 0; i < sizeof(T) * static_cast<std::size_t>(count); ++i)
      hash = (hash ^ bytes[i]) * 1099511628211ull;
    return hash;
  }

  // The reverse loop: every node from root down to the first, each rule run once its
  // gradient is complete (all its consumers come later on the tape).
  void reverse_pass(Var<T> root) {
    for (std::size_t i = root.index_ + 1; i-- > 0;) {
      Node& n = nodes_[i];
      if (n.grad == nullptr) continue;  // nothing flowed here
      Var<T> self(this, static_cast<std::uint32_t>(i), generation_);
      if (n.has_hook) run_hooks(self);
      if (n.run_backward == nullptr) continue;
      n.run_backward(n.state, *this, self);
      if (anomaly_mode_) check_input_grads(i);
    }
  }

  Var<T> push(const Node& n) {
    nodes_.push_back(n);
    return Var<T>(this, static_cast<std::uint32_t>(nodes_.size() - 1), generation_);
  }

  // Uninitialised arena storage for n's gradient; the caller fills it.
  T* allocate_grad(Node& n) {
    n.grad = arena_.allocate_array<T>(static_cast<std::size_t>(n.rows * n.cols));
    return n.grad;
  }

  // A leaf whose value is `storage` (never written through), or new arena storage.
  Var<T> new_leaf(const char* name, Index rows, Index cols, bool requires_grad,
                  const T* storage = nullptr) {
    if (rows <= 0 || cols <= 0)
      throw ShapeError(std::string(name) + ": empty matrix " + detail::shape_str(rows, cols) +
                       " (a batch needs at least one row and one column)");
    Node n = blank_node(name, rows, cols);
    n.value = storage != nullptr ? const_cast<T*>(storage)
                                 : arena_.allocate_array<T>(static_cast<std::size_t>(rows * cols));
    n.requires_grad = requires_grad;
    return push(n);
  }

  MatrixMap<T> value_map(std::uint32_t i) {
    return MatrixMap<T>(nodes_[i].value, nodes_[i].rows, nodes_[i].cols);
  }

  // A leaf's value = m. A stored matrix is copied in column ranges, one per worker thread
  // when large (see parallel_column_ranges); an expression is evaluated once, whole.
  template <typename Derived>
  void copy_value(Var<T> v, const Eigen::MatrixBase<Derived>& m) {
    MatrixMap<T> value = value_map(v.index_);
    if constexpr ((Eigen::internal::traits<Derived>::Flags & Eigen::DirectAccessBit) != 0) {
      detail::parallel_column_ranges(m.rows(), m.cols(), [&](Index begin, Index count) {
        value.middleCols(begin, count) = m.middleCols(begin, count).template cast<T>();
      });
    } else {
      value = m.template cast<T>();
    }
  }

  void destroy_op_state() {
    if (!has_destructors_) return;
    for (Node& n : nodes_)
      if (n.destroy != nullptr) n.destroy(n.state);
    has_destructors_ = false;
  }

  void run_hooks(Var<T> v) {
    const Node& n = nodes_[v.index_];
    for (auto& [index, hook] : hooks_)
      if (index == v.index_) hook(ConstMatrixMap<T>(n.grad, n.rows, n.cols));
  }

  void check_finite(std::size_t i, const char* pass, const T* data, Index count) const {
    for (Index k = 0; k < count; ++k) {
      if (!std::isfinite(data[k])) {
        const char* what = std::isnan(data[k]) ? "NaN" : "Inf";
        throw AnomalyError(std::string("anomaly: ") + what + " in " + pass + " of op '" +
                           nodes_[i].op + "' (tape node #" + std::to_string(i) + ", element " +
                           std::to_string(k) + " of " +
                           detail::shape_str(nodes_[i].rows, nodes_[i].cols) + ")");
      }
    }
  }

  // After node i's backward rule ran, a non-finite input gradient is that rule's doing.
  void check_input_grads(std::size_t i) const {
    const Node& n = nodes_[i];
    for (std::uint32_t k = 0; k < n.input_count; ++k) {
      const Node& in = nodes_[inputs_[n.input_begin + k]];
      if (in.grad == nullptr) continue;
      ConstMatrixMap<T> g(in.grad, in.rows, in.cols);
      if (!g.allFinite()) check_finite(i, "backward", in.grad, in.rows * in.cols);
    }
  }

  detail::Arena arena_;
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> inputs_;
  std::vector<std::pair<std::uint32_t, std::function<void(ConstMatrixMap<T>)>>> hooks_;
  std::uint64_t generation_;
  bool grad_enabled_ = true;
  bool anomaly_mode_ = false;
  bool backward_done_ = false;
  // Debug builds: what each variable_view's matrix held when it was recorded. The member
  // exists in every build, so that debug and release translation units agree on the layout.
  struct ViewFingerprint {
    std::uint32_t node;
    std::uint64_t hash;
  };
  std::vector<ViewFingerprint> view_fingerprints_;
  bool has_destructors_ = false;
};

// ------------------------------------------------------------ Var members

template <typename T>
Tape<T>& Var<T>::tape() const {
  if (tape_ == nullptr) throw TapeError("Var: empty handle (default-constructed)");
  return *tape_;
}
template <typename T>
Index Var<T>::rows() const {
  return tape().value(*this).rows();
}
template <typename T>
Index Var<T>::cols() const {
  return tape().value(*this).cols();
}
template <typename T>
ConstMatrixMap<T> Var<T>::value() const {
  return tape().value(*this);
}
template <typename T>
ConstMatrixMap<T> Var<T>::grad() const {
  MatrixMap<T> g = tape().grad(*this);
  return ConstMatrixMap<T>(g.data(), g.rows(), g.cols());
}
template <typename T>
T Var<T>::item() const {
  ConstMatrixMap<T> v = value();
  if (v.size() != 1)
    throw ShapeError("item: value has shape " + detail::shape_str(v) + ", not [1x1]");
  return v(0, 0);
}
template <typename T>
bool Var<T>::requires_grad() const {
  return tape().requires_grad(*this);
}
template <typename T>
void Var<T>::backward() const {
  tape().backward(*this);
}

}  // namespace gradflow
