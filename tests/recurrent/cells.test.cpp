#include <catch2/catch.hpp>
#include <map>

#include "recurrent_test_util.hpp"

using namespace gradflow;
using test::random_matrix;

namespace {
// Copies a cell's weights into layer 0 of a one-step sequence layer.
template <typename Cell>
void copy_into(Cell& cell, nn::RecurrentLayer<double>& layer) {
  std::map<std::string, Matrix<double>> w;
  for (auto& [name, p] : cell.named_parameters()) w[name + "_l0"] = p->value();
  layer.load_weights(w);
}
}  // namespace

TEST_CASE("Each cell computes one step of its sequence layer", "[recurrent][cells]") {
  const Matrix<double> x = random_matrix<double>(3, 2, 1), h = random_matrix<double>(3, 4, 2);
  const Matrix<double> c = random_matrix<double>(3, 4, 3);
  SECTION("LSTMCell") {
    nn::LSTMCell<double> cell(nn::CellOptions(2, 4).seed(9));
    nn::LSTM<double> layer(nn::LSTMOptions(2, 4));
    copy_into(cell, layer);
    Tape<double> tape;
    auto [h1, c1] = cell.forward(tape.constant(x), tape.constant(h), tape.constant(c));
    auto out = layer.forward(tape.constant(x), 3, tape.constant(h), tape.constant(c));
    CHECK((h1.value() - out.h_n.value()).cwiseAbs().maxCoeff() < 1e-14);
    CHECK((c1.value() - out.c_n.value()).cwiseAbs().maxCoeff() < 1e-14);
  }
  SECTION("GRUCell") {
    nn::GRUCell<double> cell(nn::CellOptions(2, 4).seed(9));
    nn::GRU<double> layer(nn::GRUOptions(2, 4));
    copy_into(cell, layer);
    Tape<double> tape;
    Var<double> h1 = cell.forward(tape.constant(x), tape.constant(h));
    auto out = layer.forward(tape.constant(x), 3, tape.constant(h));
    CHECK((h1.value() - out.h_n.value()).cwiseAbs().maxCoeff() < 1e-14);
  }
  SECTION("RNNCell with ReLU") {
    nn::RNNCell<double> cell(nn::CellOptions(2, 4).relu(true).seed(9));
    nn::RNN<double> layer(nn::RNNOptions(2, 4).relu(true));
    copy_into(cell, layer);
    Tape<double> tape;
    Var<double> h1 = cell.forward(tape.constant(x), tape.constant(h));
    auto out = layer.forward(tape.constant(x), 3, tape.constant(h));
    CHECK((h1.value() - out.h_n.value()).cwiseAbs().maxCoeff() < 1e-14);
  }
}

TEST_CASE("Cells pass gradcheck, the reset-before GRU included", "[recurrent][cells][gradcheck]") {
  nn::LSTMCell<double> lstm(nn::CellOptions(3, 2));
  nn::GRUCell<double> gru_after(nn::CellOptions(3, 2));
  nn::GRUCell<double> gru_before(nn::CellOptions(3, 2).reset_after(false));
  nn::RNNCell<double> rnn(nn::CellOptions(3, 2).bias(false));
  const std::vector<Matrix<double>> in{random_matrix<double>(2, 3, 1),
                                       random_matrix<double>(2, 2, 2),
                                       random_matrix<double>(2, 2, 3)};
  auto check = [&](auto f) {
    auto report = diag::gradcheck<double>(f, in);
    INFO(report.summary());
    CHECK(report.passed);
  };
  check([&](Tape<double>& t, const std::vector<Var<double>>& v) {
    auto [h, c] = lstm.forward(v[0], v[1], v[2]);
    return sum(h * t.constant(Matrix<double>::Constant(2, 2, 0.7))) + sum(square(c));
  });
  check([&](Tape<double>&, const std::vector<Var<double>>& v) {
    return sum(square(gru_after.forward(v[0], v[1])));
  });
  check([&](Tape<double>&, const std::vector<Var<double>>& v) {
    return sum(square(gru_before.forward(v[0], v[1])));
  });
  check([&](Tape<double>&, const std::vector<Var<double>>& v) {
    return sum(square(rnn.forward(v[0], v[1])));
  });
}

TEST_CASE("The reset-before GRU differs from PyTorch's reset-after form", "[recurrent][cells]") {
  // Same weights, different placement of r: the outputs must differ (or the option is dead).
  nn::GRU<double> after(nn::GRUOptions(2, 3).seed(4));
  nn::GRU<double> before(nn::GRUOptions(2, 3).seed(4).reset_after(false));
  Tape<double> tape;
  const Matrix<double> x = random_matrix<double>(4 * 2, 2, 1);
  auto a = after.forward(tape.constant(x), 2, tape.constant(random_matrix<double>(2, 3, 2)));
  auto b = before.forward(tape.constant(x), 2, tape.constant(random_matrix<double>(2, 3, 2)));
  CHECK((a.output.value() - b.output.value()).cwiseAbs().maxCoeff() > 1e-3);
}

TEST_CASE("Cells name themselves and the shapes on bad input", "[recurrent][cells][errors]") {
  nn::LSTMCell<double> cell(nn::CellOptions(3, 2));
  Tape<double> tape;
  REQUIRE_THROWS_WITH(cell.forward(tape.constant(Matrix<double>::Zero(2, 4)),
                                   tape.constant(Matrix<double>::Zero(2, 2)),
                                   tape.constant(Matrix<double>::Zero(2, 2))),
                      Catch::Matchers::Contains("LSTMCell") && Catch::Matchers::Contains("[2x4]"));
  REQUIRE_THROWS_WITH(cell.forward(tape.constant(Matrix<double>::Zero(2, 3)),
                                   tape.constant(Matrix<double>::Zero(2, 3)),
                                   tape.constant(Matrix<double>::Zero(2, 2))),
                      Catch::Matchers::Contains("state [2x3]"));
}
