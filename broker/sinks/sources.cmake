# The network sinks and the libcurl/libuv glue they share, appended to the broker library's
# sources (paths relative to broker/, where add_library() runs). certrelay_broker already links
# crs::curl.
list(APPEND CRS_BROKER_SOURCES
    curl_uv.c
    sinks/webhook.c
    sinks/email.c)
