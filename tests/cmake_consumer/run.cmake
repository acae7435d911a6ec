# Installs graft into a scratch prefix, then configures, builds and runs a consumer project that
# uses find_package(graft).
file(REMOVE_RECURSE ${WORK_DIR})
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${WORK_DIR}/graft-build
                  -DGRAFT_BUILD_TESTS=OFF -DGRAFT_BUILD_EXAMPLES=OFF -DGRAFT_BUILD_BENCH=OFF
                  -DCMAKE_INSTALL_PREFIX=${WORK_DIR}/prefix
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring graft failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --install ${WORK_DIR}/graft-build RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "installing graft failed")
endif()
# The installed package imposes no instruction set (issue 12): no -march in any installed file.
file(GLOB_RECURSE installed_cmake ${WORK_DIR}/prefix/*.cmake)
foreach(f IN LISTS installed_cmake)
  file(READ ${f} text)
  if(text MATCHES "-march")
    message(FATAL_ERROR "the installed ${f} imposes an instruction set (-march)")
  endif()
endforeach()
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/cmake_consumer -B ${WORK_DIR}/consumer
                  -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix -DCMAKE_BUILD_TYPE=Release
                RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "configuring the consumer with find_package(graft) failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${WORK_DIR}/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "building the consumer failed")
endif()
execute_process(COMMAND ${WORK_DIR}/consumer/consumer RESULT_VARIABLE rc)
if(rc)
  message(FATAL_ERROR "the consumer returned ${rc}")
endif()
message(STATUS "consumer built against the installed graft and ran")
