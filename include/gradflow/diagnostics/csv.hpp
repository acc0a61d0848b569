#pragma once
/// \file
/// CSV writing and reading shared by the diagnostics (monitor history, hidden-gradient traces).
///
/// Format (RFC 4180): comma-separated, one header row, fields quoted only when they hold a
/// comma, quote or newline; numbers written with max_digits10 significant digits so they
/// read back bit-exact, non-finite values as `nan`, `inf`, `-inf`.

#include <cmath>
#include <fstream>
#include <istream>
#include <limits>
#include <locale>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "gradflow/core/error.hpp"

namespace gradflow::diag {

/// One parsed CSV file: the header row and the data rows, all as strings.
struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  /// Index of column `name`; throws ArgumentError when there is none.
  std::size_t column(const std::string& name) const {
    for (std::size_t i = 0; i < header.size(); ++i)
      if (header[i] == name) return i;
    throw ArgumentError("CsvTable: no column '" + name + "'");
  }
};

namespace detail {

/// A field quoted when it must be (comma, quote, CR or LF inside), quotes doubled.
inline std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

/// A number that reads back exactly (locale-independent); nan / inf / -inf otherwise.
inline std::string csv_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  std::ostringstream s;
  s.imbue(std::locale::classic());
  s.precision(std::numeric_limits<double>::max_digits10);
  s << v;
  return s.str();
}

/// Opens `path` for writing or throws ArgumentError naming it.
inline std::ofstream open_csv(const std::string& path) {
  std::ofstream file(path);
  if (!file) throw ArgumentError("write_csv: cannot open '" + path + "' for writing");
  return file;
}

}  // namespace detail

/// Parses CSV text as written by the diagnostics' write_csv() (RFC 4180 quoting).
/// \code
///   std::stringstream s;
///   monitor.write_csv(s);
///   diag::CsvTable t = diag::read_csv(s);
///   double norm = diag::parse_csv_number(t.rows[0][t.column("grad_norm")]);
/// \endcode
inline CsvTable read_csv(std::istream& in) {
  CsvTable table;
  std::vector<std::string> row;
  std::string field;
  bool quoted = false, any = false;
  auto end_row = [&] {
    row.push_back(field);
    field.clear();
    if (table.header.empty())
      table.header = std::move(row);
    else
      table.rows.push_back(std::move(row));
    row.clear();
    any = false;
  };
  char c;
  while (in.get(c)) {
    if (quoted) {
      if (c == '"') {
        if (in.peek() == '"') {
          in.get(c);
          field += '"';
        } else {
          quoted = false;
        }
      } else {
        field += c;
      }
      continue;
    }
    if (c == '"') {
      quoted = true;
      any = true;
    } else if (c == ',') {
      row.push_back(field);
      field.clear();
      any = true;
    } else if (c == '\n') {
      end_row();
    } else if (c != '\r') {
      field += c;
      any = true;
    }
  }
  if (quoted) throw ArgumentError("read_csv: unterminated quoted field");
  if (any) end_row();
  return table;
}

/// Reads a number written by write_csv(), including nan, inf and -inf.
inline double parse_csv_number(const std::string& s) {
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (s == "inf") return std::numeric_limits<double>::infinity();
  if (s == "-inf") return -std::numeric_limits<double>::infinity();
  std::istringstream in(s);
  in.imbue(std::locale::classic());
  double v = 0.0;
  in >> v;
  if (in.fail() || !in.eof()) throw ArgumentError("parse_csv_number: '" + s + "' is not a number");
  return v;
}

}  // namespace gradflow::diag
