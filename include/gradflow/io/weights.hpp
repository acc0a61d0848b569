#pragma once
/// \file
/// Saving and loading a module's parameters and buffers in a versioned binary file.
///
/// File layout (version 1, little-endian):
///
///   magic      8 bytes  "GRADFLOW"
///   version    u32      1
///   scalar     u32      bytes per value: 4 (float) or 8 (double)
///   count      u64      number of entries
///   per entry: kind u8 (0 parameter, 1 buffer), name length u32, name bytes,
///              rows i64, cols i64, rows * cols values in column-major order
///
/// Values are stored bit-exactly, so a round trip in the same precision is lossless.

#include <cstdint>
#include <cstring>
#include <fstream>
#include <istream>
#include <map>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "gradflow/core/error.hpp"
#include "gradflow/nn/module.hpp"

namespace gradflow::io {

/// A weights file or stream that cannot be read into the module: unreadable, corrupt,
/// of another version, or with names or shapes that differ from the module's.
class LoadError : public Error {
 public:
  using Error::Error;
};

/// Current version of the weights format; load_weights reads this version only.
inline constexpr std::uint32_t kWeightsFormatVersion = 1;

}  // namespace gradflow::io

namespace gradflow::detail {

inline constexpr char kWeightsMagic[8] = {'G', 'R', 'A', 'D', 'F', 'L', 'O', 'W'};

inline bool host_is_little_endian() {
  const std::uint32_t probe = 1;
  unsigned char first = 0;
  std::memcpy(&first, &probe, 1);
  return first == 1;
}

// Writes the bytes of `v` in little-endian order.
template <typename U>
void write_le(std::ostream& out, U v) {
  unsigned char bytes[sizeof(U)];
  std::memcpy(bytes, &v, sizeof(U));
  if (!host_is_little_endian())
    for (std::size_t i = 0; i < sizeof(U) / 2; ++i) std::swap(bytes[i], bytes[sizeof(U) - 1 - i]);
  out.write(reinterpret_cast<const char*>(bytes), sizeof(U));
}

template <typename U>
U read_le(std::istream& in, const char* what) {
  unsigned char bytes[sizeof(U)];
  if (!in.read(reinterpret_cast<char*>(bytes), sizeof(U)))
    throw io::LoadError(std::string("load_weights: file ends while reading ") + what +
                        " (truncated or not a gradflow weights file)");
  if (!host_is_little_endian())
    for (std::size_t i = 0; i < sizeof(U) / 2; ++i) std::swap(bytes[i], bytes[sizeof(U) - 1 - i]);
  U v;
  std::memcpy(&v, bytes, sizeof(U));
  return v;
}

struct WeightsEntry {
  std::uint8_t kind = 0;
  Index rows = 0, cols = 0;
  std::vector<double> values;  // column-major, widened to double (exact for float)
};

}  // namespace gradflow::detail

namespace gradflow::io {

/// Writes every parameter and buffer of `module` (names from named_parameters() and
/// named_buffers()) to `out`. Throws Error when the stream fails.
template <typename T>
void save_weights(nn::Module<T>& module, std::ostream& out) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>,
                "save_weights: only float and double modules can be saved");
  using detail::write_le;
  const auto params = module.named_parameters();
  const auto buffers = module.named_buffers();
  out.write(detail::kWeightsMagic, sizeof(detail::kWeightsMagic));
  write_le<std::uint32_t>(out, kWeightsFormatVersion);
  write_le<std::uint32_t>(out, static_cast<std::uint32_t>(sizeof(T)));
  write_le<std::uint64_t>(out, params.size() + buffers.size());
  auto entry = [&out](std::uint8_t kind, const std::string& name, const Matrix<T>& m) {
    write_le<std::uint8_t>(out, kind);
    write_le<std::uint32_t>(out, static_cast<std::uint32_t>(name.size()));
    out.write(name.data(), static_cast<std::streamsize>(name.size()));
    write_le<std::int64_t>(out, m.rows());
    write_le<std::int64_t>(out, m.cols());
    for (Index i = 0; i < m.size(); ++i) write_le<T>(out, m.data()[i]);
  };
  for (const auto& [name, p] : params) entry(0, name, p->value());
  for (const auto& [name, b] : buffers) entry(1, name, *b);
  if (!out) throw Error("save_weights: write failed");
}

/// save_weights() to the file `path` (created or overwritten).
/// \code
///   io::save_weights(net, "model.gfw");
///   io::load_weights(other_net_of_same_architecture, "model.gfw");
/// \endcode
template <typename T>
void save_weights(nn::Module<T>& module, const std::string& path) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw Error("save_weights: cannot open '" + path + "' for writing");
  save_weights(module, out);
  out.close();
  if (!out) throw Error("save_weights: writing '" + path + "' failed");
}

/// Reads weights written by save_weights() into `module`, whose parameters and buffers
/// must have exactly the names and shapes in the stream (a float file loads into a double
/// module and vice versa). Everything is read and checked before anything is assigned:
/// on any error `module` is unchanged and LoadError names the entry and both shapes.
template <typename T>
void load_weights(nn::Module<T>& module, std::istream& in, const std::string& source = "stream") {
  using detail::read_le;
  const std::string where = "load_weights(" + source + "): ";
  char magic[sizeof(detail::kWeightsMagic)];
  if (!in.read(magic, sizeof(magic)) ||
      std::memcmp(magic, detail::kWeightsMagic, sizeof(magic)) != 0)
    throw LoadError(where + "not a gradflow weights file (bad magic)");
  const auto version = read_le<std::uint32_t>(in, "the version");
  if (version != kWeightsFormatVersion)
    throw LoadError(where + "format version " + std::to_string(version) +
                    " is not supported (this build reads version " +
                    std::to_string(kWeightsFormatVersion) + ")");
  const auto scalar = read_le<std::uint32_t>(in, "the scalar size");
  if (scalar != 4 && scalar != 8)
    throw LoadError(where + "scalar size " + std::to_string(scalar) + " is neither 4 nor 8");
  const auto count = read_le<std::uint64_t>(in, "the entry count");

  const auto params = module.named_parameters();
  const auto buffers = module.named_buffers();
  std::map<std::string, std::pair<std::uint8_t, const Matrix<T>*>> expected;
  for (const auto& [name, p] : params) expected[name] = {0, &p->value()};
  for (const auto& [name, b] : buffers) expected[name] = {1, b};

  std::map<std::string, detail::WeightsEntry> file;
  for (std::uint64_t e = 0; e < count; ++e) {
    detail::WeightsEntry entry;
    entry.kind = read_le<std::uint8_t>(in, "an entry kind");
    const auto length = read_le<std::uint32_t>(in, "a name length");
    if (entry.kind > 1 || length > 4096)
      throw LoadError(where + "entry " + std::to_string(e) + " is corrupt");
    std::string name(length, '\0');
    if (length > 0 && !in.read(&name[0], length))
      throw LoadError(where + "file ends inside the name of entry " + std::to_string(e));
    entry.rows = static_cast<Index>(read_le<std::int64_t>(in, "a shape"));
    entry.cols = static_cast<Index>(read_le<std::int64_t>(in, "a shape"));
    const auto it = expected.find(name);
    if (it == expected.end())
      throw LoadError(where + "'" + name + "' " +
                      gradflow::detail::shape_str(entry.rows, entry.cols) +
                      " is in the file but not in the " + module.type_name());
    const Matrix<T>& target = *it->second.second;
    if (entry.rows != target.rows() || entry.cols != target.cols())
      throw LoadError(where + "'" + name + "' has shape " +
                      gradflow::detail::shape_str(target.rows(), target.cols()) +
                      " in the model but " + gradflow::detail::shape_str(entry.rows, entry.cols) +
                      " in the file");
    if (entry.kind != it->second.first)
      throw LoadError(where + "'" + name + "' is a " + (entry.kind == 0 ? "parameter" : "buffer") +
                      " in the file but a " + (entry.kind == 0 ? "buffer" : "parameter") +
                      " in the model");
    entry.values.resize(static_cast<std::size_t>(entry.rows * entry.cols));
    for (double& v : entry.values)
      v = scalar == 4 ? static_cast<double>(read_le<float>(in, "values"))
                      : read_le<double>(in, "values");
    if (!file.emplace(name, std::move(entry)).second)
      throw LoadError(where + "'" + name + "' appears twice");
  }
  std::string missing;
  auto note_missing = [&](const std::string& name, const Matrix<T>& m) {
    if (file.count(name) != 0) return;
    missing += (missing.empty() ? "'" : ", '") + name + "' " + gradflow::detail::shape_str(m);
  };
  for (const auto& [name, p] : params) note_missing(name, p->value());
  for (const auto& [name, b] : buffers) note_missing(name, *b);
  if (!missing.empty())
    throw LoadError(where + "the file lacks entries of the " + module.type_name() + ": " + missing);

  // Everything checked: assign in place (storage, hence tape bindings, is kept).
  auto assign = [&file](const std::string& name, Matrix<T>& target) {
    const std::vector<double>& v = file[name].values;
    for (Index i = 0; i < target.size(); ++i)
      target.data()[i] = static_cast<T>(v[static_cast<std::size_t>(i)]);
  };
  for (const auto& [name, p] : params) assign(name, p->value());
  for (const auto& [name, b] : buffers) assign(name, *b);
}

/// load_weights() from the file `path`.
template <typename T>
void load_weights(nn::Module<T>& module, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw LoadError("load_weights: cannot open '" + path + "'");
  load_weights(module, in, "'" + path + "'");
}

}  // namespace gradflow::io
