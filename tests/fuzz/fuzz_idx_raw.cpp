// libFuzzer target: parse_idx() on the input bytes, as a raw IDX file. Refusals are
// graft::data_error; any other exception, a crash or a sanitizer report is a finding. An accepted
// file must be self-consistent (header plus payload is the whole input, every element readable).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "graft/data/idx.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace gd = graft::data;
  gd::idx_array a;
  try {
    a = gd::parse_idx("fuzz.idx", data, size);
  } catch (const graft::data_error&) {
    return 0;
  }
  const std::size_t n = a.count();
  if (a.header_size() + a.payload.size() != size || n * a.element_size() != a.payload.size() ||
      n == 0)
    std::abort();
  (void)a.at(0);
  (void)a.at(n - 1);
  std::vector<float> f(n);
  gd::convert_to_float(a, f.data(), 255.0f);
  return 0;
}
