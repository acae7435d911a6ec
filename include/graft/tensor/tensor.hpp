// tensor<T, D...>: static-shape storage over xt::xtensor_fixed, with a checked assignment.
//
// xtensor 0.24.3 compiles an assignment between xtensor_fixed of different fixed shapes and then
// writes past the buffer (xtensor issue 1316). graft's tensor only assigns from the same shape;
// anything else fails to compile with a message naming both shapes.
#pragma once
#include <algorithm>
#include <cstddef>
#include <type_traits>

#include <xtensor/xfixed.hpp>

#include "graft/diagnostics.hpp"
#include "graft/tensor/shape.hpp"

GRAFT_BEGIN_NAMESPACE

template <class T, std::size_t... D> class tensor {
 public:
  using value_type = T;
  using shape_type = shape<D...>;
  using storage_type = xt::xtensor_fixed<T, xt::xshape<D...>>;
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

  T* data() noexcept { return storage_.data(); }
  const T* data() const noexcept { return storage_.data(); }
  T* begin() noexcept { return data(); }
  T* end() noexcept { return data() + size; }
  const T* begin() const noexcept { return data(); }
  const T* end() const noexcept { return data() + size; }

  void fill(T v) noexcept { std::fill(begin(), end(), v); }

  /// Element access by multi-index; bounds are the caller's responsibility (as for operator[]).
  template <class... I>
  requires(sizeof...(I) == rank) T& operator()(I... i) noexcept { return storage_(i...); }
  template <class... I>
  requires(sizeof...(I) == rank) const T& operator()(I... i) const noexcept {
    return storage_(i...);
  }
  T& operator[](std::size_t flat) noexcept { return data()[flat]; }
  const T& operator[](std::size_t flat) const noexcept { return data()[flat]; }

  /// The underlying xtensor container, for users who want xtensor expressions outside hot loops.
  storage_type& xt() noexcept { return storage_; }
  const storage_type& xt() const noexcept { return storage_; }

  friend bool operator==(const tensor& a, const tensor& b) noexcept {
    return std::equal(a.begin(), a.end(), b.begin());
  }

 private:
  storage_type storage_;
};

/// Copies between tensors of the same number of elements but different shapes.
template <class T, std::size_t... D, std::size_t... E>
void reshape_copy(const tensor<T, E...>& from, tensor<T, D...>& to) {
  static_assert(shape<D...>::size == shape<E...>::size,
                "graft: reshape_copy needs the same number of elements");
  std::copy(from.begin(), from.end(), to.begin());
}

GRAFT_END_NAMESPACE
