// Exact footprints (issue 14), measured: a freestanding batch-1 program (-fno-exceptions
// -fno-rtti, no threads) runs the exported CNN of tests/export/ from its constant weights, and one
// device_trainer step of the exported MLP (bias_only), and checks that
//  * the runner's RAM is its constexpr figure: sizeof(runner) == runner::ram_bytes, and the
//    constant data is constant_model::constant_bytes;
//  * (the device trainer's likewise: sizeof(device_trainer) == ram_bytes);
//  * the forwards and the step use a few KiB of stack at most: run on a thread whose stack is
//  painted with a
//    pattern, the bytes overwritten are the high-water mark (printed; limit 16 KiB);
//  * no heap: neither operator new nor malloc, calloc or realloc is called during them
//    (this program interposes them, counting calls and passing them on to glibc);
//  * no thread-local storage: the program has no PT_TLS segment (graft's scratch memory is the
//    runner's, not thread_local buffers).
// (The measuring harness is hosted, pthreads and dl_iterate_phdr; the code measured is not.)
#include <link.h>
#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <graft/inference.hpp>
#include <graft/train/device.hpp>

#include "cnn_weights.hpp"
#include "mlp_weights.hpp"
#include "model_types.hpp"

namespace {
using net_t = export_models::cnn_t;
using runner_t = graft::runner<net_t, 1>;
constexpr auto net = cnn_weights::bind<net_t>();
runner_t runner;  // static storage: RAM known while linking
// fine-tuning on the device: the exported MLP's biases and head train, its weights stay constant
using device_t =
    graft::device_trainer<export_models::mlp_t, 4, graft::sgd, graft::freeze::bias_only>;
device_t device(mlp_weights::bind<export_models::mlp_t>(), graft::sgd{.lr = 0.05f});
graft::device_status device_result = graft::device_status::nonfinite_loss;
volatile bool counting = false;
long allocations = 0;  // malloc, calloc, realloc and operator new while counting
float checksum = 0;

constexpr std::size_t stack_bytes = 256 * 1024;
constexpr unsigned char paint = 0xA5;

void* run(void*) {
  for (std::size_t i = 0; i < net_t::input_shape::size; ++i)
    runner.input()[i] = static_cast<float>(i % 13) / 13.0f;
  for (std::size_t i = 0; i < 4 * export_models::mlp_t::input_shape::size; ++i)
    device.input()[i] = static_cast<float>(i % 7) / 7.0f;
  for (std::size_t r = 0; r < 4; ++r) device.targets()[r] = static_cast<std::int32_t>(r % 3);
  counting = true;
  for (int k = 0; k < 100; ++k) checksum += runner.forward(net, 1)[0];
  device_result = device.step(4);
  counting = false;
  return nullptr;
}

int tls_segments(dl_phdr_info* info, std::size_t, void* data) {
  if (info->dlpi_name != nullptr && info->dlpi_name[0] != '\0') return 0;  // the program only
  for (int i = 0; i < info->dlpi_phnum; ++i)
    if (info->dlpi_phdr[i].p_type == PT_TLS) ++*static_cast<int*>(data);
  return 0;
}
}  // namespace

extern "C" {
void* __libc_malloc(std::size_t);
void* __libc_calloc(std::size_t, std::size_t);
void* __libc_realloc(void*, std::size_t);
void* malloc(std::size_t n) {
  if (counting) ++allocations;
  return __libc_malloc(n);
}
void* calloc(std::size_t n, std::size_t size) {
  if (counting) ++allocations;
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t n) {
  if (counting) ++allocations;
  return __libc_realloc(p, n);
}
}

void* operator new(std::size_t n) {
  if (counting) ++allocations;
  void* p = std::malloc(n);
  if (p == nullptr) std::abort();
  return p;
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

int main() {
  static_assert(sizeof(runner_t) == runner_t::ram_bytes, "runner RAM is its constexpr figure");
  static_assert(sizeof(device_t) == device_t::ram_bytes, "device trainer RAM likewise");
  int failures = 0;
  auto check = [&](bool ok, const char* what) {
    if (!ok) {
      std::printf("FAILED: %s\n", what);
      ++failures;
    }
  };
  // the stack: a thread on a painted stack of our own
  void* stack = std::aligned_alloc(4096, stack_bytes);
  std::memset(stack, paint, stack_bytes);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstack(&attr, stack, stack_bytes);
  pthread_t th;
  check(pthread_create(&th, &attr, run, nullptr) == 0, "pthread_create");
  pthread_join(th, nullptr);
  std::size_t untouched = 0;
  while (untouched < stack_bytes && static_cast<unsigned char*>(stack)[untouched] == paint)
    ++untouched;
  const std::size_t high_water = stack_bytes - untouched;  // includes the thread's start-up
  std::free(stack);
  int tls = 0;
  dl_iterate_phdr(tls_segments, &tls);

  std::printf(
      "runner<cnn, 1>: RAM %zu bytes (activations + scratch, constexpr), constant data "
      "%zu bytes\n",
      runner_t::ram_bytes, graft::constant_model<net_t>::constant_bytes);
  std::printf(
      "100 forwards: stack high-water %zu bytes (thread start-up included), %ld heap "
      "allocations, %d TLS segment(s); checksum %g\n",
      high_water, allocations, tls, static_cast<double>(checksum));
  std::printf("device_trainer<mlp, 4, sgd, bias_only>: RAM %zu bytes, one step: %s\n",
              device_t::ram_bytes, device_result == graft::device_status::ok ? "ok" : "failed");
  check(device_result == graft::device_status::ok, "a device step");
  check(high_water <= 16 * 1024, "stack high-water within 16 KiB");
  check(allocations == 0, "no heap allocation in a forward");
  check(tls == 0, "no thread-local storage");
  return failures == 0 ? 0 : 1;
}
