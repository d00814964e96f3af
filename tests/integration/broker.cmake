# Broker integration tests: real certrelayd processes driven over their Unix socket by Python
# clients (tests/integration/crstest.py) and by `certrelay simulate`. Label: integration.
set(CRS_BROKER_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

function(crs_broker_test name)
  add_test(NAME broker_${name}
           COMMAND ${CRS_PYTHON3} ${CRS_BROKER_TEST_DIR}/${name}_test.py
                   --certrelayd $<TARGET_FILE:certrelayd> ${ARGN})
  set_tests_properties(broker_${name} PROPERTIES LABELS integration TIMEOUT 1200)
endfunction()

if(NOT WIN32 AND CRS_PYTHON3)
  crs_broker_test(framing)
  crs_broker_test(shutdown)
  crs_broker_test(retry)
  # The tests below drive the broker with the simulator (tools/, target certrelay).
  if(TARGET certrelay)
    foreach(t e2e spool crash hostile)
      crs_broker_test(${t} --certrelay $<TARGET_FILE:certrelay>)
    endforeach()
  endif()
endif()
