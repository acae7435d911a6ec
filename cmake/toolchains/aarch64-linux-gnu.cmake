# Cross build for 64-bit ARM (armv8-a; NEON and FMA are part of it) with Debian's
# g++-aarch64-linux-gnu, static executables run under qemu-aarch64 (Debian's qemu-user):
#
#   cmake -S . -B build/cross-aarch64 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#   cmake --build build/cross-aarch64 --target test_kernels
#   ctest --test-dir build/cross-aarch64 -R '^kernels$'      # runs qemu-aarch64 test_kernels
#
# tools/cross.sh builds and runs the cross tests for both ARM targets (./run test calls it).
set(GRAFT_CROSS_TRIPLE aarch64-linux-gnu)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(GRAFT_CROSS_FLAGS "-march=armv8-a")
set(GRAFT_CROSS_EMULATORS qemu-aarch64 qemu-aarch64-static)
include(${CMAKE_CURRENT_LIST_DIR}/linux-gnu-common.cmake)
