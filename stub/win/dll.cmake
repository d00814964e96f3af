# certrelay_exit.dll: the in-process COM server certsrv loads as the exit module "CertRelay.Exit",
# a thin Win32 shell (this folder) around the portable stub core (certrelay_stubcore).
# Included by stub/CMakeLists.txt on WIN32.
#
# It imports only DLLs that ship with Windows: the C runtime (msvcrt), kernel32, ole32, oleaut32,
# advapi32 and user32. libgcc is linked statically, and the four COM entry points are exported
# PRIVATE through exports.def.
include(${PROJECT_SOURCE_DIR}/cmake/VersionInfo.cmake)

set(CRS_EXIT_DIR ${CMAKE_CURRENT_LIST_DIR})

# Win32 helpers the exit module shares with the broker service (broker/CMakeLists.txt links it
# on WIN32): the Event Log output and directories private to SYSTEM and Administrators.
add_library(certrelay_winsupport STATIC
  ${CRS_EXIT_DIR}/eventlog.c
  ${CRS_EXIT_DIR}/secdir.c)
target_include_directories(certrelay_winsupport PUBLIC ${CRS_EXIT_DIR})
target_link_libraries(certrelay_winsupport PUBLIC certrelay_core advapi32)

add_library(certrelay_exit MODULE
  ${CRS_EXIT_DIR}/dllmain.c
  ${CRS_EXIT_DIR}/exit.c
  ${CRS_EXIT_DIR}/manage.c
  ${CRS_EXIT_DIR}/reader.c
  ${CRS_EXIT_DIR}/wstr.c
  ${CRS_EXIT_DIR}/guids.c
  ${CRS_EXIT_DIR}/exports.def)
# certrelay_exit.dll, not libcertrelay_exit.dll (MinGW's default module prefix).
set_target_properties(certrelay_exit PROPERTIES PREFIX "" OUTPUT_NAME certrelay_exit)
target_link_libraries(certrelay_exit PRIVATE
  certrelay_stubcore certrelay_winsupport certrelay_core ole32 oleaut32 advapi32 user32 uuid)
target_link_options(certrelay_exit PRIVATE -static-libgcc)
crs_add_version_resource(certrelay_exit
  "CertRelay exit module for Active Directory Certificate Services" certrelay_exit.dll)
