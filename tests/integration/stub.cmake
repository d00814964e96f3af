# The stub core and the simulator: unit tests of the core (with a minimal broker-side socket
# server inside the test) and integration tests of `certrelay simulate`. End-to-end runs against
# certrelayd live in broker.cmake.
if(NOT WIN32)
  crs_add_unit_test(test_stub_core ${CMAKE_CURRENT_LIST_DIR}/../unit/test_stub_core.c)
  target_link_libraries(test_stub_core PRIVATE certrelay_stubcore crs::uv)

  add_test(NAME sim_from
           COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/sim_from_test.py
                   $<TARGET_FILE:certrelay> ${CRS_FIXTURE_DIR})
  set_tests_properties(sim_from PROPERTIES LABELS integration TIMEOUT 300)
endif()
