# Finds the peer libraries that graft's comparative benchmarks (bench/peers/) run against. Every
# peer is optional; a missing one only gets a STATUS message. For each peer found this defines
#   GRAFT_PEER_<NAME>_FOUND   TRUE
#   graft_peer_<name>         an INTERFACE target carrying its includes, libraries and flags
# for <name> in torch, dlib, tinydnn, openblas. On Debian bookworm:
#   apt-get install libtorch-dev libdlib-dev libopenblas-dev \
#                   tiny-dnn libcereal-dev libgemmlowp-dev libstb-dev
include_guard(DIRECTORY)

# ---- LibTorch (Debian installs TorchConfig.cmake) ----------------------------------------------
set(GRAFT_PEER_TORCH_FOUND FALSE)
find_package(Torch QUIET)
if(Torch_FOUND OR TORCH_FOUND)
  add_library(graft_peer_torch INTERFACE)
  target_link_libraries(graft_peer_torch INTERFACE ${TORCH_LIBRARIES})
  # TORCH_CXX_FLAGS carries the C++ ABI define that the library was built with.
  separate_arguments(_graft_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(graft_peer_torch INTERFACE ${_graft_torch_flags})
  set(GRAFT_PEER_TORCH_FOUND TRUE)
  message(STATUS "graft peers: LibTorch ${Torch_VERSION} found")
else()
  message(STATUS "graft peers: LibTorch not found, bench_peer_torch skipped (apt install libtorch-dev)")
endif()

# ---- dlib --------------------------------------------------------------------------------------
set(GRAFT_PEER_DLIB_FOUND FALSE)
find_package(dlib QUIET)
if(dlib_FOUND)
  add_library(graft_peer_dlib INTERFACE)
  target_link_libraries(graft_peer_dlib INTERFACE dlib::dlib)
  set(GRAFT_PEER_DLIB_FOUND TRUE)
  message(STATUS "graft peers: dlib ${dlib_VERSION} found")
else()
  message(STATUS "graft peers: dlib not found, bench_peer_dlib skipped (apt install libdlib-dev)")
endif()

# ---- tiny-dnn (header-only) --------------------------------------------------------------------
# tiny_dnn.h also needs cereal, gemmlowp and stb, which Debian's tiny-dnn package neither depends on
# nor ships: apt install libcereal-dev libgemmlowp-dev libstb-dev. Its headers include stb as
# "third_party/stb/stb_image.h" (the layout of its source tree); when only a system stb exists
# (Debian: /usr/include/stb), forwarding headers in that layout are generated in the build tree.
set(GRAFT_PEER_TINYDNN_FOUND FALSE)
find_path(GRAFT_TINYDNN_INCLUDE_DIR tiny_dnn/tiny_dnn.h)
find_path(GRAFT_CEREAL_INCLUDE_DIR cereal/cereal.hpp)
find_path(GRAFT_GEMMLOWP_INCLUDE_DIR gemmlowp/public/gemmlowp.h
          HINTS ${GRAFT_TINYDNN_INCLUDE_DIR}/third_party)
find_path(GRAFT_TINYDNN_STB_DIR third_party/stb/stb_image.h HINTS ${GRAFT_TINYDNN_INCLUDE_DIR})
if(NOT GRAFT_TINYDNN_STB_DIR)
  find_path(GRAFT_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
  if(GRAFT_STB_INCLUDE_DIR)
    set(GRAFT_TINYDNN_STB_DIR ${CMAKE_CURRENT_BINARY_DIR}/tinydnn_stb)
    foreach(stb_header stb_image stb_image_resize stb_image_write)
      file(CONFIGURE OUTPUT ${GRAFT_TINYDNN_STB_DIR}/third_party/stb/${stb_header}.h
           CONTENT "#include \"${GRAFT_STB_INCLUDE_DIR}/${stb_header}.h\"\n")
    endforeach()
  endif()
endif()
if(GRAFT_TINYDNN_INCLUDE_DIR AND GRAFT_CEREAL_INCLUDE_DIR AND GRAFT_GEMMLOWP_INCLUDE_DIR
   AND GRAFT_TINYDNN_STB_DIR)
  find_package(Threads REQUIRED)
  add_library(graft_peer_tinydnn INTERFACE)
  target_include_directories(graft_peer_tinydnn SYSTEM INTERFACE
    ${GRAFT_TINYDNN_INCLUDE_DIR} ${GRAFT_CEREAL_INCLUDE_DIR} ${GRAFT_GEMMLOWP_INCLUDE_DIR}
    ${GRAFT_TINYDNN_STB_DIR})
  # One thread: without this (and without TBB/OpenMP) tiny-dnn's parallel_for spawns std::async
  # tasks, one per hardware thread.
  target_compile_definitions(graft_peer_tinydnn INTERFACE CNN_SINGLE_THREAD)
  target_link_libraries(graft_peer_tinydnn INTERFACE Threads::Threads)
  set(GRAFT_PEER_TINYDNN_FOUND TRUE)
  message(STATUS "graft peers: tiny-dnn found in ${GRAFT_TINYDNN_INCLUDE_DIR}")
else()
  message(STATUS "graft peers: tiny-dnn or its cereal/gemmlowp/stb headers not found, "
                 "bench_peer_tinydnn skipped "
                 "(apt install tiny-dnn libcereal-dev libgemmlowp-dev libstb-dev)")
endif()

# ---- OpenBLAS (CBLAS interface) ----------------------------------------------------------------
# Debian ships OpenBLASConfig.cmake; elsewhere fall back to FindBLAS with the OpenBLAS vendor and
# look for cblas.h next to it. The OpenBLAS extensions (openblas_set_num_threads) are needed too.
set(GRAFT_PEER_OPENBLAS_FOUND FALSE)
find_package(OpenBLAS CONFIG QUIET)
if(OpenBLAS_FOUND AND OpenBLAS_LIBRARIES)
  set(GRAFT_OPENBLAS_LIBRARIES ${OpenBLAS_LIBRARIES})
  set(GRAFT_OPENBLAS_HINTS ${OpenBLAS_INCLUDE_DIRS})
else()
  set(BLA_VENDOR OpenBLAS)
  find_package(BLAS QUIET)
  unset(BLA_VENDOR)
  set(GRAFT_OPENBLAS_LIBRARIES ${BLAS_LIBRARIES})
  set(GRAFT_OPENBLAS_HINTS "")
endif()
find_path(GRAFT_OPENBLAS_CBLAS_INCLUDE_DIR cblas.h HINTS ${GRAFT_OPENBLAS_HINTS}
          PATH_SUFFIXES openblas openblas-pthread)
if(GRAFT_OPENBLAS_LIBRARIES AND GRAFT_OPENBLAS_CBLAS_INCLUDE_DIR)
  add_library(graft_peer_openblas INTERFACE)
  target_include_directories(graft_peer_openblas SYSTEM INTERFACE
                             ${GRAFT_OPENBLAS_CBLAS_INCLUDE_DIR})
  target_link_libraries(graft_peer_openblas INTERFACE ${GRAFT_OPENBLAS_LIBRARIES})
  set(GRAFT_PEER_OPENBLAS_FOUND TRUE)
  message(STATUS "graft peers: OpenBLAS found (${GRAFT_OPENBLAS_LIBRARIES})")
else()
  message(STATUS
          "graft peers: OpenBLAS/cblas.h not found, bench_peer_openblas skipped (apt install libopenblas-dev)")
endif()
