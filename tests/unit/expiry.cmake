# Expiry and CRL alerts (broker/expiry.c, broker/x509.h): the schedule plan, the [alerts]
# configuration, the alert fields, and the certificate and CRL dates from the platform's crypto
# library. In the Windows build it runs under Wine, so CryptoAPI's reading is tested there.
crs_add_unit_test(test_expiry ${CMAKE_CURRENT_LIST_DIR}/test_expiry.c)
target_link_libraries(test_expiry PRIVATE certrelay_broker)
