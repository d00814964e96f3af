# The Event Log catalogue (include/certrelay/msgid.h) against the message tables compiled from
# cmake/messages.mc into certrelayd.exe and certrelay_exit.dll, run under Wine.
if(NOT WIN32)
  return()
endif()
add_executable(test_eventlog_catalogue ${CMAKE_CURRENT_LIST_DIR}/test_eventlog_catalogue.c)
target_include_directories(test_eventlog_catalogue PRIVATE ${CMAKE_CURRENT_LIST_DIR}/..)
target_link_libraries(test_eventlog_catalogue PRIVATE certrelay_core)
set_target_properties(test_eventlog_catalogue PROPERTIES
  CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/wine-run)
add_test(NAME win_eventlog_catalogue
         COMMAND test_eventlog_catalogue $<TARGET_FILE:certrelayd> $<TARGET_FILE:certrelay_exit>)
set_tests_properties(win_eventlog_catalogue PROPERTIES LABELS "unit;wine" TIMEOUT 300)
