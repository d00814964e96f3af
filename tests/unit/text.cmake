# Unit tests of the text pieces: the JSON event document, base64 and RFC 3339 time, templates, and
# the sanitizers for untrusted values. This fragment is include()d from tests/CMakeLists.txt, so
# CMAKE_CURRENT_LIST_DIR is tests/unit.
# The JSON document and the template engine are the broker's (broker/render/).
crs_add_unit_test(test_json ${CMAKE_CURRENT_LIST_DIR}/test_json.c)
target_link_libraries(test_json PRIVATE certrelay_broker)
crs_add_unit_test(test_template ${CMAKE_CURRENT_LIST_DIR}/test_template.c)
target_link_libraries(test_template PRIVATE certrelay_broker)
crs_add_unit_test(test_sanitize ${CMAKE_CURRENT_LIST_DIR}/test_sanitize.c)
