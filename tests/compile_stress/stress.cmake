# Compile stress (included from tests/CMakeLists.txt): long_stack.cpp with 300 and 1000 layers,
# under g++ and clang++ (when found), semantic analysis only (-fsyntax-only instantiates every
# template: binding, model, trainer step, runner forward). The template and constexpr depth
# limits are far below the layer count, so that a recursion over the layers fails here; clang's
# own limit of 256 nested expressions catches a fold over them. Each test prints its compile
# time and peak memory (run.cmake, with GNU time when installed) and fails above a memory budget.
#
#   ctest --preset dev -L compile_stress --output-on-failure -V     # the four tests, with timings
set(GRAFT_STRESS_DIR ${CMAKE_CURRENT_LIST_DIR})
set(GRAFT_STRESS_MAX_MB 2048 CACHE STRING
    "Peak memory (MB) above which a compile_stress test fails (0: no budget)")
find_program(GRAFT_STRESS_TIME NAMES time PATHS /usr/bin NO_DEFAULT_PATH)
if(NOT GRAFT_STRESS_TIME)
  set(GRAFT_STRESS_TIME "")
endif()

set(stress_common -std=c++20 -fsyntax-only -DXTENSOR_USE_XSIMD -ftemplate-depth=200
    -fconstexpr-depth=200 -I${PROJECT_SOURCE_DIR}/include)
if(GRAFT_ARCH)
  list(APPEND stress_common -march=${GRAFT_ARCH})
endif()

# g++: the project's warnings (errors in the dev preset); clang++: those of the clang_syntax tests.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  set(GRAFT_STRESS_GXX ${CMAKE_CXX_COMPILER})
else()
  find_program(GRAFT_STRESS_GXX NAMES g++ g++-12)
endif()
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(GRAFT_STRESS_CLANGXX ${CMAKE_CXX_COMPILER})
else()
  find_program(GRAFT_STRESS_CLANGXX NAMES clang++ clang++-14)
endif()
set(stress_gcc_flags ${stress_common} ${GRAFT_WARNINGS})
set(stress_clang_flags ${stress_common} -Wall -Wextra -Werror)

function(graft_compile_stress tag compiler flags_var)
  foreach(layers 300 1000)
    set(name compile_stress_${layers}_${tag})
    # The flags go through a response file (both compilers read @file).
    set(rsp ${CMAKE_CURRENT_BINARY_DIR}/compile_stress/${tag}.rsp)
    list(JOIN ${flags_var} "\"\n\"" rsp_text)
    file(CONFIGURE OUTPUT ${rsp} CONTENT "\"${rsp_text}\"\n" @ONLY)
    add_test(NAME ${name}
             COMMAND ${CMAKE_COMMAND} -DCOMPILER=${compiler} -DRSP=${rsp} -DLAYERS=${layers}
                     -DSOURCE=${GRAFT_STRESS_DIR}/long_stack.cpp -DTIME=${GRAFT_STRESS_TIME}
                     -DMAX_MB=${GRAFT_STRESS_MAX_MB} -DNAME=${name}
                     -P ${GRAFT_STRESS_DIR}/run.cmake)
    # One at a time (a 1000-layer compile takes a GB), and not while the build tree is built.
    set_tests_properties(${name} PROPERTIES LABELS compile_stress TIMEOUT 900
                         RESOURCE_LOCK "compile_stress;build_dir")
  endforeach()
endfunction()

if(GRAFT_STRESS_GXX)
  graft_compile_stress(gcc ${GRAFT_STRESS_GXX} stress_gcc_flags)
endif()
if(GRAFT_STRESS_CLANGXX)
  graft_compile_stress(clang ${GRAFT_STRESS_CLANGXX} stress_clang_flags)
endif()
