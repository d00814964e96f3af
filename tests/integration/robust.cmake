# Robustness under faults and hostile input (issue 13): real brokers, sockets, files, tmpfs disks
# and HTTP receivers, driven as a user or an attacker would. Label: integration.
if(NOT WIN32 AND CRS_PYTHON3)
  foreach(t shutdown)
    crs_broker_test(robust_${t})
  endforeach()
endif()
