# certrelay_exit.dll: the in-process COM server certsrv loads as the exit module "CertRelay.Exit",
# a thin Win32 shell (this folder) around the portable stub core (certrelay_stubcore).
# Included by stub/CMakeLists.txt on WIN32.
#
# It links only the stub core, lib's core (with its Windows half: Event Log, private directories,
# UTF-16), protobuf-c and Win32: no libuv, no jansson. So it imports only DLLs that ship with
# Windows and that certsrv has loaded already: the C runtime (msvcrt), kernel32, advapi32, bcrypt,
# ole32, oleaut32 and user32 (tests/win/check_dll_imports.py asserts the list). libgcc is linked
# statically, and the four COM entry points are exported PRIVATE through exports.def.
include(${PROJECT_SOURCE_DIR}/cmake/VersionInfo.cmake)

set(CRS_EXIT_DIR ${CMAKE_CURRENT_LIST_DIR})

add_library(certrelay_exit MODULE
  ${CRS_EXIT_DIR}/dllmain.c
  ${CRS_EXIT_DIR}/exit.c
  ${CRS_EXIT_DIR}/manage.c
  ${CRS_EXIT_DIR}/settings.c
  ${CRS_EXIT_DIR}/reader.c
  ${CRS_EXIT_DIR}/guids.c
  ${CRS_EXIT_DIR}/exports.def)
# certrelay_exit.dll, not libcertrelay_exit.dll (MinGW's default module prefix).
set_target_properties(certrelay_exit PROPERTIES PREFIX "" OUTPUT_NAME certrelay_exit)
target_link_libraries(certrelay_exit PRIVATE
  certrelay_stubcore certrelay_core ole32 oleaut32 advapi32 user32 uuid)
target_link_options(certrelay_exit PRIVATE -static-libgcc)
crs_add_version_resource(certrelay_exit
  "CertRelay exit module for Active Directory Certificate Services" certrelay_exit.dll)
