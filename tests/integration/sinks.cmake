# Tests of the webhook and email sinks. This fragment is include()d from tests/CMakeLists.txt, so
# CMAKE_CURRENT_LIST_DIR is tests/integration.
#
# Unit: the portable formatting (bodies, signatures, HTTP rules, mail formatting, config keys).
crs_add_unit_test(test_webhook_format ${CMAKE_CURRENT_LIST_DIR}/../unit/test_webhook_format.c)
target_link_libraries(test_webhook_format PRIVATE certrelay_broker)

# Integration: certrelayd and `certrelay simulate` against real servers on 127.0.0.1 that the
# tests start themselves (http_server.py, smtp_server.py with Debian's python3-aiosmtpd) and a
# test CA made with the openssl command-line tool (testca.py).
set(CRS_SINKS_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})
find_program(CRS_OPENSSL openssl)
if(NOT WIN32 AND CRS_PYTHON3 AND CRS_OPENSSL AND TARGET certrelay)
  foreach(t webhook email sink_crash)
    add_test(NAME sinks_${t}
             COMMAND ${CRS_PYTHON3} ${CRS_SINKS_TEST_DIR}/${t}_test.py
                     --certrelayd $<TARGET_FILE:certrelayd> --certrelay $<TARGET_FILE:certrelay>)
    set_tests_properties(sinks_${t} PROPERTIES LABELS integration TIMEOUT 1200
                         ENVIRONMENT "no_proxy=*;NO_PROXY=*")
  endforeach()
endif()
