// gradflow_reference_check <folder>: checks every .case file in the folder against
// gradflow, printing "PASS <name> <max relative error>" or "FAIL <name> <reason>" per case.
// Exits 1 if any case fails, has an unknown kind, or the folder holds no case.

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>
#include <vector>

#include "case_file.hpp"

int main(int argc, char** argv) {
  namespace ref = gradflow::reference;
  namespace fs = std::filesystem;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <folder of .case files>\n", argv[0]);
    return 2;
  }
  ref::Registry registry;
  ref::register_nn_checkers(registry);
  ref::register_optim_checkers(registry);
  ref::register_recurrent_checkers(registry);

  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(argv[1], ec))
    if (entry.path().extension() == ".case") files.push_back(entry.path());
  if (ec) {
    std::fprintf(stderr, "cannot read %s: %s\n", argv[1], ec.message().c_str());
    return 2;
  }
  std::sort(files.begin(), files.end());

  int passed = 0, failed = 0;
  for (const fs::path& path : files) {
    std::string name = path.stem().string();
    try {
      ref::Case c = ref::read_case(path.string());
      name = c.name;
      auto it = registry.find(c.kind);
      if (it == registry.end()) {
        std::printf("FAIL %s unknown kind '%s'\n", name.c_str(), c.kind.c_str());
        ++failed;
        continue;
      }
      ref::Comparison cmp;
      it->second(c, cmp);
      if (cmp.passed()) {
        std::printf("PASS %s %.3g\n", name.c_str(), cmp.max_rel_error());
        ++passed;
      } else {
        std::printf("FAIL %s %s\n", name.c_str(),
                    cmp.compared() == 0 && cmp.failure().empty() ? "nothing compared"
                                                                 : cmp.failure().c_str());
        ++failed;
      }
    } catch (const std::exception& e) {
      std::printf("FAIL %s %s\n", name.c_str(), e.what());
      ++failed;
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  if (files.empty()) std::fprintf(stderr, "no .case files in %s\n", argv[1]);
  return failed == 0 && !files.empty() ? 0 : 1;
}
