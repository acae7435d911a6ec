// libFuzzer target: the CSV reader (graft/data/csv.hpp, libcsv: GRAFT_HAVE_LIBCSV) on the input.
// Byte 0 chooses the options: bit 0 header, bits 1-2 the delimiter (',' ';' '\t' '|'), bit 3
// regression, bits 4-5 the label (or target) column -1, 0, 1 or -2, bit 6 classes 3 (else
// inferred), bit 7 the column by its name "l" (targets: "y" and "x"; with a header only). The rest
// is the file, parsed whole (parse_csv) and again fed in two pieces split where byte 1 says (at or
// after byte 3, where a byte order mark ends): both must give the same dataset or the same
// message. Refusals are graft::data_error; any other exception, a crash or a sanitizer report is a
// finding; so are an error on a line past the file's last, and an accepted dataset whose sizes,
// labels or floats are inconsistent.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "graft/data/csv.hpp"

namespace {
namespace gd = graft::data;

struct outcome {
  bool ok = false;
  gd::dataset d;
  std::string error;
  std::size_t line = 0;
};

template <class Parse> outcome run(Parse parse) {
  outcome o;
  try {
    o.d = parse();
    o.ok = true;
  } catch (const gd::csv_error& e) {
    o.error = e.what();
    o.line = e.line();
  } catch (const graft::data_error& e) {
    o.error = e.what();
  }
  return o;
}

void check(const gd::dataset& d, bool regression, std::size_t classes) {
  const std::size_t n = d.size();
  if (n == 0 || d.sample_shape.size() != 1 || d.features.size() != n * d.sample_size())
    std::abort();
  for (float v : d.features)
    if (!std::isfinite(v)) std::abort();
  if (regression) {
    if (d.target_size == 0 || d.targets.size() != n * d.target_size || d.has_labels()) std::abort();
    for (float v : d.targets)
      if (!std::isfinite(v)) std::abort();
    return;
  }
  if (d.labels.size() != n || (classes != 0 && d.class_ids.size() != classes)) std::abort();
  for (std::int32_t l : d.labels)
    if (l < 0 || static_cast<std::size_t>(l) >= d.class_ids.size()) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const unsigned sel = data[0];
  const unsigned split_at = data[1];
  const unsigned char* file = data + 2;
  const std::size_t n = size - 2;
  const bool header = (sel & 1) != 0;
  const char delimiter = ",;\t|"[(sel >> 1) & 3];
  const bool regression = (sel & 8) != 0;
  const int index = std::vector<int>{-1, 0, 1, -2}[(sel >> 4) & 3];
  const std::size_t classes = (sel & 64) != 0 ? 3 : 0;
  const bool by_name = (sel & 128) != 0 && header;

  gd::detail::csv_reader::selection which;
  outcome whole;
  if (regression) {
    gd::csv_regression_options o;
    o.delimiter = delimiter;
    o.header = header;
    o.target_indices = {index};
    if (by_name) o.target_columns = {"y", "x"};
    whole = run([&] { return gd::parse_csv_regression("fuzz.csv", file, n, o); });
    which = gd::detail::csv_target_selection(o);
  } else {
    gd::csv_options o;
    o.delimiter = delimiter;
    o.header = header;
    o.label_index = index;
    o.classes = classes;
    if (by_name) o.label_column = "l";
    whole = run([&] { return gd::parse_csv("fuzz.csv", file, n, o); });
    which = gd::detail::csv_label_selection(o);
  }
  if (whole.ok) check(whole.d, regression, classes);
  // lines are 1 + the line breaks before them: none is past the last
  if (whole.line > 1 + gd::detail::csv_line_breaks(file, n)) std::abort();

  // the same in two pieces
  const std::size_t cut = n <= 3 ? n : 3 + split_at % (n - 2);
  const outcome pieces = run([&] {
    gd::detail::csv_reader r("fuzz.csv", delimiter, header, which);
    r.feed(file, cut);
    r.feed(file + cut, n - cut);
    r.finish();
    return regression ? gd::detail::csv_regression(r, "fuzz.csv")
                      : gd::detail::csv_classification(r, "fuzz.csv", classes);
  });
  if (pieces.ok != whole.ok || pieces.error != whole.error) std::abort();
  if (whole.ok && (pieces.d.features != whole.d.features || pieces.d.labels != whole.d.labels ||
                   pieces.d.targets != whole.d.targets || pieces.d.class_ids != whole.d.class_ids))
    std::abort();
  return 0;
}
