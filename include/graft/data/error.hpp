// graft::data_error: malformed or missing data files, with the file, the byte offset and what was
// expected versus found, on one line. Light header.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

#include "graft/config.hpp"

GRAFT_BEGIN_NAMESPACE

/// Thrown when a data file is missing, unreadable or malformed. what() is one line:
///   graft: <file>: byte <offset>: expected <what>, found <what>
/// ("byte <offset> of the decompressed stream" for a gzip file; no byte part without an offset).
class data_error : public std::runtime_error {
 public:
  /// offset() when the error is not at a particular byte.
  static constexpr std::uint64_t no_offset = ~std::uint64_t{0};

  data_error(std::string file, std::uint64_t offset, std::string expected, std::string found,
             bool decompressed = false)
      : std::runtime_error(format(file, offset, expected, found, decompressed)),
        file_(std::move(file)),
        offset_(offset),
        expected_(std::move(expected)),
        found_(std::move(found)) {}

  /// A free-form message about a file or data set, without an offset: "graft: <file>: <message>".
  data_error(std::string file, const std::string& message)
      : std::runtime_error("graft: " + file + ": " + message), file_(std::move(file)) {}

  const std::string& file() const noexcept { return file_; }
  std::uint64_t offset() const noexcept { return offset_; }
  bool has_offset() const noexcept { return offset_ != no_offset; }
  /// What was expected and what was found (empty for a free-form message).
  const std::string& expected() const noexcept { return expected_; }
  const std::string& found() const noexcept { return found_; }

 private:
  static std::string format(const std::string& file, std::uint64_t offset,
                            const std::string& expected, const std::string& found,
                            bool decompressed) {
    std::string s = "graft: " + file + ": ";
    if (offset != no_offset) {
      s += "byte " + std::to_string(offset);
      if (decompressed) s += " of the decompressed stream";
      s += ": ";
    }
    s += "expected " + expected + ", found " + found;
    return s;
  }

  std::string file_;
  std::uint64_t offset_ = no_offset;
  std::string expected_;
  std::string found_;
};

GRAFT_END_NAMESPACE
