// tensor<T, D...>: static-shape storage, an aligned array of T with a checked assignment.
//
// The storage is a plain array aligned to buffer_alignment (64 bytes) on every target: a tensor is
// a literal, trivially copyable type whose layout does not depend on the instruction set (an
// xt::xtensor_fixed's alignment followed -march, so one program's files had to agree on it), and
// this header includes nothing but <algorithm> and graft's own light headers: no xtensor, whose
// headers include <iostream> (freestanding inference, graft/inference.hpp, must not).
// xtensor is one include away: graft/tensor/xtensor.hpp (included by graft/graft.hpp) makes
// t.xt() an xt::xtensor_fixed adaptor over the same memory, for xtensor expressions outside hot
// loops.
//
// Assignment only from the same shape: anything else fails to compile with a message naming both
// shapes (xtensor 0.24.3 compiles an assignment between xtensor_fixed of different fixed shapes
// and then writes past the buffer: xtensor issue 1316).
#pragma once
#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "graft/config.hpp"
#include "graft/diagnostics.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE

namespace detail {
/// Defined by graft/tensor/xtensor.hpp: adapts a tensor's memory as an xtensor expression.
struct xtensor_bridge;
}  // namespace detail

template <class T, std::size_t... D> class tensor {
 public:
  using value_type = T;
  using shape_type = shape<D...>;
  static constexpr std::size_t rank = shape_type::rank;
  static constexpr std::size_t size = shape_type::size;

  tensor() = default;
  explicit tensor(T fill_value) { fill(fill_value); }

  tensor(const tensor&) = default;
  tensor& operator=(const tensor&) = default;

  template <class U, std::size_t... E>
  requires(!std::is_same_v<shape<D...>, shape<E...>>) tensor& operator=(const tensor<U, E...>&) {
    error::tensor_shape_mismatch<U, shape<E...>, shape<D...>> mismatch{};
    (void)mismatch;
    return *this;
  }

  T* data() noexcept { return values_; }
  const T* data() const noexcept { return values_; }
  T* begin() noexcept { return data(); }
  T* end() noexcept { return data() + size; }
  const T* begin() const noexcept { return data(); }
  const T* end() const noexcept { return data() + size; }

  void fill(T v) noexcept { std::fill(begin(), end(), v); }

  /// Element access by multi-index (row-major); bounds are the caller's responsibility (as for
  /// operator[]).
  template <class... I>
  requires(sizeof...(I) == rank) T& operator()(I... i) noexcept { return values_[offset(i...)]; }
  template <class... I>
  requires(sizeof...(I) == rank) const T& operator()(I... i) const noexcept {
    return values_[offset(i...)];
  }
  T& operator[](std::size_t flat) noexcept { return data()[flat]; }
  const T& operator[](std::size_t flat) const noexcept { return data()[flat]; }

  /// An xt::xtensor_fixed adaptor over this tensor's memory (needs graft/tensor/xtensor.hpp).
  template <class Bridge = detail::xtensor_bridge> auto xt() noexcept {
    return Bridge::template adapt<D...>(data());
  }
  template <class Bridge = detail::xtensor_bridge> auto xt() const noexcept {
    return Bridge::template adapt<D...>(data());
  }

  friend bool operator==(const tensor& a, const tensor& b) noexcept {
    return std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  template <class... I> static constexpr std::size_t offset(I... i) noexcept {
    const std::size_t idx[] = {static_cast<std::size_t>(i)...};
    std::size_t at = 0;
    for (std::size_t k = 0; k < rank; ++k) at = at * shape_type::dims[k] + idx[k];
    return at;
  }

  alignas(buffer_alignment) T values_[size];
};

/// Copies between tensors of the same number of elements but different shapes.
template <class T, std::size_t... D, std::size_t... E>
void reshape_copy(const tensor<T, E...>& from, tensor<T, D...>& to) {
  static_assert(shape<D...>::size == shape<E...>::size,
                "graft: reshape_copy needs the same number of elements");
  std::copy(from.begin(), from.end(), to.begin());
}

GRAFT_END_NAMESPACE
