# Robustness under faults and hostile input (issue 13): real brokers, sockets, files, tmpfs disks
# and HTTP receivers, driven as a user or an attacker would. Label: integration.
if(NOT WIN32 AND CRS_PYTHON3)
  foreach(t shutdown storm files memory ids wal drop)
    crs_broker_test(robust_${t})
  endforeach()
  # Mount small tmpfs file systems (full disks); exit 77 (skipped) where that is not allowed.
  set_tests_properties(broker_robust_storm PROPERTIES SKIP_RETURN_CODE 77)
endif()
