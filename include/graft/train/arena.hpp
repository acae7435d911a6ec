// A single aligned allocation made at setup; everything a training or inference step touches lives
// in it, at offsets computed while compiling.
#pragma once
#include <cstddef>
#include <memory>
#include <new>

#include "graft/config.hpp"
#include "graft/layers/workspace.hpp"

GRAFT_BEGIN_NAMESPACE

template <class T> class arena {
 public:
  arena() = default;
  explicit arena(std::size_t count)
      : count_(count),
        data_(static_cast<T*>(
            ::operator new[](count * sizeof(T) + 1, std::align_val_t{buffer_alignment}))) {
    for (std::size_t i = 0; i < count; ++i) data_.get()[i] = T(0);
  }
  T* data() noexcept { return data_.get(); }
  const T* data() const noexcept { return data_.get(); }
  std::size_t size() const noexcept { return count_; }

 private:
  struct deleter {
    void operator()(T* p) const noexcept {
      ::operator delete[](p, std::align_val_t{buffer_alignment});
    }
  };
  std::size_t count_ = 0;
  std::unique_ptr<T, deleter> data_;
};

GRAFT_END_NAMESPACE
