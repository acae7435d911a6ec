# One compile_stress test (see stress.cmake): compiles SOURCE with LAYERS layers, prints the time
# and peak memory that GNU time reports (when TIME is set), fails if the compiler fails or its
# peak memory exceeds MAX_MB.
#   cmake -DCOMPILER=g++ -DRSP=flags.rsp -DLAYERS=300 -DSOURCE=long_stack.cpp [-DTIME=/usr/bin/time]
#         [-DMAX_MB=2048] [-DNAME=...] -P run.cmake
foreach(v COMPILER RSP LAYERS SOURCE)
  if(NOT DEFINED ${v} OR "${${v}}" STREQUAL "")
    message(FATAL_ERROR "run.cmake: -D${v}=... is required")
  endif()
endforeach()
if(NOT DEFINED NAME)
  set(NAME "compile_stress_${LAYERS}")
endif()

set(cmd ${COMPILER} @${RSP} -DGRAFT_STRESS_LAYERS=${LAYERS} ${SOURCE})
if(TIME)
  set(cmd ${TIME} -v ${cmd})
endif()
execute_process(COMMAND ${cmd} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)

set(report "${NAME}: ${LAYERS} layers, ${COMPILER}")
if(TIME)
  string(REGEX MATCH "Elapsed \\(wall clock\\) time \\(h:mm:ss or m:ss\\): ([0-9:.]+)" _ "${err}")
  set(wall "${CMAKE_MATCH_1}")
  string(REGEX MATCH "User time \\(seconds\\): ([0-9.]+)" _ "${err}")
  set(user "${CMAKE_MATCH_1}")
  string(REGEX MATCH "Maximum resident set size \\(kbytes\\): ([0-9]+)" _ "${err}")
  set(kb "${CMAKE_MATCH_1}")
  if(kb)
    math(EXPR mb "${kb} / 1024")
    string(APPEND report ": ${wall} wall, ${user} s user, ${mb} MB peak")
  endif()
  # Keep the compiler's own messages, without GNU time's report.
  string(REGEX REPLACE "\n?[ \t]*Command (exited with non-zero status|being timed).*" "" err "${err}")
endif()
message("${report}")

if(NOT rc EQUAL 0)
  message("${out}${err}")
  message(FATAL_ERROR "${NAME}: the compiler failed (exit ${rc})")
endif()
if(MAX_MB AND mb AND mb GREATER MAX_MB)
  message(FATAL_ERROR "${NAME}: ${mb} MB peak memory is above the budget of ${MAX_MB} MB "
                      "(GRAFT_STRESS_MAX_MB): has something started to grow faster than the "
                      "number of layers?")
endif()
