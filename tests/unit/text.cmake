# Unit tests of the text pieces: the JSON event document, base64 and RFC 3339 time, templates, and
# the sanitizers for untrusted values. This fragment is include()d from tests/CMakeLists.txt, so
# CMAKE_CURRENT_LIST_DIR is tests/unit.
crs_add_unit_test(test_json ${CMAKE_CURRENT_LIST_DIR}/test_json.c)
crs_add_unit_test(test_template ${CMAKE_CURRENT_LIST_DIR}/test_template.c)
crs_add_unit_test(test_sanitize ${CMAKE_CURRENT_LIST_DIR}/test_sanitize.c)
