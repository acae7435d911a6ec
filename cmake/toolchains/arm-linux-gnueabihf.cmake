# Cross build for 32-bit ARM (armv7-a, hard-float ABI) with Debian's g++-arm-linux-gnueabihf,
# static executables run under qemu-arm (Debian's qemu-user). NEON with VFPv4: VFPv4 brings the
# fused multiply-add (vfma.f32) that xsimd's NEON fma (vfmaq_f32) needs; Debian's armhf default
# (VFPv3-D16, no NEON) would give graft no SIMD at all. NEON on armv7 has no double lanes
# (xsimd::batch<double> has size 0 there) and flushes float subnormals to zero.
#
#   cmake -S . -B build/cross-armv7 \
#         -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/arm-linux-gnueabihf.cmake
#
# tools/cross.sh builds and runs the cross tests for both ARM targets (./run test calls it).
set(GRAFT_CROSS_TRIPLE arm-linux-gnueabihf)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(GRAFT_CROSS_FLAGS "-march=armv7-a -mfpu=neon-vfpv4 -mfloat-abi=hard")
set(GRAFT_CROSS_EMULATORS qemu-arm qemu-arm-static)
include(${CMAKE_CURRENT_LIST_DIR}/linux-gnu-common.cmake)
