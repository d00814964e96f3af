# Third-party libraries of the Windows build: the same crs:: target names as the native build in
# cmake/Deps.cmake, which includes this file when WIN32.
#
# scripts/build-windows-deps builds static x86_64-w64-mingw32 libraries from Debian's source
# packages into a cache outside the build tree (a cold build takes a few minutes, a cached run
# under a second). It runs at every configure, which costs little once cached and picks up a new
# Debian source version or a change to the script or the toolchain file.

set(_crs_wdeps_script "${CMAKE_CURRENT_LIST_DIR}/../scripts/build-windows-deps")
get_filename_component(_crs_wdeps_script "${_crs_wdeps_script}" ABSOLUTE)
if(NOT EXISTS "${_crs_wdeps_script}")
  message(FATAL_ERROR "WindowsDeps: ${_crs_wdeps_script} is missing")
endif()

# Progress goes to stderr and is echoed live, because a cold build is slow and should not look
# hung; it is also captured for the error message. stdout ends with the prefix.
message(STATUS "Windows dependencies: running scripts/build-windows-deps")
execute_process(
  COMMAND bash "${_crs_wdeps_script}"
  RESULT_VARIABLE _crs_wdeps_rc
  OUTPUT_VARIABLE _crs_wdeps_out
  ERROR_VARIABLE _crs_wdeps_err
  ECHO_ERROR_VARIABLE
  OUTPUT_STRIP_TRAILING_WHITESPACE)
if(NOT _crs_wdeps_rc EQUAL 0)
  # Indented lines are printed as they are; unindented ones would be re-wrapped as paragraphs.
  string(STRIP "${_crs_wdeps_out}\n${_crs_wdeps_err}" _crs_wdeps_log)
  string(REPLACE "\n" "\n  " _crs_wdeps_log "  ${_crs_wdeps_log}")
  message(FATAL_ERROR "scripts/build-windows-deps failed (${_crs_wdeps_rc}):\n${_crs_wdeps_log}")
endif()

# The prefix is the last line of stdout; earlier lines are messages worth passing on.
string(REGEX REPLACE "^.*\n" "" _crs_wdeps_prefix "${_crs_wdeps_out}")
string(REGEX MATCH "^.*\n" _crs_wdeps_msgs "${_crs_wdeps_out}")
if(_crs_wdeps_msgs)
  string(STRIP "${_crs_wdeps_msgs}" _crs_wdeps_msgs)
  message(STATUS "${_crs_wdeps_msgs}")
endif()
if(NOT IS_DIRECTORY "${_crs_wdeps_prefix}/lib" OR NOT EXISTS "${_crs_wdeps_prefix}/.complete")
  message(FATAL_ERROR
    "scripts/build-windows-deps did not report a usable prefix; its output was:\n${_crs_wdeps_out}")
endif()
message(STATUS "Windows dependencies: ${_crs_wdeps_prefix}")

set(CRS_WINDOWS_DEPS_PREFIX "${_crs_wdeps_prefix}" CACHE INTERNAL
  "Prefix of the static Windows libraries built by scripts/build-windows-deps")
set(CRS_WINDOWS_DEPS_PREFIX "${_crs_wdeps_prefix}")

# Editing the script or the toolchain file re-runs the configure, and with it the script, which
# then builds a new prefix because both are part of its cache key.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
  "${_crs_wdeps_script}" "${CMAKE_CURRENT_LIST_DIR}/toolchain-mingw64.cmake")

# crs_wdeps_target(<name> <archive> [system libraries...]): an interface target that links the
# archive from the prefix, then the Windows import libraries it needs. The include directory is the
# prefix's; imported targets' include directories are SYSTEM, so -Werror never trips on them.
function(crs_wdeps_target name archive)
  set(lib "${CRS_WINDOWS_DEPS_PREFIX}/lib/${archive}")
  if(NOT EXISTS "${lib}")
    message(FATAL_ERROR "WindowsDeps: ${lib} is missing; delete ${CRS_WINDOWS_DEPS_PREFIX} to rebuild")
  endif()
  add_library(crs::${name} INTERFACE IMPORTED GLOBAL)
  target_include_directories(crs::${name} INTERFACE "${CRS_WINDOWS_DEPS_PREFIX}/include")
  target_link_libraries(crs::${name} INTERFACE "${lib}" ${ARGN})
endfunction()

# libuv's static library needs no define: its headers only switch to dllimport for USING_UV_SHARED.
crs_wdeps_target(uv libuv.a
  ws2_32 iphlpapi userenv psapi dbghelp ole32 shell32 advapi32 user32)
crs_wdeps_target(protobuf_c libprotobuf-c.a)
crs_wdeps_target(sqlite3 libsqlite3.a)
crs_wdeps_target(jansson libjansson.a)
# curl's headers default to dllimport unless CURL_STATICLIB is defined. The libraries are the ones
# upstream's makefile links a Schannel build with (crypt32 for the certificate store, advapi32 for
# CryptoAPI); SSPI needs no import library because curl loads secur32.dll at run time.
crs_wdeps_target(curl libcurl.a ws2_32 crypt32 bcrypt advapi32)
target_compile_definitions(crs::curl INTERFACE CURL_STATICLIB)
