#include <catch2/catch.hpp>
#include <cstdio>
#include <fstream>
#include <gradflow/io/weights.hpp>
#include <gradflow/nn/nn.hpp>
#include <memory>
#include <sstream>
#include <string>

using namespace gradflow;
using namespace gradflow::nn;

namespace {

template <typename T>
Sequential<T> make_net(std::uint64_t seed, Index hidden = 5) {
  Sequential<T> net;
  net.push_back(Dense<T>(DenseOptions(3, hidden).seed(seed)))
      .push_back(BatchNorm1d<T>(BatchNorm1dOptions(hidden)))
      .push_back(ReLU<T>())
      .push_back(Dense<T>(DenseOptions(hidden, 2).seed(seed + 1)));
  return net;
}

// Gives the batch-norm buffers values other than their defaults.
template <typename T>
void train_step(Sequential<T>& net, std::uint64_t seed) {
  Generator gen(seed);
  Matrix<T> x(8, 3);
  init::normal_(x, gen, 1.0, 2.0);
  Tape<T> tape;
  net(tape.constant(x));
}

template <typename T>
std::string saved(Sequential<T>& net) {
  std::ostringstream out;
  io::save_weights(net, out);
  return out.str();
}

std::string temp_path(const char* name) {
  return (std::string("gradflow_io_test_") + name + ".gfw");
}

}  // namespace

TEST_CASE("save_weights then load_weights reproduces parameters and buffers exactly",
          "[io][weights]") {
  auto a = make_net<double>(1);
  train_step(a, 5);
  auto b = make_net<double>(100);
  const std::string path = temp_path("roundtrip");
  io::save_weights(a, path);
  io::load_weights(b, path);
  std::remove(path.c_str());

  auto pa = a.named_parameters(), pb = b.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i) {
    CHECK(pa[i].first == pb[i].first);
    CHECK(pa[i].second->value() == pb[i].second->value());
  }
  auto ba = a.named_buffers(), bb = b.named_buffers();
  REQUIRE(ba.size() == 2);
  for (std::size_t i = 0; i < ba.size(); ++i) CHECK(*ba[i].second == *bb[i].second);
  CHECK(ba[0].second->cwiseAbs().maxCoeff() > 0.0);  // really trained, not defaults

  // Same outputs in evaluation mode.
  a.eval();
  b.eval();
  Tape<double> tape;
  Matrix<double> x = Matrix<double>::Random(4, 3);
  CHECK(a(tape.constant(x)).value() == b(tape.constant(x)).value());
}

TEST_CASE("Weights saved in float load into a double model", "[io][weights]") {
  auto f = make_net<float>(3);
  auto d = make_net<double>(4);
  std::istringstream in(saved(f));
  io::load_weights(d, in);
  CHECK(d.named_parameters()[0].second->value() ==
        f.named_parameters()[0].second->value().cast<double>());
}

TEST_CASE(
    "Loading a file with a mismatched shape names the entry and both shapes and "
    "changes nothing",
    "[io][weights][errors]") {
  auto wide = make_net<double>(1, 7);
  auto model = make_net<double>(2, 5);
  const Matrix<double> before = model.named_parameters()[0].second->value();
  std::istringstream in(saved(wide));
  CHECK_THROWS_WITH(io::load_weights(model, in), Catch::Contains("'0.weight'") &&
                                                     Catch::Contains("[5x3] in the model") &&
                                                     Catch::Contains("[7x3] in the file"));
  CHECK(model.named_parameters()[0].second->value() == before);
}

TEST_CASE("Loading a file with other names fails before assigning anything",
          "[io][weights][errors]") {
  // Same shapes in the first layer, but the file lacks the last layer's entries.
  Sequential<double> shorter;
  shorter.push_back(Dense<double>(DenseOptions(3, 5).seed(9)));
  auto model = make_net<double>(2);
  const Matrix<double> before = model.named_parameters()[0].second->value();
  std::istringstream missing(saved(shorter));
  CHECK_THROWS_WITH(io::load_weights(model, missing), Catch::Contains("lacks") &&
                                                          Catch::Contains("'1.weight' [1x5]") &&
                                                          Catch::Contains("'3.bias' [1x2]") &&
                                                          Catch::Contains("'1.running_var' [1x5]"));
  CHECK(model.named_parameters()[0].second->value() == before);

  // And extra names in the file are errors too.
  std::istringstream extra(saved(model));
  CHECK_THROWS_WITH(io::load_weights(shorter, extra),
                    Catch::Contains("not in the") && Catch::Contains("'1."));
}

TEST_CASE("Corrupted or truncated files are rejected with a LoadError", "[io][weights][errors]") {
  auto model = make_net<double>(1);
  const Matrix<double> before = model.named_parameters()[2].second->value();
  const std::string good = saved(model);

  std::string bad_magic = good;
  bad_magic[0] = 'X';
  std::istringstream in1(bad_magic);
  CHECK_THROWS_WITH(io::load_weights(model, in1), Catch::Contains("bad magic"));

  std::string bad_version = good;
  bad_version[8] = 7;
  std::istringstream in2(bad_version);
  CHECK_THROWS_WITH(io::load_weights(model, in2), Catch::Contains("version 7"));

  std::istringstream in3(good.substr(0, good.size() - 5));
  CHECK_THROWS_AS(io::load_weights(model, in3), io::LoadError);
  CHECK(model.named_parameters()[2].second->value() == before);

  CHECK_THROWS_AS(io::load_weights(model, std::string("/nonexistent/dir/file.gfw")), io::LoadError);
}
