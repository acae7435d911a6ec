// libFuzzer target: the safetensors reader and importer (graft/io/safetensors.hpp), on bytes in
// memory, into the small model of harness_model.hpp.
//
// Input: byte 0 selects (bit 0: import_backbone_safetensors instead of the whole model; bit 1:
// allow_unused; bit 2: pair "1.weight" through the name map with the file tensor "w"), the rest
// is the file.
//
// Findings: any exception but graft::io_error, a crash or a sanitizer report; a refused import
// that changed the model (compared bitwise with a copy of its saved tensors taken before); an
// accepted import after which the model, exported again, does not hold the values of the file
// tensors the report pairs it with (converted to float), or whose head changed in a backbone
// import.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include "graft/io/safetensors.hpp"
#include "harness_model.hpp"

namespace {
using net_t = graft_fuzz::net_t;
using bytes = std::vector<unsigned char>;

using graft_fuzz::saved_bytes;
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::unique_ptr<net_t> net = graft::make_model<net_t>(graft::seed{7});
  if (size == 0) return 0;
  const bool backbone = (data[0] & 1) != 0;
  graft::safetensors_options opt;
  opt.allow_unused = (data[0] & 2) != 0;
  if ((data[0] & 4) != 0) opt.names = {{"1.weight", "w"}};
  const bytes file(data + 1, data + size);

  const bytes backbone_before = saved_bytes(*net, false), head_before = saved_bytes(*net, true);
  graft::safetensors_report report;
  graft::safetensors_file parsed;
  bool refused = false;
  try {
    parsed = graft::detail::parse_safetensors("fuzz.safetensors", file);
    report = graft::detail::import_parsed(*net, parsed, opt, !backbone);
  } catch (const graft::io_error&) {
    refused = true;
  }
  if (refused) {
    if (saved_bytes(*net, false) != backbone_before || saved_bytes(*net, true) != head_before)
      std::abort();
    return 0;
  }
  if (backbone && saved_bytes(*net, true) != head_before) std::abort();
  // the model, exported again, holds each paired file tensor's values
  const graft::safetensors_file mine =
      graft::detail::parse_safetensors("again", graft::detail::safetensors_bytes(*net, ""));
  for (const auto& [g, n] : report.pairs) {
    const std::vector<double> want = parsed.values(n), got = mine.values(g);
    if (want.size() != got.size()) std::abort();
    for (std::size_t i = 0; i < want.size(); ++i)
      if (static_cast<double>(static_cast<float>(want[i])) != got[i]) std::abort();
  }
  return 0;
}
