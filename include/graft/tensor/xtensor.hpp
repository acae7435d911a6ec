// The bridge to xtensor: with this header, tensor<T, D...>::xt() is an xt::xtensor_fixed adaptor
// over the tensor's memory (xt::adapt with a fixed shape: no copy), for xtensor expressions
// outside hot loops. graft/graft.hpp includes it; graft/inference.hpp does not (xtensor's headers
// include <iostream>).
#pragma once
#include <cstddef>

#include <xtensor/xadapt.hpp>

#include "graft/tensor/tensor.hpp"

GRAFT_BEGIN_NAMESPACE
namespace detail {
struct xtensor_bridge {
  template <std::size_t... D, class T> static auto adapt(T* data) noexcept {
    return xt::adapt(data, xt::fixed_shape<D...>{});
  }
};
}  // namespace detail
GRAFT_END_NAMESPACE
