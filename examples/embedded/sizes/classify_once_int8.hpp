// The body of tools/sizes.sh's minimal batch-1 int8 programs: as classify_once.hpp, through
// graft::quant::runner and the int8 parameters of an exported header (graft::quant::export_header).
#pragma once
#include <cstddef>
#include <cstdio>

#include <graft/quant/runtime.hpp>

namespace embedded {
template <class QM> int classify_once_int8(const graft::quant::qview<QM>& net, int argc) {
  static graft::quant::runner<QM, 1> runner;  // static storage: its RAM is known while linking
  static float x[QM::input_size];
  for (std::size_t i = 0; i < QM::input_size; ++i)
    x[i] = static_cast<float>((i * static_cast<std::size_t>(argc)) % 17) / 17.0f;
  const std::int8_t* logits = runner.forward(net, x, 1);
  std::printf("class %zu\n", graft::quant::runner<QM, 1>::argmax(logits));
  return 0;
}
}  // namespace embedded
