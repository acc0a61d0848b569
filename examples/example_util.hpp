#pragma once
// Plumbing shared by the example programs: command-line flags, CSV files in the output
// folder, and the --check verdicts. Nothing here is about gradients; that is the library's.

#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <string>

namespace examples {

/// The flags every example takes.
struct Args {
  bool fast = false;   ///< a few seconds instead of a minute, for the ctest test
  bool check = false;  ///< exit non-zero when the claimed result does not hold
  std::string out = ".";
};

inline Args parse_args(int argc, char** argv, const char* usage) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--fast") == 0) {
      a.fast = true;
    } else if (std::strcmp(argv[i], "--check") == 0) {
      a.check = true;
    } else if (std::strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
      a.out = argv[++i];
    } else {
      std::fprintf(stderr, "usage: %s [--fast] [--check] [--out DIR]\n%s\n", argv[0], usage);
      std::exit(std::strcmp(argv[i], "--help") == 0 ? 0 : 2);
    }
  }
  ::mkdir(a.out.c_str(), 0755);  // an existing folder is fine
  return a;
}

/// Opens DIR/name for writing, or throws naming the path.
inline std::ofstream open_csv(const Args& a, const std::string& name) {
  const std::string path = a.out + "/" + name;
  std::ofstream f(path);
  if (!f) throw std::runtime_error("cannot write " + path);
  f.precision(6);
  return f;
}

/// Collects the qualitative claims of an example and prints each with its numbers.
class Checks {
 public:
  /// Records one claim; `detail` shows the numbers it was decided on.
  void expect(bool ok, const std::string& claim, const std::string& detail) {
    std::printf("  [%s] %s (%s)\n", ok ? "ok" : "FAILED", claim.c_str(), detail.c_str());
    failures_ += ok ? 0 : 1;
  }
  /// The process exit code: non-zero when --check is on and a claim failed.
  int exit_code(const Args& a) const {
    if (failures_ > 0)
      std::printf("%d claim(s) did not hold%s\n", failures_,
                  a.check ? "" : " (run with --check to make this an error)");
    return a.check && failures_ > 0 ? 1 : 0;
  }

 private:
  int failures_ = 0;
};

/// printf into a std::string.
template <typename... A>
std::string format(const char* fmt, A... args) {
  char buf[512];
  std::snprintf(buf, sizeof buf, fmt, args...);
  return buf;
}

/// Seconds since construction.
class Stopwatch {
 public:
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace examples
