# Broker integration tests: real certrelayd processes driven over their Unix socket by Python
# clients (tests/integration/crstest.py) and by `certrelay simulate`. Label: integration.
set(CRS_BROKER_TEST_DIR ${CMAKE_CURRENT_LIST_DIR})

function(crs_broker_test name)
  add_test(NAME broker_${name}
           COMMAND ${CRS_PYTHON3} ${CRS_BROKER_TEST_DIR}/${name}_test.py
                   --certrelayd $<TARGET_FILE:certrelayd> ${ARGN})
  set_tests_properties(broker_${name} PROPERTIES LABELS integration TIMEOUT 1200)
endfunction()

# The broker's pure decisions (backoff curve, routing), linked with the broker library.
crs_add_unit_test(test_broker_dispatch ${CMAKE_CURRENT_LIST_DIR}/../unit/test_broker_dispatch.c)
target_link_libraries(test_broker_dispatch PRIVATE certrelay_broker)

if(NOT WIN32 AND CRS_PYTHON3)
  crs_broker_test(framing)
  crs_broker_test(shutdown)
  # SIGHUP reopens the log file (the Windows service's PARAMCHANGE does the same).
  crs_broker_test(reload)
  crs_broker_test(retry)
  # A version-1 queue database is migrated at start (the attempts history table).
  crs_broker_test(migrate)
  # log_max_size / log_keep: the log file rotates by size.
  crs_broker_test(log_rotation)
  # Mounts small tmpfs file systems to fill disks for real; exits 77 (skipped) where it cannot.
  crs_broker_test(diskfull)
  set_tests_properties(broker_diskfull PROPERTIES SKIP_RETURN_CODE 77)
  # The tests below drive the broker with the simulator (tools/, target certrelay).
  if(TARGET certrelay)
    # admin: the certrelay CLI's admin commands against a real broker and webhook receiver;
    # reload_live: 20,000 events while sinks are added, changed and removed by reloads;
    # retention: 200,000 events with retention = 1s leave the database bounded;
    # metrics: the Prometheus endpoint read with python3-prometheus-client's parser.
    # ingest: answers of a group written together, a connection closing mid-group, a failing
    # commit nacking its whole group, the simulator's --prebuilt benchmark load.
    foreach(t e2e spool crash hostile admin reload_live retention metrics ingest)
      crs_broker_test(${t} --certrelay $<TARGET_FILE:certrelay>)
    endforeach()
    # catchup: certrelay catchup --from-csv (dry run, dedup against live events, malformed
    # rows), the v2 -> v3 migration and the scheduled catch-up, with the fixtures' real DER.
    crs_broker_test(catchup --certrelay $<TARGET_FILE:certrelay> --fixtures ${CRS_FIXTURE_DIR})
  endif()
endif()
# A backlog committed ahead (bench/drain_fill, the broker's own queue code) drains once each after a
# restart, and new events are not starved behind it.
if(NOT WIN32 AND CRS_PYTHON3 AND TARGET certrelay_broker)
  add_test(NAME broker_drain
           COMMAND ${CRS_PYTHON3} ${CRS_BROKER_TEST_DIR}/drain_test.py
                   --certrelayd $<TARGET_FILE:certrelayd> --drain-fill $<TARGET_FILE:drain_fill>)
  set_tests_properties(broker_drain PROPERTIES LABELS integration TIMEOUT 1200)
endif()
