#include <catch2/catch.hpp>
#include <gradflow/diagnostics/report.hpp>
#include <sstream>

using namespace gradflow;

namespace {

diag::GradientSnapshot three_layers() {
  diag::GradientSnapshot s;
  s.step = 7;
  const char* names[3] = {"0", "2", "4"};
  const double norms[3] = {1e-6, 1e-3, 1.0};
  for (int i = 0; i < 3; ++i) {
    diag::LayerGradStats l;
    l.layer = names[i];
    l.type_name = "Dense";
    l.size = 10;
    l.grad_norm = norms[i];
    l.grad_max_abs = norms[i] / 2;
    l.weight_norm = 1.0;
    l.ratio = norms[i];
    s.layers.push_back(l);
    diag::ParameterGradStats p;
    p.name = std::string(names[i]) + ".weight";
    p.layer = names[i];
    p.size = 10;
    p.grad_norm = norms[i];
    s.parameters.push_back(p);
  }
  return s;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

bool is_ascii(const std::string& s) {
  for (unsigned char c : s)
    if (c > 127) return false;
  return true;
}

}  // namespace

TEST_CASE("The gradient report has a row per layer with its numbers and a verdict",
          "[diagnostics][report]") {
  const std::string text = diag::format_report(three_layers());
  const std::vector<std::string> l = lines(text);
  REQUIRE(l.size() == 1 + 2 + 3 + 1);  // title, header + rule, rows, verdict
  CHECK(l[0].find("step 7") != std::string::npos);
  CHECK(l[1].rfind("layer  type   params  ||grad||", 0) == 0);
  CHECK(l[2].find_first_not_of('-') == std::string::npos);
  CHECK(l[3].rfind("0      Dense  10      1.00e-06  5.00e-07", 0) == 0);
  CHECK(l[5].find("1.00e+00") != std::string::npos);
  CHECK(l[6].rfind("verdict: vanishing", 0) == 0);
  // Bars: the largest norm gets the full width, the smallest a short mark.
  CHECK(l[5].find(std::string(24 * 3, ' ')) == std::string::npos);
  std::string full;
  for (int i = 0; i < 24; ++i) full += "\u2588";
  CHECK(l[5].size() >= full.size());
  CHECK(l[5].compare(l[5].size() - full.size(), full.size(), full) == 0);
  // The scale starts 5% of its decades below the smallest norm: 0.3 of 6.3 decades, 1.1 cells.
  std::size_t full_cells = 0;
  for (std::size_t at = l[3].find("\u2588"); at != std::string::npos;
       at = l[3].find("\u2588", at + 1))
    ++full_cells;
  CHECK(full_cells == 1);
}

TEST_CASE("The ASCII report contains no byte above 127 and draws bars with '#'",
          "[diagnostics][report]") {
  const std::string text =
      diag::format_report(three_layers(), diag::ReportOptions().set_ascii(true).set_bar_width(10));
  CHECK(is_ascii(text));
  CHECK(lines(text)[5].substr(lines(text)[5].size() - 10) == "##########");
}

TEST_CASE("The report lists parameters under their layer when asked", "[diagnostics][report]") {
  const std::vector<std::string> l =
      lines(diag::format_report(three_layers(), diag::ReportOptions().set_parameters(true)));
  REQUIRE(l.size() == 1 + 2 + 6 + 1);
  CHECK(l[4].rfind("  0.weight", 0) == 0);
  CHECK(l[8].rfind("  4.weight", 0) == 0);
}

TEST_CASE("The history report draws one sparkline per layer over the steps",
          "[diagnostics][report]") {
  std::vector<diag::GradientSnapshot> history;
  for (int k = 0; k < 4; ++k) {
    diag::GradientSnapshot s = three_layers();
    s.step = k;
    for (auto& l : s.layers) l.grad_norm *= std::pow(10.0, k);
    history.push_back(s);
  }
  std::ostringstream out;
  diag::print_history(out, history, diag::ReportOptions().set_ascii(true));
  const std::vector<std::string> l = lines(out.str());
  REQUIRE(l.size() == 1 + 2 + 3 + 1);
  // One range for all layers, 1e-6 .. 1e3 (9 decades): layer 0 climbs from the bottom.
  CHECK(l[3].substr(l[3].size() - 4) == "_.--");  // levels round(7 k / 9) = 0, 1, 2, 2
  CHECK(l[5].substr(l[5].size() - 4) == "++*#");  // round(7 (6 + k) / 9) = 5, 5, 6, 7
  std::ostringstream empty;
  diag::print_history(empty, {});
  CHECK(empty.str() == "gradient history: nothing recorded\n");
}

TEST_CASE("The trace report shows the ratio, factor and verdict of each layer-direction",
          "[diagnostics][report]") {
  diag::HiddenGradientTrace<double> trace;
  for (Index t = 0; t < 8; ++t) trace.record_norm(0, 0, t, std::pow(10.0, double(t) - 7));
  const std::string text = diag::format_trace(trace, diag::ReportOptions().set_ascii(true));
  const std::vector<std::string> l = lines(text);
  REQUIRE(l.size() == 1 + 2 + 1);
  CHECK(l[3].find("1.00e-07") != std::string::npos);  // ratio dh_1 / dh_T
  CHECK(l[3].find(" 0.1 ") != std::string::npos);     // factor per step back
  CHECK(l[3].find("vanishing") != std::string::npos);
  CHECK(l[3].substr(l[3].size() - 8) == "_.-:=+*#");
}

TEST_CASE("The activation table prints percentages", "[diagnostics][report]") {
  diag::ActivationStats s;
  s.kind = diag::ActivationKind::Tanh;
  s.saturated_fraction = 0.25;
  s.dead_fraction = 0.0;
  s.mean = 0.1;
  s.stddev = 0.5;
  std::ostringstream out;
  diag::print_activations(out, {{"h1", s}}, diag::ReportOptions().set_ascii(true).set_bar_width(8));
  const std::vector<std::string> l = lines(out.str());
  REQUIRE(l.size() == 3);
  CHECK(l[2].rfind("h1     tanh  +0.100  0.500  25.0%", 0) == 0);
  CHECK(l[2].substr(l[2].size() - 3) == " ##");
}
