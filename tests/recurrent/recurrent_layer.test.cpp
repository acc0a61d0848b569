#include <catch2/catch.hpp>
#include <map>
#include <vector>

#include "recurrent_test_util.hpp"

using namespace gradflow;
using test::make_layer;
using test::max_diff;
using test::random_matrix;
using test::Run;
using test::run;
using test::weighted_loss;

namespace {

const nn::CellKind kKinds[] = {nn::CellKind::RnnTanh, nn::CellKind::RnnRelu, nn::CellKind::LSTM,
                               nn::CellKind::GRU};

// A layer configuration, its sequence lengths (one per sample, or none) and step count.
struct Variant {
  const char* name;
  nn::RecurrentOptions options;
  std::vector<Index> lengths;
  Index steps = 5;
};

// Stacking, directions, batch-first, padding and checkpointing on 5 steps of 3 features.
std::vector<Variant> layer_variants(std::vector<Index> lengths) {
  return {
      {"one layer", nn::RecurrentOptions(3, 4), {}},
      {"two layers, bidirectional",
       nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true),
       {}},
      {"no bias, batch first", nn::RecurrentOptions(3, 4).bias(false).batch_first(true), {}},
      {"variable lengths, bidirectional", nn::RecurrentOptions(3, 4).bidirectional(true),
       std::move(lengths)},
      {"two layers, checkpointed every 2",
       nn::RecurrentOptions(3, 4).num_layers(2).checkpoint_every(2),
       {}},
  };
}

}  // namespace

TEST_CASE("The fused layers agree with the composed core-op layers to 1e-12",
          "[recurrent][fused]") {
  const std::vector<Variant> variants = layer_variants({5, 2, 4});
  // The fused layers skip the first step's W_hh h0 when h0 is zero, and the last backward
  // step's W_hh^T dG when nothing asks for dL/dh0; the composed layers skip nothing. A zero
  // h0 given as a variable still needs dL/dh0 through that last product.
  enum class State { Random, Zero, None };
  const State states[] = {State::Random, State::Zero, State::None};
  const char* state_names[] = {"random h0", "zero h0", "no h0"};
  for (nn::CellKind kind : kKinds) {
    for (const Variant& v : variants) {
      for (State state : states) {
        DYNAMIC_SECTION(test::kind_name(kind)
                        << ", " << v.name << ", " << state_names[int(state)]) {
          auto fused = make_layer<double>(kind, nn::RecurrentOptions(v.options).seed(11));
          auto composed =
              make_layer<double>(kind, nn::RecurrentOptions(v.options).seed(11).fused(false));
          const std::vector<Index>* lengths = v.lengths.empty() ? nullptr : &v.lengths;
          const bool given = state != State::None, zero = state == State::Zero;
          Run a = run(*fused, 5, 3, given, lengths, zero);
          Run b = run(*composed, 5, 3, given, lengths, zero);
          CHECK(max_diff(a.output, b.output) < 1e-12);
          CHECK(max_diff(a.h_n, b.h_n) < 1e-12);
          CHECK(max_diff(a.grad_x, b.grad_x) < 1e-12);
          CHECK(max_diff(a.grad_h0, b.grad_h0) < 1e-12);
          if (given) CHECK(b.grad_h0.cwiseAbs().maxCoeff() > 1e-3);
          REQUIRE(a.param_grads.size() == b.param_grads.size());
          for (std::size_t k = 0; k < a.param_grads.size(); ++k)
            CHECK(max_diff(a.param_grads[k], b.param_grads[k]) < 1e-12);
        }
      }
    }
  }
}

TEST_CASE(
    "Long sequences, their gradients taken a chunk of steps at a time, match the composed layers",
    "[recurrent][fused]") {
  // A segment whose gates' gradients (G*H x T*B) do not fit in L2 while dW_ih and dW_hh fit
  // in half of it: there the fused backward takes the weight and input gradients of each
  // chunk of steps right after its loop ran them (FusedRecurrence::interleaved_backward),
  // and the forward projects a chunk of steps before running them. Steps sized by this
  // machine's L2, so that the chunked path runs wherever the test does. On 2 threads the
  // same sequences take the pipelined passes (FusedRecurrence::pipelined) over many chunks.
  const Index batch = 64, hidden = 4, input = 3;
  struct Variant {
    const char* name;
    nn::RecurrentOptions options;
    bool padded;
    bool checkpointed;  // in segments of the steps that pass L2, two and a half of them
  };
  const Variant variants[] = {
      {"one layer", nn::RecurrentOptions(input, hidden), false, false},
      {"bidirectional, variable lengths", nn::RecurrentOptions(input, hidden).bidirectional(true),
       true, false},
      {"feature-major, no bias",
       nn::RecurrentOptions(input, hidden).feature_major(true).bias(false), false, false},
      {"checkpointed, variable lengths", nn::RecurrentOptions(input, hidden), true, true},
  };
  const std::ptrdiff_t l2 = Eigen::l2CacheSize();
  for (nn::CellKind kind : kKinds) {
    const Index gh = nn::gate_count(kind) * hidden;
    const Index segment = l2 / (gh * batch * Index(sizeof(double))) + 3;
    REQUIRE(gh * segment * batch * Index(sizeof(double)) > l2);
    REQUIRE(gh * (input + hidden) * Index(sizeof(double)) <= l2 / 2);
    for (const Variant& v : variants) {
      const Index steps = v.checkpointed ? 2 * segment + segment / 2 : segment;
      std::vector<Index> lengths(batch, steps);
      for (Index b = 0; b < batch; b += 3) lengths[b] = 1 + (b * 37) % steps;
      nn::RecurrentOptions options = v.options;
      if (v.checkpointed) options.checkpoint_every(segment);
      for (int threads : {1, 2}) {
        DYNAMIC_SECTION(test::kind_name(kind) << ", " << v.name << ", " << steps << " steps, "
                                              << threads << " thread(s)") {
          const test::ThreadCount count(threads);
          auto fused = make_layer<double>(kind, nn::RecurrentOptions(options).seed(5));
          auto composed =
              make_layer<double>(kind, nn::RecurrentOptions(options).seed(5).fused(false));
          Run a = run(*fused, steps, batch, true, v.padded ? &lengths : nullptr);
          Run b = run(*composed, steps, batch, true, v.padded ? &lengths : nullptr);
          INFO("output " << max_diff(a.output, b.output) << ", dx "
                         << max_diff(a.grad_x, b.grad_x));
          CHECK(max_diff(a.output, b.output) < 1e-12);
          CHECK(max_diff(a.h_n, b.h_n) < 1e-12);
          CHECK(max_diff(a.grad_x, b.grad_x) < 1e-12);
          CHECK(max_diff(a.grad_h0, b.grad_h0) < 1e-12);
          REQUIRE(a.param_grads.size() == b.param_grads.size());
          for (std::size_t k = 0; k < a.param_grads.size(); ++k) {
            INFO("parameter " << k << ": " << max_diff(a.param_grads[k], b.param_grads[k]));
            CHECK(max_diff(a.param_grads[k], b.param_grads[k]) < 1e-10);
          }
        }
      }
    }
  }
}

TEST_CASE("Frozen input or recurrent weights leave the fused layers' other gradients as they were",
          "[recurrent][fused]") {
  // The weight gradients share one pass over dG (and GRU's dGn); with one of the two weights
  // frozen, that pass makes only the other product.
  const char* frozen_names[] = {"weight_ih", "weight_hh"};
  for (nn::CellKind kind : kKinds) {
    for (const char* frozen : frozen_names) {
      for (Index every : {0, 2}) {
        DYNAMIC_SECTION(test::kind_name(kind)
                        << ", " << frozen << " frozen, checkpoint every " << every) {
          const auto options = nn::RecurrentOptions(3, 4).num_layers(2).checkpoint_every(every);
          auto layer = make_layer<double>(kind, nn::RecurrentOptions(options).seed(17));
          const Run all = run(*layer, 5, 3, true);
          std::vector<bool> is_frozen;
          for (auto& [name, p] : layer->named_parameters()) {
            is_frozen.push_back(name.rfind(frozen, 0) == 0);
            p->set_requires_grad(!is_frozen.back());
          }
          const Run some = run(*layer, 5, 3, true);
          CHECK(max_diff(all.grad_x, some.grad_x) < 1e-14);
          CHECK(max_diff(all.grad_h0, some.grad_h0) < 1e-14);
          REQUIRE(all.param_grads.size() == some.param_grads.size());
          for (std::size_t k = 0; k < all.param_grads.size(); ++k) {
            INFO("parameter " << k << (is_frozen[k] ? ", frozen" : ""));
            if (is_frozen[k])
              CHECK(some.param_grads[k].cwiseAbs().maxCoeff() == 0.0);
            else
              CHECK(max_diff(all.param_grads[k], some.param_grads[k]) < 1e-14);
          }
        }
      }
    }
  }
}

TEST_CASE("Gradient checkpointing gives the gradients of the full-memory pass",
          "[recurrent][checkpoint]") {
  struct Variant {
    const char* name;
    nn::RecurrentOptions options;
    std::vector<Index> lengths;
  };
  const Variant variants[] = {
      {"one layer", nn::RecurrentOptions(3, 4), {}},
      {"two layers, bidirectional",
       nn::RecurrentOptions(3, 4).num_layers(2).bidirectional(true),
       {}},
      {"variable lengths, bidirectional",
       nn::RecurrentOptions(3, 4).bidirectional(true),
       {7, 2, 5}},
  };
  // Segments of 1 step, uneven (3 into 7), one short of the sequence, and longer than it.
  for (Index every : {1, 3, 6, 20}) {
    for (nn::CellKind kind : kKinds) {
      for (const Variant& v : variants) {
        DYNAMIC_SECTION(test::kind_name(kind) << ", " << v.name << ", every " << every) {
          auto plain = make_layer<double>(kind, nn::RecurrentOptions(v.options).seed(13));
          auto ck = make_layer<double>(
              kind, nn::RecurrentOptions(v.options).seed(13).checkpoint_every(every));
          const std::vector<Index>* lengths = v.lengths.empty() ? nullptr : &v.lengths;
          Run a = run(*plain, 7, 3, true, lengths), b = run(*ck, 7, 3, true, lengths);
          // The same operations, but products of fewer columns (a segment's): in AVX builds
          // Eigen's kernel then rounds some results differently (1 ulp seen with
          // -march=native on Zen 5; SSE2 builds were identical), as a BLAS may.
          const double same = 1e-15;
          INFO("output " << max_diff(a.output, b.output) << ", h_n " << max_diff(a.h_n, b.h_n));
          CHECK(max_diff(a.output, b.output) <= same);
          CHECK(max_diff(a.h_n, b.h_n) <= same);
          CHECK(max_diff(a.grad_x, b.grad_x) < 1e-14);
          CHECK(max_diff(a.grad_h0, b.grad_h0) < 1e-14);
          for (std::size_t k = 0; k < a.param_grads.size(); ++k)
            CHECK(max_diff(a.param_grads[k], b.param_grads[k]) < 1e-13);
        }
      }
    }
  }
}

TEST_CASE("Gradient checkpointing needs less tape memory on long sequences",
          "[recurrent][checkpoint]") {
  auto tape_bytes = [](Index every) {
    nn::LSTM<float> lstm(nn::LSTMOptions(8, 32).checkpoint_every(every));
    Tape<float> tape;
    auto out = lstm.forward(tape.constant(Matrix<float>::Ones(400 * 4, 8)), 4);
    sum(out.output).backward();
    return tape.used_bytes();
  };
  const std::size_t full = tape_bytes(0), checkpointed = tape_bytes(20);
  INFO("full " << full << " bytes, every 20 steps " << checkpointed << " bytes");
  CHECK(double(checkpointed) < 0.5 * double(full));
}

TEST_CASE("Checkpointed layers pass gradcheck", "[recurrent][checkpoint][gradcheck]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      auto layer = make_layer<double>(
          kind, nn::RecurrentOptions(2, 3).bidirectional(true).checkpoint_every(2).seed(5));
      const bool lstm = kind == nn::CellKind::LSTM;
      const Index B = 2;
      auto f = [&](Tape<double>& tape, const std::vector<Var<double>>& v) {
        auto out =
            layer->forward(v[0], B, std::vector<Index>{5, 3}, v[1], lstm ? v[2] : Var<double>());
        return weighted_loss(tape, out);
      };
      auto report = diag::gradcheck<double>(
          f, {random_matrix<double>(5 * B, 2, 1), random_matrix<double>(2 * B, 3, 2),
              random_matrix<double>(2 * B, 3, 3)});
      INFO(report.summary());
      CHECK(report.passed);
    }
  }
}

TEST_CASE("Recurrent layers pass gradcheck for inputs and initial states",
          "[recurrent][gradcheck]") {
  for (nn::CellKind kind : kKinds) {
    for (bool bidirectional : {false, true}) {
      DYNAMIC_SECTION(test::kind_name(kind)
                      << (bidirectional ? ", bidirectional" : "") << ", variable lengths") {
        auto layer = make_layer<double>(
            kind, nn::RecurrentOptions(2, 3).num_layers(2).bidirectional(bidirectional).seed(5));
        const bool lstm = kind == nn::CellKind::LSTM;
        const Index D = bidirectional ? 2 : 1, B = 2;
        auto f = [&](Tape<double>& tape, const std::vector<Var<double>>& v) {
          auto out =
              layer->forward(v[0], B, std::vector<Index>{4, 2}, v[1], lstm ? v[2] : Var<double>());
          return weighted_loss(tape, out);
        };
        auto report = diag::gradcheck<double>(
            f, {random_matrix<double>(4 * B, 2, 1), random_matrix<double>(2 * D * B, 3, 2),
                random_matrix<double>(2 * D * B, 3, 3)});
        INFO(report.summary());
        CHECK(report.passed);
      }
    }
  }
}

TEST_CASE("Recurrent weight gradients match central finite differences", "[recurrent][gradcheck]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      auto layer = make_layer<double>(kind, nn::RecurrentOptions(2, 3).bidirectional(true).seed(9));
      const Matrix<double> x = random_matrix<double>(4 * 2, 2, 4);
      auto loss_value = [&]() {
        Tape<double> tape;
        auto out = layer->forward(tape.constant(x), 2, std::vector<Index>{4, 3});
        return weighted_loss(tape, out).item();
      };
      {
        Tape<double> tape;
        auto out = layer->forward(tape.constant(x), 2, std::vector<Index>{4, 3});
        layer->zero_grad();
        weighted_loss(tape, out).backward();
      }
      double worst = 0.0;
      const double h = 1e-6;
      for (auto& [name, p] : layer->named_parameters()) {
        for (Index i = 0; i < p->size(); ++i) {
          double& w = p->value().data()[i];
          const double saved = w;
          w = saved + h;
          const double up = loss_value();
          w = saved - h;
          const double down = loss_value();
          w = saved;
          const double numeric = (up - down) / (2 * h), analytic = p->grad().data()[i];
          worst = std::max(worst, std::abs(numeric - analytic) /
                                      std::max({1.0, std::abs(numeric), std::abs(analytic)}));
        }
      }
      CHECK(worst < 1e-7);
    }
  }
}

TEST_CASE("Padded steps change neither the final states nor any gradient", "[recurrent][lengths]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      const auto options = nn::RecurrentOptions(2, 3).bidirectional(true).seed(4);
      auto padded = make_layer<double>(kind, options);
      auto alone = make_layer<double>(kind, options);
      // Sample 1 has 2 valid steps of 4; run it alone (B = 1, T = 2) as the oracle.
      const Matrix<double> x = random_matrix<double>(4 * 2, 2, 8);
      Matrix<double> x1(2, 2);
      x1.row(0) = x.row(0 * 2 + 1);
      x1.row(1) = x.row(1 * 2 + 1);
      Tape<double> tape;
      Var<double> xp = tape.variable(x);
      auto out = padded->forward(xp, 2, std::vector<Index>{4, 2});
      padded->zero_grad();
      // Only sample 1's final states enter the loss.
      Matrix<double> pick = Matrix<double>::Zero(out.h_n.rows(), 3);
      pick.row(1).setOnes();
      pick.row(3).setOnes();
      sum(out.h_n * tape.constant(pick)).backward();

      Tape<double> tape1;
      Var<double> xa = tape1.variable(x1);
      auto out1 = alone->forward(xa, 1);
      alone->zero_grad();
      sum(out1.h_n).backward();

      CHECK(max_diff(Matrix<double>(out.h_n.value().row(1)),
                     Matrix<double>(out1.h_n.value().row(0))) < 1e-14);
      CHECK(max_diff(Matrix<double>(out.h_n.value().row(3)),
                     Matrix<double>(out1.h_n.value().row(1))) < 1e-14);
      CHECK(out.output.value().row(2 * 2 + 1).cwiseAbs().maxCoeff() == 0.0);  // padded output is 0
      CHECK(xp.grad().row(2 * 2 + 1).cwiseAbs().maxCoeff() == 0.0);  // padded input gets nothing
      CHECK(max_diff(Matrix<double>(xp.grad().row(1)), Matrix<double>(xa.grad().row(0))) < 1e-13);
      auto pa = padded->named_parameters(), pb = alone->named_parameters();
      for (std::size_t k = 0; k < pa.size(); ++k)
        CHECK(max_diff(pa[k].second->grad(), pb[k].second->grad()) < 1e-13);
    }
  }
}

TEST_CASE("The hidden-gradient hook delivers dL/dh_t for every step, fused or composed",
          "[recurrent][hook]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      std::map<std::pair<Index, Index>, Matrix<double>> seen[2];
      for (int variant = 0; variant < 2; ++variant) {
        auto layer = make_layer<double>(
            kind, nn::RecurrentOptions(2, 3).num_layers(2).fused(variant == 0).seed(3));
        layer->set_hidden_grad_hook(
            [&seen, variant](Index l, Index d, Index t, ConstMatrixMap<double> dh) {
              REQUIRE(d == 0);
              seen[variant][{l, t}] = dh;
            });
        Tape<double> tape;
        auto out = layer->forward(tape.constant(random_matrix<double>(6 * 2, 2, 5)), 2);
        weighted_loss(tape, out).backward();
      }
      REQUIRE(seen[0].size() == 12);  // 2 layers x 6 steps
      REQUIRE(seen[1].size() == 12);
      for (auto& [key, dh] : seen[0]) {
        REQUIRE(dh.rows() == 2);
        REQUIRE(dh.cols() == 3);
        CHECK(max_diff(dh, seen[1][key]) < 1e-12);
      }
    }
  }
}

TEST_CASE("A loss on the outputs alone or on the final states alone reaches every weight",
          "[recurrent][fused]") {
  // The fused layer records its final states as a node of their own, which hands its
  // gradient to the layer's node: it must arrive whether or not the outputs are used.
  for (nn::CellKind kind : kKinds) {
    for (bool states_only : {false, true}) {
      DYNAMIC_SECTION(test::kind_name(kind)
                      << (states_only ? ", final states only" : ", outputs only")) {
        const nn::RecurrentOptions o = nn::RecurrentOptions(3, 4).num_layers(2).seed(5);
        auto fused = make_layer<double>(kind, o);
        auto composed = make_layer<double>(kind, nn::RecurrentOptions(o).fused(false));
        auto grads = [&](nn::RecurrentLayer<double>& layer) {
          Tape<double> tape;
          Var<double> x = tape.variable(random_matrix<double>(4 * 2, 3, 9));
          auto out = layer.forward(x, 2);
          Var<double> loss = states_only ? sum(out.h_n * out.h_n) : sum(out.output * out.output);
          if (states_only && out.c_n.valid()) loss = loss + sum(out.c_n * out.c_n);
          layer.zero_grad();
          loss.backward();
          std::vector<Matrix<double>> g{x.grad()};
          for (auto& [name, p] : layer.named_parameters()) g.push_back(p->grad());
          return g;
        };
        const auto a = grads(*fused), b = grads(*composed);
        REQUIRE(a.size() == b.size());
        CHECK(a[0].norm() > 0);
        for (std::size_t k = 0; k < a.size(); ++k) CHECK(max_diff(a[k], b[k]) < 1e-12);
      }
    }
  }
}

TEST_CASE("Truncated BPTT carries the state forward without backpropagating into old chunks",
          "[recurrent][tbptt]") {
  nn::LSTM<double> lstm(nn::LSTMOptions(2, 3).seed(2));
  const Matrix<double> x = random_matrix<double>(6 * 2, 2, 6);
  Tape<double> full_tape;
  auto full = lstm.forward(full_tape.constant(x), 2);

  Matrix<double> h = Matrix<double>::Zero(2, 3), c = Matrix<double>::Zero(2, 3);
  Tape<double> tape;
  for (Index chunk = 0; chunk < 2; ++chunk) {
    tape.clear();
    Var<double> h0 = tape.constant(h), c0 = tape.constant(c);
    auto out = lstm.forward(tape.constant(Matrix<double>(x.middleRows(chunk * 6, 6))), 2, h0, c0);
    lstm.zero_grad();
    sum(out.h_n).backward();
    CHECK(max_diff(Matrix<double>(out.output.value()),
                   Matrix<double>(full.output.value().middleRows(chunk * 6, 6))) < 1e-14);
    CHECK_FALSE(h0.requires_grad());  // the carried state is a constant: no path back
    h = out.h_n.value();
    c = out.c_n.value();
  }
  CHECK(max_diff(h, Matrix<double>(full.h_n.value())) < 1e-14);
}

TEST_CASE("Recurrent layers reject bad input with the layer's name and the shapes",
          "[recurrent][errors]") {
  using Catch::Matchers::Contains;
  nn::GRU<double> gru(nn::GRUOptions(4, 3).num_layers(2));
  Tape<double> tape;
  Var<double> x = tape.constant(Matrix<double>::Zero(6, 4));
  REQUIRE_THROWS_WITH(gru.forward(tape.constant(Matrix<double>::Zero(6, 5)), 2),
                      Contains("GRU") && Contains("[6x5]") && Contains("expects 4"));
  REQUIRE_THROWS_WITH(gru.forward(x, 4), Contains("GRU") && Contains("batch 4"));
  REQUIRE_THROWS_WITH(gru.forward(x, 2, tape.constant(Matrix<double>::Zero(2, 3))),
                      Contains("h0") && Contains("[2x3]") && Contains("[4x3]"));
  REQUIRE_THROWS_WITH(gru.forward(x, 2, std::vector<Index>{3, 0}), Contains("length 0"));
  REQUIRE_THROWS_WITH(gru.forward(x, 2, std::vector<Index>{4, 1}), Contains("length 4"));
  REQUIRE_THROWS_WITH(gru.forward(x, 2, std::vector<Index>{1}), Contains("1 lengths"));
}

TEST_CASE("Loading mismatched weights fails and leaves the layer unchanged",
          "[recurrent][errors]") {
  nn::LSTM<double> lstm(nn::LSTMOptions(2, 3));
  std::map<std::string, Matrix<double>> weights;
  for (auto& [name, p] : lstm.named_parameters())
    weights[name] = Matrix<double>::Ones(p->rows(), p->cols());
  const Matrix<double> before = lstm.weight_hh(0).value();
  weights["weight_hh_l0"] = Matrix<double>::Ones(12, 4);
  REQUIRE_THROWS_WITH(lstm.load_weights(weights), Catch::Matchers::Contains("weight_hh_l0") &&
                                                      Catch::Matchers::Contains("[12x4]") &&
                                                      Catch::Matchers::Contains("[12x3]"));
  CHECK(lstm.weight_hh(0).value() == before);
  CHECK(lstm.weight_ih(0).value() != Matrix<double>::Ones(12, 2));
  weights["weight_hh_l0"] = Matrix<double>::Ones(12, 3);
  weights["weight_hh_l1"] = Matrix<double>::Ones(12, 3);
  REQUIRE_THROWS_WITH(lstm.load_weights(weights),
                      Catch::Matchers::Contains("unknown weight 'weight_hh_l1'"));
  weights.erase("weight_hh_l1");
  lstm.load_weights(weights);
  CHECK(lstm.weight_hh(0).value() == Matrix<double>::Ones(12, 3));
}

TEST_CASE("Initialisation options change the weights they name", "[recurrent][init]") {
  nn::LSTM<double> plain(nn::LSTMOptions(3, 4).seed(1));
  const double bound = 0.5;  // 1/sqrt(4)
  CHECK(plain.weight_hh(0).value().cwiseAbs().maxCoeff() <= bound);
  nn::LSTM<double> lstm(
      nn::LSTMOptions(3, 4).seed(1).orthogonal_recurrent(true).forget_bias_one(true));
  const Matrix<double> block = lstm.weight_hh(0).value().topRows(4);
  CHECK((block.transpose() * block - Matrix<double>::Identity(4, 4)).cwiseAbs().maxCoeff() < 1e-12);
  auto params = lstm.named_parameters();
  for (auto& [name, p] : params) {
    if (name == "bias_ih_l0") CHECK(p->value().middleCols(4, 4) == Matrix<double>::Ones(1, 4));
    if (name == "bias_hh_l0") CHECK(p->value().middleCols(4, 4) == Matrix<double>::Zero(1, 4));
  }
}

TEST_CASE("Float layers compute what double layers compute", "[recurrent][float]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      auto lf = make_layer<float>(kind, nn::RecurrentOptions(3, 5).bidirectional(true).seed(3));
      auto ld = make_layer<double>(kind, nn::RecurrentOptions(3, 5).bidirectional(true).seed(3));
      const Matrix<double> x = random_matrix<double>(7 * 2, 3, 1);
      Tape<float> tf;
      Tape<double> td;
      Var<float> xf = tf.variable(x.cast<float>());
      Var<double> xd = td.variable(x);
      auto of = lf->forward(xf, 2);
      auto od = ld->forward(xd, 2);
      sum(of.output).backward();
      sum(od.output).backward();
      CHECK((of.output.value().cast<double>() - od.output.value()).cwiseAbs().maxCoeff() < 1e-5);
      CHECK((xf.grad().cast<double>() - xd.grad()).cwiseAbs().maxCoeff() < 1e-4);
    }
  }
}

// With an AVX-512 OpenBLAS (GRADFLOW_USE_BLAS builds, OPENBLAS_CORETYPE=SkylakeX) float
// layers run their per-step products on W_hh tiles of at most 64 x 128 (PackedLhs): H = 70
// cuts W_hh (G*70 x 70) and W_hh^T into full and partial tiles on both edges. Padding and
// checkpoint segments take every path of the step loops through them.
TEST_CASE("Float layers on several W_hh tiles, padded and checkpointed, match double layers",
          "[recurrent][float]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      const Index B = 5, T = 9, I = 20, H = 70;
      const auto options = nn::RecurrentOptions(I, H).checkpoint_every(4).seed(5);
      auto lf = make_layer<float>(kind, options);
      auto ld = make_layer<double>(kind, options);
      const std::vector<Index> lengths{9, 4, 9, 1, 7};
      const Matrix<double> x = random_matrix<double>(T * B, I, 6);
      Tape<float> tf;
      Tape<double> td;
      Var<float> xf = tf.variable(x.cast<float>());
      Var<double> xd = td.variable(x);
      auto of = lf->forward(xf, B, lengths);
      auto od = ld->forward(xd, B, lengths);
      sum(of.output * of.output).backward();
      sum(od.output * od.output).backward();
      CHECK(od.output.value().norm() > 0);
      CHECK(max_diff(Matrix<double>(of.output.value().cast<double>()), od.output.value()) < 1e-4);
      CHECK(max_diff(Matrix<double>(xf.grad().cast<double>()), xd.grad()) < 1e-3);
      const double w_scale = ld->weight_hh(0).grad().cwiseAbs().maxCoeff();
      CHECK(w_scale > 0);
      CHECK(max_diff(Matrix<double>(lf->weight_hh(0).grad().cast<double>()),
                     ld->weight_hh(0).grad()) < 1e-4 * (1 + w_scale));
    }
  }
}

// feature_major runs the fused kernel on [features x (T*B)] columns with other products (the
// projection's right-hand side, dW_ih's and dX's operands) than the row layout: the row
// layout, checked above against the composed layers and finite differences, is its oracle.
// 61 steps of 5 make several chunks of the projection and of dX (pipeline_chunk()).
TEST_CASE("Feature-major layers compute what the row layout computes", "[recurrent][layout]") {
  std::vector<Variant> variants = layer_variants({5, 2, 4, 1, 5});
  variants.push_back(
      {"composed", nn::RecurrentOptions(3, 4).bidirectional(true).fused(false), {5, 2, 4, 1, 5}});
  variants.push_back({"61 steps, checkpointed every 40, variable lengths",
                      nn::RecurrentOptions(7, 20).checkpoint_every(40),
                      {61, 30, 5, 61, 44},
                      61});
  for (nn::CellKind kind : kKinds) {
    for (const Variant& v : variants) {
      for (int threads : {1, 2})
        DYNAMIC_SECTION(test::kind_name(kind) << ", " << v.name << ", " << threads << " threads") {
          // At 2 threads (with OpenMP) the backward's dX comes a chunk at a time, at 1 over
          // whole segments.
          test::ThreadCount count(threads);
          const auto options = nn::RecurrentOptions(v.options).seed(13);
          auto by_rows = make_layer<double>(kind, options);
          auto by_columns =
              make_layer<double>(kind, nn::RecurrentOptions(options).feature_major(true));
          const std::vector<Index>* lengths = v.lengths.empty() ? nullptr : &v.lengths;
          // Twice on one tape: the second run's buffers hold the first's values, which a
          // gradient written over must not keep (in a new tape they are often zeros).
          Tape<double> tape;
          run(*by_columns, v.steps, 5, true, lengths, false, &tape);
          Run a = run(*by_columns, v.steps, 5, true, lengths, false, &tape);
          Run b = run(*by_rows, v.steps, 5, true, lengths);
          CHECK(b.output.cwiseAbs().maxCoeff() > 1e-3);
          CHECK(b.grad_x.cwiseAbs().maxCoeff() > 1e-3);
          CHECK(max_diff(a.output, b.output) < 1e-12);
          CHECK(max_diff(a.h_n, b.h_n) < 1e-12);
          CHECK(max_diff(a.grad_x, b.grad_x) < 1e-12);
          CHECK(max_diff(a.grad_h0, b.grad_h0) < 1e-12);
          REQUIRE(a.param_grads.size() == b.param_grads.size());
          for (std::size_t k = 0; k < a.param_grads.size(); ++k)
            CHECK(max_diff(a.param_grads[k], b.param_grads[k]) < 1e-12);
        }
    }
  }
}

TEST_CASE("Feature-major layers pass gradcheck and name the columns on bad input",
          "[recurrent][layout][gradcheck]") {
  for (nn::CellKind kind : kKinds) {
    DYNAMIC_SECTION(test::kind_name(kind)) {
      auto layer = make_layer<double>(kind, nn::RecurrentOptions(2, 3)
                                                .bidirectional(true)
                                                .checkpoint_every(2)
                                                .feature_major(true)
                                                .seed(5));
      const bool lstm = kind == nn::CellKind::LSTM;
      const Index B = 2;
      auto f = [&](Tape<double>& tape, const std::vector<Var<double>>& v) {
        auto out =
            layer->forward(v[0], B, std::vector<Index>{5, 3}, v[1], lstm ? v[2] : Var<double>());
        return weighted_loss(tape, out, 7, true);
      };
      auto report = diag::gradcheck<double>(
          f, {random_matrix<double>(2, 5 * B, 1), random_matrix<double>(2 * B, 3, 2),
              random_matrix<double>(2 * B, 3, 3)});
      INFO(report.summary());
      CHECK(report.passed);

      Tape<double> tape;
      CHECK_THROWS_WITH(layer->forward(tape.constant(Matrix<double>::Zero(5 * B, 2)), B),
                        Catch::Contains("10 features per column") && Catch::Contains("expects 2"));
      CHECK_THROWS_WITH(layer->forward(tape.constant(Matrix<double>::Zero(2, 7)), B),
                        Catch::Contains("columns must be T*B"));
    }
  }
}
