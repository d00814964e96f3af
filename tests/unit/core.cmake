# Unit tests of the core pieces: framing, event model, UUIDv7, durable files and the spool.
crs_add_unit_test(test_frame ${CMAKE_CURRENT_LIST_DIR}/test_frame.c)
crs_add_unit_test(test_event ${CMAKE_CURRENT_LIST_DIR}/test_event.c)
crs_add_unit_test(test_uuid ${CMAKE_CURRENT_LIST_DIR}/test_uuid.c)
# The test starts its threads with libuv; the core itself does not link it.
target_link_libraries(test_uuid PRIVATE crs::uv)
# POSIX file-system checks (truncation, rm -rf); the Windows file code is exercised end to end by
# the Wine tests (spool written by the DLL, drained by the service).
if(NOT WIN32)
  crs_add_unit_test(test_fs_spool ${CMAKE_CURRENT_LIST_DIR}/test_fs_spool.c)
endif()
# The Windows security descriptors: service SID, pipe descriptor, private directories (Wine).
if(WIN32)
  crs_add_unit_test(test_win_security ${CMAKE_CURRENT_LIST_DIR}/test_win_security.c)
  target_link_libraries(test_win_security PRIVATE certrelay_broker)
  # The broker's own pipe listener: PIPE_REJECT_REMOTE_CLIENTS, hand-over to libuv, clean close.
  crs_add_unit_test(test_win_pipe_listen ${CMAKE_CURRENT_LIST_DIR}/test_win_pipe_listen.c)
  target_link_libraries(test_win_pipe_listen PRIVATE certrelay_broker)
endif()
# Catch-up's portable half (catchup/): rows, the events built from them, the dedup key, the
# certutil CSV reader.
crs_add_unit_test(test_catchup ${CMAKE_CURRENT_LIST_DIR}/test_catchup.c)
target_link_libraries(test_catchup PRIVATE certrelay_catchup)
