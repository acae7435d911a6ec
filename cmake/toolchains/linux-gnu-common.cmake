# Shared part of graft's Debian cross toolchains (aarch64-linux-gnu.cmake,
# arm-linux-gnueabihf.cmake), included by them after they set GRAFT_CROSS_TRIPLE,
# CMAKE_SYSTEM_PROCESSOR, GRAFT_CROSS_FLAGS and GRAFT_CROSS_EMULATORS. Needs Debian's g++-<triple>
# and qemu-user (or qemu-user-static).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_CXX_COMPILER ${GRAFT_CROSS_TRIPLE}-g++)
# The instruction set comes from here, never from graft's GRAFT_ARCH (-march=native would name
# the build machine's CPU): its default is empty in a cross build. -D GRAFT_ARCH=... still wins.
set(CMAKE_CXX_FLAGS_INIT "${GRAFT_CROSS_FLAGS}")
set(GRAFT_ARCH "" CACHE STRING
    "-march= for graft's own targets in its build tree (empty: compiler default); never installed")
# Static executables: qemu-user runs them without the target's shared libraries (no -L sysroot).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")

# Libraries and their headers only from the target's tree (/usr/<triple>), programs from the
# build machine (python3, clang++ of host-only tests). zlib: Debian's cross compilers bring no
# zlib for the target, so FindZLIB finds none and graft builds without it (GRAFT_HAVE_ZLIB off:
# raw IDX files only).
set(CMAKE_FIND_ROOT_PATH /usr/${GRAFT_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
# The header-only dependencies (xtensor, xsimd, xtl, doctest) are the build machine's packages:
# their headers are the same for every target, and Debian's cross g++ already searches /usr/include
# last, after the target's C and C++ library headers (`<triple>-g++ -xc++ -E -v /dev/null`), so
# <xtensor/...> resolves there while <stdlib.h> & co. stay the target's (a header the target lacks
# resolves there too, e.g. zlib.h: graft includes it only with GRAFT_HAVE_ZLIB). CMake knows
# /usr/include as one of the compiler's implicit directories and never passes it explicitly (an
# -isystem /usr/include would put the build machine's libc headers ahead of the target's), although
# the imported targets xtensor, xsimd, xtl and doctest::doctest name it. So nothing to stage: only
# their CMake package files have to be found, on the build machine too (BOTH): xtl's in
# /usr/share/cmake, doctest's in /usr/lib/cmake, xsimd's and xtensor's in the build machine's
# multiarch directory (/usr/lib/x86_64-linux-gnu/cmake), which a search for the target's
# architecture would not visit: add it. Only configs of header-only packages are found this way
# in graft's cross builds (bench/, which would find binary packages, is off there).
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
file(GLOB _graft_host_configs /usr/lib/*/cmake/xtensor/xtensorConfig.cmake
     /usr/lib/*/cmake/xsimd/xsimdConfig.cmake)
foreach(_graft_config IN LISTS _graft_host_configs)
  get_filename_component(_graft_dir "${_graft_config}" DIRECTORY)
  get_filename_component(_graft_dir "${_graft_dir}" DIRECTORY)
  list(APPEND CMAKE_PREFIX_PATH "${_graft_dir}")
endforeach()
list(REMOVE_DUPLICATES CMAKE_PREFIX_PATH)
unset(_graft_host_configs)
unset(_graft_config)
unset(_graft_dir)

# ctest (and add_test's generator expressions) run the target's programs under qemu-user.
find_program(GRAFT_CROSS_EMULATOR NAMES ${GRAFT_CROSS_EMULATORS}
             DOC "qemu-user emulator for ${GRAFT_CROSS_TRIPLE} programs")
if(GRAFT_CROSS_EMULATOR)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${GRAFT_CROSS_EMULATOR})
else()
  message(WARNING "graft: none of ${GRAFT_CROSS_EMULATORS} found (apt-get install qemu-user): "
                  "the tests build but ctest cannot run them")
endif()
