# The webhook fan-out benchmark (bench/webhook_bench.c): the real webhook driver on curl_uv
# against a plain libcurl multi loop, both posting to a local libuv 204 responder.
if(NOT WIN32 AND TARGET certrelay_broker)
  add_executable(webhook_bench ${CMAKE_CURRENT_LIST_DIR}/webhook_bench.c ${CMAKE_CURRENT_LIST_DIR}/bench_event.c)
  target_link_libraries(webhook_bench PRIVATE certrelay_broker crs::curl crs::uv)
endif()
