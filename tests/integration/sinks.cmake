# Tests of the webhook and email sinks. This fragment is include()d from tests/CMakeLists.txt, so
# CMAKE_CURRENT_LIST_DIR is tests/integration.
#
# Unit: the portable formatting (bodies, signatures, HTTP rules, mail formatting, config keys).
crs_add_unit_test(test_webhook_format ${CMAKE_CURRENT_LIST_DIR}/../unit/test_webhook_format.c)
