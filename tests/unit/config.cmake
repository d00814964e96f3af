# Tests of the configuration file (broker/config/, broker/sinks/*/settings.c, lib/*/defaults.c),
# natively and, in the Windows build, under Wine: one reader, one suite per platform. This fragment
# is include()d from tests/CMakeLists.txt, so CMAKE_CURRENT_LIST_DIR is tests/unit.
crs_add_unit_test(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)
target_link_libraries(test_config PRIVATE certrelay_broker)

# `certrelayd --check-config FILE` as an administrator runs it: exit status and the exact
# "FILE:LINE: " prefix of the first line on stderr. Registered once the broker target exists.
if(NOT WIN32 AND TARGET certrelayd AND CRS_PYTHON3)
  add_test(NAME check_config
           COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/../integration/check_config_test.py
                   $<TARGET_FILE:certrelayd>)
  set_tests_properties(check_config PROPERTIES LABELS integration TIMEOUT 120)
endif()
