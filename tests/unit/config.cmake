# Tests of the configuration file (lib/config.c, lib/sinkconf/, lib/*/defaults.c). This fragment
# is include()d from tests/CMakeLists.txt, so CMAKE_CURRENT_LIST_DIR is tests/unit.
crs_add_unit_test(test_config ${CMAKE_CURRENT_LIST_DIR}/test_config.c)

# `certrelayd --check-config FILE` as an administrator runs it: exit status and the exact
# "FILE:LINE: " prefix of the first line on stderr. Registered once the broker target exists.
if(NOT WIN32 AND TARGET certrelayd AND CRS_PYTHON3)
  add_test(NAME check_config
           COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/../integration/check_config_test.py
                   $<TARGET_FILE:certrelayd>)
  set_tests_properties(check_config PROPERTIES LABELS integration TIMEOUT 120)
endif()

# The same tests against lib/config.c's inih-compatible line splitter (CRS_NO_INIH), which the
# Windows build uses when the Debian archive does not serve libinih's source. Linking config.c
# into the test directly makes the linker take it instead of the library's copy.
# (On Windows test_config itself may already be built that way: see cmake/WindowsDeps.cmake.)
if(NOT WIN32)
add_executable(test_config_noinih ${CMAKE_CURRENT_LIST_DIR}/test_config.c
                                  ${PROJECT_SOURCE_DIR}/lib/config.c)
target_compile_definitions(test_config_noinih PRIVATE CRS_NO_INIH=1)
target_include_directories(test_config_noinih PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(test_config_noinih PRIVATE certrelay_core)
add_test(NAME test_config_noinih COMMAND test_config_noinih)
set_tests_properties(test_config_noinih PROPERTIES LABELS unit TIMEOUT 300)
endif()
