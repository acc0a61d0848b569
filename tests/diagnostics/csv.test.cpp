#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <gradflow/diagnostics/csv.hpp>
#include <gradflow/diagnostics/gradient_monitor.hpp>
#include <gradflow/diagnostics/hidden_trace.hpp>
#include <sstream>

using namespace gradflow;

namespace {

// A deliberately naive splitter (no quotes), independent of read_csv.
std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.push_back("");
  return out;
}

}  // namespace

TEST_CASE("Monitor history CSV parses back to the recorded numbers", "[diagnostics][csv]") {
  Parameter<double> w(Matrix<double>::Constant(2, 3, 0.1)), b(Matrix<double>::Zero(1, 3));
  diag::GradientMonitor<double> monitor({{"0.weight", &w}, {"0.bias", &b}});
  w.grad().setConstant(1.0 / 3.0);
  b.grad() << 1e-30, 0.0, 2.5;
  monitor.record(10);
  w.grad().setConstant(2.0);
  monitor.record(11);

  std::stringstream csv;
  monitor.write_csv(csv);
  std::string line;
  std::getline(csv, line);
  const std::vector<std::string> header = split(line);
  REQUIRE(header == std::vector<std::string>{"step", "kind", "name", "layer", "size", "grad_norm",
                                             "grad_max_abs", "weight_norm", "ratio", "finite"});
  std::vector<std::vector<std::string>> rows;
  while (std::getline(csv, line)) rows.push_back(split(line));
  REQUIRE(rows.size() == 2 * (1 + 2));  // per step: one layer row, two parameter rows
  for (std::size_t k = 0; k < rows.size(); ++k) {
    REQUIRE(rows[k].size() == header.size());
    const diag::GradientSnapshot& s = monitor.history()[k / 3];
    CHECK(std::stol(rows[k][0]) == s.step);
    if (rows[k][1] == "layer") {
      CHECK(rows[k][2] == "0");
      CHECK(diag::parse_csv_number(rows[k][5]) == s.layers[0].grad_norm);  // bit-exact
    } else {
      REQUIRE(rows[k][1] == "parameter");
      const diag::ParameterGradStats* p = s.parameter(rows[k][2]);
      REQUIRE(p != nullptr);
      CHECK(rows[k][3] == "0");
      CHECK(std::stol(rows[k][4]) == p->size);
      CHECK(diag::parse_csv_number(rows[k][5]) == p->grad_norm);
      CHECK(diag::parse_csv_number(rows[k][6]) == p->grad_max_abs);
      CHECK(diag::parse_csv_number(rows[k][7]) == p->weight_norm);
      if (std::isinf(p->ratio))
        CHECK(rows[k][8] == "inf");
      else
        CHECK(diag::parse_csv_number(rows[k][8]) == p->ratio);
      CHECK(rows[k][9] == "1");
    }
  }
}

TEST_CASE("Layer-only history CSV leaves the parameter rows out", "[diagnostics][csv]") {
  Parameter<float> w(Matrix<float>::Ones(2, 2));
  diag::GradientMonitor<float> monitor({{"a.w", &w}});
  monitor.record(0);
  std::stringstream csv;
  monitor.write_csv(csv, /*parameters=*/false);
  const diag::CsvTable t = diag::read_csv(csv);
  REQUIRE(t.rows.size() == 1);
  CHECK(t.rows[0][t.column("kind")] == "layer");
}

TEST_CASE("Hidden-trace CSV has one row per recorded step", "[diagnostics][csv]") {
  diag::HiddenGradientTrace<double> trace;
  trace.record_norm(0, 0, 0, 0.25);
  trace.record_norm(0, 0, 2, 1e-300);  // step 1 never recorded: no row
  trace.record_norm(1, 1, 0, std::numeric_limits<double>::infinity());
  std::stringstream csv;
  trace.write_csv(csv);
  const diag::CsvTable t = diag::read_csv(csv);
  REQUIRE(t.header == std::vector<std::string>{"layer", "direction", "t", "grad_norm"});
  REQUIRE(t.rows.size() == 3);
  CHECK(t.rows[1][t.column("t")] == "2");
  CHECK(diag::parse_csv_number(t.rows[1][3]) == 1e-300);
  CHECK(t.rows[2] == std::vector<std::string>{"1", "1", "0", "inf"});
}

TEST_CASE("CSV fields with commas and quotes are quoted and read back", "[diagnostics][csv]") {
  Parameter<double> w(Matrix<double>::Ones(1, 1));
  diag::GradientMonitor<double> monitor({{"odd,\"name\".w", &w}});
  monitor.record(0);
  std::stringstream csv;
  monitor.write_csv(csv);
  const diag::CsvTable t = diag::read_csv(csv);
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[1][t.column("name")] == "odd,\"name\".w");
  CHECK(t.rows[1][t.column("layer")] == "odd,\"name\"");
  CHECK_THROWS_AS(t.column("nope"), ArgumentError);
}

TEST_CASE("write_csv to a path writes the same text as to a stream", "[diagnostics][csv]") {
  diag::HiddenGradientTrace<double> trace;
  trace.record_norm(0, 0, 0, 3.0);
  const std::string path = "gradflow_diag_trace_test.csv";
  trace.write_csv(path);
  std::ifstream file(path);
  std::stringstream from_file, direct;
  from_file << file.rdbuf();
  trace.write_csv(direct);
  CHECK(from_file.str() == direct.str());
  file.close();
  std::remove(path.c_str());
  CHECK_THROWS_AS(trace.write_csv("/nonexistent-dir/x.csv"), ArgumentError);
}

TEST_CASE("parse_csv_number rejects text that is not a number", "[diagnostics][csv]") {
  CHECK(diag::parse_csv_number("-2.5e-3") == -2.5e-3);
  CHECK(std::isnan(diag::parse_csv_number("nan")));
  CHECK(diag::parse_csv_number("-inf") == -std::numeric_limits<double>::infinity());
  CHECK_THROWS_AS(diag::parse_csv_number("1.5x"), ArgumentError);
  CHECK_THROWS_AS(diag::parse_csv_number(""), ArgumentError);
}
