# Windows resources for CertRelay's binaries: a VERSIONINFO block (what Explorer's Details tab,
# the CA snap-in and installers show) and the Event Log message table of cmake/messages.mc.
#
#   crs_add_version_resource(TARGET DESCRIPTION FILENAME)
#       crs_add_version_resource(certrelayd "CertRelay broker service" certrelayd.exe)
#
# The resource script is configured from cmake/version.rc.in and compiled with windres into a
# COFF object added to the target's sources. Going through windres directly, rather than through
# CMake's RC language, keeps this usable from any directory without enable_language(RC) at the
# top level. Does nothing on other platforms.

if(WIN32)
  # Host tools (the toolchain file searches programs on the host only).
  find_program(CRS_WINDRES NAMES ${CMAKE_RC_COMPILER} ${CRS_MINGW_TRIPLET}-windres
                                 x86_64-w64-mingw32-windres REQUIRED)
  find_program(CRS_WINDMC NAMES ${CRS_MINGW_TRIPLET}-windmc x86_64-w64-mingw32-windmc REQUIRED)
endif()

function(crs_add_version_resource target description filename)
  if(NOT WIN32)
    return()
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "SHARED_LIBRARY" OR type STREQUAL "MODULE_LIBRARY")
    set(CRS_VI_FILETYPE VFT_DLL)
  else()
    set(CRS_VI_FILETYPE VFT_APP)
  endif()
  set(CRS_VI_MAJOR ${PROJECT_VERSION_MAJOR})
  set(CRS_VI_MINOR ${PROJECT_VERSION_MINOR})
  set(CRS_VI_PATCH ${PROJECT_VERSION_PATCH})
  set(CRS_VI_VERSION ${PROJECT_VERSION})
  set(CRS_VI_DESCRIPTION "${description}")
  set(CRS_VI_FILENAME "${filename}")
  set(CRS_VI_INTERNAL "${target}")
  # Keep in step with CRS_DLL_COPYRIGHT in stub/win/dll.h (what the CA snap-in shows).
  set(CRS_VI_COPYRIGHT "Copyright (c) 2025 The CertRelay authors")
  if(CMAKE_BUILD_TYPE STREQUAL "Debug")
    set(CRS_VI_FLAGS VS_FF_DEBUG)
  else()
    set(CRS_VI_FLAGS 0)
  endif()

  # This file's directory, wherever the function is called from (a plain variable set at
  # include time would not be visible in sibling directories).
  set(src ${CMAKE_CURRENT_FUNCTION_LIST_DIR})
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/${target}_res)
  set(rc ${dir}/${target}.rc)
  set(obj ${dir}/${target}_res.obj)
  configure_file(${src}/version.rc.in ${rc} @ONLY)
  # windmc writes messages.rc, messages.h and MSG00409.bin; messages.rc names the .bin by a
  # relative path, which windres resolves from its working directory.
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CRS_WINDMC} -b -e h -h ${dir} -r ${dir} ${src}/messages.mc
    COMMAND ${CRS_WINDRES} --input-format=rc --output-format=coff -I ${dir} -i ${rc} -o ${obj}
    WORKING_DIRECTORY ${dir}
    DEPENDS ${rc} ${src}/messages.mc
    COMMENT "Windows resources for ${filename}"
    VERBATIM)
  target_sources(${target} PRIVATE ${obj})
endfunction()
