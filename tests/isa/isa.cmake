# One instruction set of the matrix (ctest isa_<ISA>): compiles the kernel, gradient, math and
# reproducibility tests into one program at -O3 -march=<ISA> (the release builds' level: g++ 12
# miscompiled col2im there for SSE2 doubles) with graft's warnings as errors, then
# checks the same sources with clang at that level (-fsyntax-only), and runs the program when this
# CPU has the instruction set (__builtin_cpu_supports), so that the kernels equal
# their scalar references and training gives the committed hashes at every x86-64 level. Without
# the instruction set the program is compiled only, and ctest reports the test as skipped.
#   cmake -DCXX=... [-DCLANGXX=...] -DISA=x86-64-v3 -DSRC=<tests dir> -DROOT=<project dir> -DOUT=<dir>
#         -DWARNINGS="-Wall;..." -P isa.cmake
file(MAKE_DIRECTORY ${OUT})
set(exe ${OUT}/isa_${ISA})
execute_process(
  COMMAND ${CXX} -std=c++20 -O3 -march=${ISA} -ffp-contract=off -DXTENSOR_USE_XSIMD ${WARNINGS}
          -Werror -I${ROOT}/include -I${ROOT}/examples -I${SRC}
          ${SRC}/test_kernels.cpp ${SRC}/test_gradients.cpp ${SRC}/test_math.cpp
          ${SRC}/test_reproducible.cpp ${SRC}/main.cpp -o ${exe}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "isa ${ISA}: the tests do not compile")
endif()
# clang 14 too (semantic analysis at this level: every template the tests use is instantiated)
if(CLANGXX)
  execute_process(
    COMMAND ${CLANGXX} -std=c++20 -fsyntax-only -march=${ISA} -DXTENSOR_USE_XSIMD -Wall -Wextra
            -Werror -I${ROOT}/include -I${ROOT}/examples -I${SRC} ${SRC}/test_kernels.cpp
            ${SRC}/test_math.cpp ${SRC}/test_reproducible.cpp
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "isa ${ISA}: clang does not accept the tests")
  endif()
endif()
file(WRITE ${OUT}/probe_${ISA}.cpp
     "int main() { return __builtin_cpu_supports(\"${ISA}\") ? 0 : 1; }\n")
execute_process(COMMAND ${CXX} ${OUT}/probe_${ISA}.cpp -o ${OUT}/probe_${ISA} RESULT_VARIABLE rc)
execute_process(COMMAND ${OUT}/probe_${ISA} RESULT_VARIABLE supported)
if(NOT supported EQUAL 0)
  # ctest marks the test skipped on this line (SKIP_REGULAR_EXPRESSION)
  message("GRAFT_ISA_SKIPPED: isa ${ISA}: compiled; not run: this CPU lacks ${ISA}")
  return()
endif()
execute_process(COMMAND ${exe} --no-intro=true --no-version=true RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "isa ${ISA}: the tests fail")
endif()
