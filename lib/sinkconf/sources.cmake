# Network sink configuration parsers (webhook, email) and the portable pieces of those sinks
# (body formats, signatures, mail formatting), appended to certrelay_core's sources. Paths are
# relative to lib/, where add_library() runs.
list(APPEND CRS_CORE_SOURCES
    sinkconf/net.c
    sinkconf/webhook.c
    sinkconf/email.c
    webhook_format.c
    mail_format.c)
# HMAC-SHA256 comes from the platform's crypto library (never hand-rolled): libcrypto on Unix,
# CNG (bcrypt) on Windows; crs::crypto names either (cmake/Deps.cmake).
if(WIN32)
  list(APPEND CRS_CORE_SOURCES win/hmac.c)
else()
  list(APPEND CRS_CORE_SOURCES unix/hmac.c)
endif()
# This file is included before add_library(certrelay_core), so the link is deferred to the end of
# the directory, when the target exists.
cmake_language(DEFER CALL target_link_libraries certrelay_core PUBLIC crs::crypto)
