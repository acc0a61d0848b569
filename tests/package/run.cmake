# Installs gradflow to a scratch prefix, then builds the consumer project twice:
# once with find_package(gradflow CONFIG REQUIRED), once with add_subdirectory.
file(REMOVE_RECURSE ${WORK_DIR})
set(prefix ${WORK_DIR}/prefix)

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
endfunction()

run(${CMAKE_COMMAND} --install ${GRADFLOW_BUILD_DIR} --prefix ${prefix})
foreach(mode find_package add_subdirectory)
  set(build ${WORK_DIR}/${mode})
  run(${CMAKE_COMMAND} -S ${CMAKE_CURRENT_LIST_DIR}/consumer -B ${build}
      -DCMAKE_CXX_COMPILER=${CXX} -DCMAKE_PREFIX_PATH=${prefix}
      -DCONSUME_MODE=${mode} -DGRADFLOW_SOURCE_DIR=${GRADFLOW_SOURCE_DIR})
  run(${CMAKE_COMMAND} --build ${build})
  run(${build}/consumer)
  message(STATUS "consumer via ${mode}: ok")
endforeach()
