// CSV files as datasets, tokenized by libcsv (RFC 4180: quoted fields may hold the delimiter,
// doubled quotes and line breaks; spaces around unquoted fields are dropped; blank lines are
// skipped; LF, CRLF and CR line ends). read_csv() builds a classification dataset: one column
// holds integer labels (by default the last), every other column is a float feature.
// read_csv_regression() takes float target columns instead. parse_csv() and
// parse_csv_regression() do the same for a file held in memory.
//
// A malformed file throws graft::data::csv_error (a graft::data_error) whose message names the
// file, the line and the column (1-based, with the header's name for the column when there is
// one), what was expected and what was found, e.g.
//   graft: iris.csv: line 7, column 2 ("sepal_width"): expected a number, found "3,1"
// Lines count line breaks in the file (a CRLF is one), so a quoted field with line breaks moves
// the later lines down as an editor shows them; an error in a field names the line the field
// starts on. Numbers are parsed with std::from_chars (no locale: '.' is the decimal point); an
// empty field, text, NaN, an infinity or a number beyond float's range is an error. The dataset is
// built only from a whole valid file: an error leaves nothing behind.
//
// Needs libcsv (Debian: libcsv-dev). graft's CMake target links it and defines GRAFT_HAVE_LIBCSV
// when it finds it; graft/graft.hpp does not include this header.
#pragma once
#ifndef GRAFT_HAVE_LIBCSV
#error \
    "graft/data/csv.hpp needs libcsv: install it (Debian: apt install libcsv-dev) and reconfigure, so that graft::graft links it and defines GRAFT_HAVE_LIBCSV; without CMake, compile with -DGRAFT_HAVE_LIBCSV=1 and link with -lcsv"
#endif

#include <csv.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "graft/config.hpp"
#include "graft/data/dataset.hpp"
#include "graft/data/error.hpp"
#include "graft/data/idx.hpp"

GRAFT_BEGIN_NAMESPACE
namespace data {

/// read_csv's options: a classification dataset.
struct csv_options {
  char delimiter = ',';      ///< ';' and '\t' are common too; not '"', '\r' or '\n'
  bool header = true;        ///< the first row names the columns
  std::string label_column;  ///< the label column by its header name (needs header); else:
  int label_index = -1;      ///< the label column by index: 0-based, negative from the end
  std::size_t classes = 0;   ///< labels in [0, classes); 0: the largest label + 1 (at most 65535)
  std::string name;          ///< the dataset's name; empty: the file's path
};

/// read_csv_regression's options: target columns of floats instead of a label column.
struct csv_regression_options {
  char delimiter = ',';
  bool header = true;
  std::vector<std::string> target_columns;  ///< by header name (needs header); if empty:
  std::vector<int> target_indices = {-1};   ///< by index: 0-based, negative from the end
  std::string name;
};

/// A malformed CSV file: data_error with the line and column of the problem.
class csv_error : public data_error {
 public:
  /// what(): "graft: <file>: line <line>, column <column> ("<name>"): expected <e>, found <f>",
  /// without the column part when column is 0 and without the line part when line is 0.
  csv_error(std::string file, std::size_t line, std::size_t column, std::string column_name,
            const std::string& expected, const std::string& found)
      : data_error(std::move(file),
                   where(line, column, column_name) + "expected " + expected + ", found " + found),
        line_(line),
        column_(column),
        column_name_(std::move(column_name)) {}

  std::size_t line() const noexcept { return line_; }      ///< 1-based; 0: the whole file
  std::size_t column() const noexcept { return column_; }  ///< 1-based; 0: not one column
  const std::string& column_name() const noexcept { return column_name_; }

 private:
  static std::string where(std::size_t line, std::size_t column, const std::string& name) {
    if (line == 0) return {};
    std::string s = "line " + std::to_string(line);
    if (column != 0) {
      s += ", column " + std::to_string(column);
      if (!name.empty()) s += " (\"" + name + "\")";
    }
    return s + ": ";
  }

  std::size_t line_ = 0, column_ = 0;
  std::string column_name_;
};

namespace detail {

/// A field's text for a message: quoted, at most 40 bytes, control bytes and quotes escaped.
inline std::string csv_quoted(std::string_view s) {
  std::string out = "\"";
  const std::size_t n = std::min<std::size_t>(s.size(), 40);
  for (std::size_t i = 0; i < n; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\')
      (out += '\\') += static_cast<char>(c);
    else if (c == '\n')
      out += "\\n";
    else if (c == '\r')
      out += "\\r";
    else if (c == '\t')
      out += "\\t";
    else if (c < 0x20 || c == 0x7f)
      out += "\\x" + hex_byte(c).substr(2);
    else
      out += static_cast<char>(c);
  }
  return out + (s.size() > n ? "...\"" : "\"");
}

/// The text of a number: spaces and tabs around it dropped, one leading '+' too (from_chars
/// takes neither).
inline std::string_view csv_number_text(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  if (s.size() >= 2 && s[0] == '+' && s[1] != '-' && s[1] != '+') s.remove_prefix(1);
  return s;
}

/// What is wrong with s as a float (nullptr when nothing: v holds it). Values too small for float
/// become 0 or a subnormal, as a decimal-to-float conversion rounds them.
inline const char* csv_parse_float(std::string_view s, float& v) {
  s = csv_number_text(s);
  if (s.empty()) return "a number";
  const char* b = s.data();
  const char* e = b + s.size();
  auto r = std::from_chars(b, e, v);
  if (r.ec == std::errc::result_out_of_range && r.ptr == e) {
    double d = 0;  // underflow (accepted, rounded) or overflow (refused)?
    const auto rd = std::from_chars(b, e, d);
    if (rd.ec != std::errc() || !(std::fabs(d) <= double{std::numeric_limits<float>::max()}))
      return "a number within float range (magnitude at most 3.4e38)";
    v = static_cast<float>(d);
    return nullptr;
  }
  if (r.ec != std::errc() || r.ptr != e) return "a number";
  if (!std::isfinite(v)) return "a finite number";
  return nullptr;
}

/// nullptr when s is an integer label in [0, limit) (then in v), else what is wrong ("" when it is
/// out of range). An integral number written as a float ("3.0", "3e0") is that integer.
inline const char* csv_parse_label(std::string_view s, std::int64_t limit, std::int64_t& v) {
  s = csv_number_text(s);
  if (s.empty()) return "an integer label";
  const char* b = s.data();
  const char* e = b + s.size();
  auto r = std::from_chars(b, e, v);
  if (r.ec != std::errc() || r.ptr != e) {
    double d = 0;
    const auto rd = std::from_chars(b, e, d);
    if (rd.ec != std::errc() || rd.ptr != e || !std::isfinite(d) || d != std::floor(d))
      return "an integer label";
    if (d < 0 || d >= static_cast<double>(limit)) return "";  // out of range, said by the caller
    v = static_cast<std::int64_t>(d);
  }
  if (v < 0 || v >= limit) return "";
  return nullptr;
}

/// "'x'" for a printable byte, "'\t'" for a tab, else "byte 0xNN".
inline std::string csv_char(unsigned char c) {
  if (c == '\t') return "'\\t'";
  if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
  return "byte " + hex_byte(c);
}

/// Line breaks in s: each '\n', and each '\r' not followed by '\n' (a CRLF is one).
inline std::size_t csv_line_breaks(const unsigned char* s, std::size_t n) {
  std::size_t k = 0;
  for (std::size_t i = 0; i < n; ++i)
    if (s[i] == '\n' || (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n'))) ++k;
  return k;
}

/// What each column is.
enum class csv_role : std::uint8_t { feature, label, target };

/// Feeds bytes to libcsv and turns its field and row callbacks into features, labels and
/// targets, keeping the line of every field. libcsv is C: the callbacks throw nothing, they keep
/// the first exception, stop taking rows, and feed() / finish() rethrow it.
class csv_reader {
 public:
  /// Which columns are labels or targets, decided once the header (or first row) is known.
  struct selection {
    csv_role role = csv_role::label;  ///< label: exactly one column; target: one or more
    std::vector<std::string> names;   ///< by header name; if empty:
    std::vector<int> indices;         ///< by index, negative from the end
    std::int64_t label_limit = 0;     ///< labels in [0, label_limit)
    std::size_t classes = 0;          ///< as passed (0: inferred), for messages
  };

  csv_reader(std::string name, char delimiter, bool header, selection sel)
      : name_(std::move(name)), header_(header), sel_(std::move(sel)) {
    if (delimiter == '"' || delimiter == '\r' || delimiter == '\n')
      throw std::invalid_argument("graft: CSV " + name_ + ": the delimiter cannot be " +
                                  csv_char(static_cast<unsigned char>(delimiter)));
    if (!sel_.names.empty() && !header_)
      throw std::invalid_argument("graft: CSV " + name_ +
                                  ": columns chosen by name need header = true");
    if (sel_.names.empty() && sel_.indices.empty())
      throw std::invalid_argument("graft: CSV " + name_ + ": no target column chosen");
    if (::csv_init(&p_, CSV_STRICT | CSV_STRICT_FINI) != 0) throw std::bad_alloc();
    ::csv_set_delim(&p_, static_cast<unsigned char>(delimiter));
  }
  ~csv_reader() { ::csv_free(&p_); }
  csv_reader(const csv_reader&) = delete;
  csv_reader& operator=(const csv_reader&) = delete;

  /// Parses b[0, n), the next bytes of the file.
  void feed(const unsigned char* b, std::size_t n) {
    // A UTF-8 byte order mark (spreadsheets write one) at the file's start is skipped. It is
    // matched byte by byte, so it may be split between pieces; bytes that start like one but
    // are not one are data.
    while (bom_matched_ < 3 && n > 0) {
      if (b[0] != bom[bom_matched_]) {
        const std::size_t partial = std::exchange(bom_matched_, 3);
        parse(bom, partial);
        break;
      }
      ++bom_matched_;
      ++b;
      --n;
    }
    parse(b, n);
  }

  /// Ends the file: its last row, then the checks of the whole file.
  void finish() {
    if (bom_matched_ < 3) {  // the file is the start of a byte order mark: data
      parse(bom, std::exchange(bom_matched_, 3));
    }
    if (::csv_fini(&p_, &on_field, &on_row, this) != 0) {
      // an opening quote without its closing quote: name the line the field starts on
      const std::size_t inside = csv_line_breaks(p_.entry_buf, p_.entry_pos);
      fail(line_ > inside ? line_ - inside : 1, count_ + 1,
           "a closing quote for the quoted field that starts here", "the end of the file");
    }
    rethrow();
    if (rows_ == 0 && width_ != 0) fail(header_line_, 0, "rows of data after the header", "none");
    if (rows_ == 0)
      fail(0, 0, header_ ? "a header row and rows of data" : "rows of data",
           "an empty file (no rows)");
  }

  std::vector<float> features, targets;
  std::vector<std::int32_t> labels;
  std::int64_t top_label = -1;  ///< the largest label
  std::size_t feature_count = 0, target_count = 0;
  std::size_t rows() const noexcept { return rows_; }

 private:
  static constexpr unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

  /// The line-by-line parse of b[0, n) (after the byte order mark).
  void parse(const unsigned char* b, std::size_t n) {
    // One line at a time: each piece ends at the first '\r' or '\n', so every callback during a
    // piece happens on line_ (a row or field ends at most at the piece's line break).
    for (std::size_t i = 0; i < n;) {
      std::size_t end = i;
      while (end < n && b[end] != '\n' && b[end] != '\r') ++end;
      if (end < n) ++end;
      const std::size_t used = ::csv_parse(&p_, b + i, end - i, &on_field, &on_row, this);
      rethrow();
      if (used != end - i) parse_failed(b[i + used]);
      const unsigned char last = b[end - 1];
      if (last == '\r' || (last == '\n' && !(end - 1 == i && last_cr_))) ++line_;
      last_cr_ = last == '\r';
      i = end;
    }
  }

  [[noreturn]] void fail(std::size_t line, std::size_t column, const std::string& expected,
                         const std::string& found) const {
    const std::string& col =
        column != 0 && column <= names_.size() ? names_[column - 1] : std::string();
    throw csv_error(name_, line, column, col, expected, found);
  }

  void rethrow() {
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
  }

  [[noreturn]] void parse_failed(unsigned char c) {
    const int status = ::csv_error(&p_);  // not data::csv_error
    if (status == CSV_ENOMEM) throw std::bad_alloc();
    if (status != CSV_EPARSE)
      fail(line_, count_ + 1, "a field libcsv can hold", ::csv_strerror(status));
    if (p_.quoted == 0)
      fail(line_, count_ + 1,
           "no quote inside an unquoted field (quote the whole field and double its quotes)",
           "a quote");
    fail(line_, count_ + 1,
         "the delimiter " + csv_char(p_.delim_char) +
             " or the end of the line after the closing "
             "quote",
         csv_char(c));
  }

  static void on_field(void* s, std::size_t len, void* self) noexcept {
    auto& r = *static_cast<csv_reader*>(self);
    if (r.error_) return;
    try {
      const auto* text = static_cast<const unsigned char*>(s);
      if (text == nullptr) len = 0;
      if (r.count_ == r.fields_.size()) {
        r.fields_.emplace_back();
        r.lines_.push_back(0);
      }
      r.fields_[r.count_].assign(reinterpret_cast<const char*>(text), len);
      const std::size_t inside = csv_line_breaks(text, len);
      r.lines_[r.count_] = r.line_ > inside ? r.line_ - inside : 1;
      ++r.count_;
    } catch (...) {
      r.error_ = std::current_exception();
    }
  }

  static void on_row(int, void* self) noexcept {
    auto& r = *static_cast<csv_reader*>(self);
    if (r.error_ || r.count_ == 0) return;
    try {
      r.row();
    } catch (...) {
      r.error_ = std::current_exception();
    }
    r.count_ = 0;
  }

  /// The row of count_ fields just read.
  void row() {
    const std::size_t line = lines_[0];
    if (width_ == 0) {
      width_ = count_;
      header_line_ = line;
      if (header_)
        names_.assign(fields_.begin(), fields_.begin() + static_cast<std::ptrdiff_t>(count_));
      choose_columns(line);
      if (header_) return;
    }
    if (count_ != width_) {
      const std::string as_in = header_ ? "as in the header" : "as in the first row";
      fail(
          line, 0,
          count_of(width_, "field") + " (" + as_in + ", line " + std::to_string(header_line_) + ")",
          std::to_string(count_));
    }
    const std::size_t first_target = targets.size();
    targets.resize(first_target + target_count);
    for (std::size_t j = 0; j < width_; ++j) {
      const std::string& f = fields_[j];
      if (roles_[j] == csv_role::label) {
        std::int64_t v = 0;
        if (csv_parse_label(f, sel_.label_limit, v) != nullptr)
          fail(lines_[j], j + 1,
               sel_.classes != 0
                   ? "an integer label in [0, " + std::to_string(sel_.classes) + ")"
                   : "an integer label in [0, " + std::to_string(sel_.label_limit - 1) +
                         "] (set classes for more)",
               f.empty() ? "an empty field" : csv_quoted(f));
        labels.push_back(static_cast<std::int32_t>(v));
        top_label = std::max(top_label, v);
      } else {
        float v = 0;
        if (const char* bad = csv_parse_float(f, v))
          fail(lines_[j], j + 1, bad, f.empty() ? "an empty field" : csv_quoted(f));
        if (roles_[j] == csv_role::feature)
          features.push_back(v);
        else
          targets[first_target + slots_[j]] = v;
      }
    }
    ++rows_;
  }

  /// The column named name in the header (0-based), or a csv_error.
  std::size_t column_named(const std::string& name, std::size_t line, const char* option) {
    std::vector<std::size_t> at;
    for (std::size_t j = 0; j < names_.size(); ++j)
      if (names_[j] == name) at.push_back(j);
    if (at.size() == 1) return at[0];
    if (at.size() > 1)
      fail(line, 0, "one column named " + csv_quoted(name) + " (" + option + ")",
           "columns " + std::to_string(at[0] + 1) + " and " + std::to_string(at[1] + 1));
    std::string all;
    for (std::size_t j = 0; j < names_.size() && j < 12; ++j)
      all += (j != 0 ? ", " : "") + csv_quoted(names_[j]);
    if (names_.size() > 12) all += ", ...";
    fail(line, 0, "a column named " + csv_quoted(name) + " (" + option + ")", "the columns " + all);
  }

  void choose_columns(std::size_t line) {
    const bool label = sel_.role == csv_role::label;
    const char* option = label ? (sel_.names.empty() ? "label_index" : "label_column")
                               : (sel_.names.empty() ? "target_indices" : "target_columns");
    std::vector<std::size_t> chosen;
    for (const std::string& n : sel_.names) chosen.push_back(column_named(n, line, option));
    if (sel_.names.empty()) {
      for (int i : sel_.indices) {
        const long long w = static_cast<long long>(width_);
        const long long j = i >= 0 ? i : w + i;
        if (j < 0 || j >= w)
          fail(line, 0,
               std::string("a column at ") + option + " " + std::to_string(i) +
                   " (0-based, "
                   "negative from the end)",
               count_of(width_, "column"));
        chosen.push_back(static_cast<std::size_t>(j));
      }
    }
    roles_.assign(width_, csv_role::feature);
    slots_.assign(width_, 0);
    for (std::size_t k = 0; k < chosen.size(); ++k) {
      const std::size_t j = chosen[k];
      if (roles_[j] != csv_role::feature)
        fail(line, j + 1, std::string("each column once in ") + option, "this one twice");
      roles_[j] = sel_.role;
      slots_[j] = k;
    }
    target_count = chosen.size();
    feature_count = width_ - chosen.size();
    if (feature_count == 0)
      fail(line, 0,
           std::string("at least one feature column besides the ") +
               (label ? "label column" : "target columns"),
           count_of(width_, "column"));
  }

  csv_parser p_{};
  std::string name_;
  bool header_;
  selection sel_;
  std::size_t line_ = 1;         // the line of the bytes being parsed
  bool last_cr_ = false;         // the last byte parsed was '\r' (a '\n' after it is no new line)
  std::size_t bom_matched_ = 0;  // bytes of a leading byte order mark seen (3: decided)
  std::exception_ptr error_;
  std::vector<std::string> fields_;  // the row being read: count_ fields and their lines
  std::vector<std::size_t> lines_;
  std::size_t count_ = 0;
  std::vector<std::string> names_;  // the header's
  std::vector<csv_role> roles_;
  std::vector<std::size_t> slots_;  // a target column's place in a row's targets
  std::size_t width_ = 0;           // fields per row, from the header or first row (0: none yet)
  std::size_t header_line_ = 0;
  std::size_t rows_ = 0;  // rows of data
};

inline csv_reader::selection csv_label_selection(const csv_options& o) {
  if (o.classes > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
    throw std::invalid_argument("graft: read_csv: classes is " + std::to_string(o.classes) +
                                ", expected at most 2^31-1");
  csv_reader::selection s;
  s.role = csv_role::label;
  if (!o.label_column.empty())
    s.names = {o.label_column};
  else
    s.indices = {o.label_index};
  s.classes = o.classes;
  s.label_limit = o.classes != 0 ? static_cast<std::int64_t>(o.classes) : max_idx_label + 1;
  return s;
}

inline csv_reader::selection csv_target_selection(const csv_regression_options& o) {
  csv_reader::selection s;
  s.role = csv_role::target;
  s.names = o.target_columns;
  s.indices = o.target_indices;
  return s;
}

/// Feeds the file at path to r in 64 KiB pieces.
inline void csv_feed_file(const std::string& path, csv_reader& r) {
  check_not_directory(path);
  errno = 0;
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw_unreadable(path, errno);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> closer(f, &std::fclose);
  std::vector<unsigned char> buf(std::size_t{1} << 16);
  for (;;) {
    const std::size_t got = std::fread(buf.data(), 1, buf.size(), f);
    if (got == 0) break;
    r.feed(buf.data(), got);
  }
  if (std::ferror(f)) throw_unreadable(path, errno);
  r.finish();
}

inline dataset csv_classification(csv_reader& r, std::string name, std::size_t classes) {
  dataset d;
  d.name = std::move(name);
  d.sample_shape = {r.feature_count};
  d.features = std::move(r.features);
  d.labels = std::move(r.labels);
  const std::size_t k = classes != 0 ? classes : static_cast<std::size_t>(r.top_label + 1);
  d.class_ids.resize(k);
  for (std::size_t c = 0; c < k; ++c) d.class_ids[c] = static_cast<std::int32_t>(c);
  return d;
}

inline dataset csv_regression(csv_reader& r, std::string name) {
  dataset d;
  d.name = std::move(name);
  d.sample_shape = {r.feature_count};
  d.features = std::move(r.features);
  d.targets = std::move(r.targets);
  d.target_size = r.target_count;
  return d;
}

}  // namespace detail

/// A classification dataset from a CSV file: the label column (options.label_column by name, else
/// options.label_index) holds integer labels in [0, classes), every other column is a float
/// feature (sample_shape {columns - 1}). class_ids is 0..classes-1 (classes 0: 0..largest label).
/// csv_error for a malformed file, data_error for an unreadable one, std::invalid_argument for
/// inconsistent options.
inline dataset read_csv(const std::string& path, const csv_options& options = {}) {
  detail::csv_reader r(path, options.delimiter, options.header,
                       detail::csv_label_selection(options));
  detail::csv_feed_file(path, r);
  return detail::csv_classification(r, options.name.empty() ? path : options.name, options.classes);
}

/// read_csv on a file held in bytes[0, n); name is used in messages (and as the dataset's name
/// unless options.name is set).
inline dataset parse_csv(const std::string& name, const unsigned char* bytes, std::size_t n,
                         const csv_options& options = {}) {
  detail::csv_reader r(name, options.delimiter, options.header,
                       detail::csv_label_selection(options));
  r.feed(bytes, n);
  r.finish();
  return detail::csv_classification(r, options.name.empty() ? name : options.name, options.classes);
}

/// A regression dataset from a CSV file: the target columns (options.target_columns by name,
/// else options.target_indices; by default the last column) are float targets in that order
/// (target_size = their number), every other column is a float feature.
inline dataset read_csv_regression(const std::string& path,
                                   const csv_regression_options& options = {}) {
  detail::csv_reader r(path, options.delimiter, options.header,
                       detail::csv_target_selection(options));
  detail::csv_feed_file(path, r);
  return detail::csv_regression(r, options.name.empty() ? path : options.name);
}

/// read_csv_regression on a file held in bytes[0, n).
inline dataset parse_csv_regression(const std::string& name, const unsigned char* bytes,
                                    std::size_t n, const csv_regression_options& options = {}) {
  detail::csv_reader r(name, options.delimiter, options.header,
                       detail::csv_target_selection(options));
  r.feed(bytes, n);
  r.finish();
  return detail::csv_regression(r, options.name.empty() ? name : options.name);
}

}  // namespace data
GRAFT_END_NAMESPACE
