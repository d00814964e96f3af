# Third-party libraries as imported targets with one set of names for both builds:
#   crs::uv crs::protobuf_c crs::sqlite3 crs::jansson crs::curl crs::crypto
# Native builds take Debian's -dev packages through pkg-config. The Windows build takes static
# libraries that cmake/WindowsDeps.cmake builds from Debian's source packages with mingw-w64.
if(WIN32)
  include(${CMAKE_CURRENT_LIST_DIR}/WindowsDeps.cmake)
  # crs::crypto (HMAC-SHA256 for webhook signatures) is CNG on Windows: bcrypt.dll, no library
  # to build.
  add_library(crs::crypto INTERFACE IMPORTED GLOBAL)
  target_link_libraries(crs::crypto INTERFACE bcrypt)
  return()
endif()

find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
pkg_check_modules(CRS_PC_UV REQUIRED IMPORTED_TARGET GLOBAL libuv)
pkg_check_modules(CRS_PC_PROTOBUF_C REQUIRED IMPORTED_TARGET GLOBAL libprotobuf-c)
pkg_check_modules(CRS_PC_SQLITE3 REQUIRED IMPORTED_TARGET GLOBAL sqlite3)
pkg_check_modules(CRS_PC_JANSSON REQUIRED IMPORTED_TARGET GLOBAL jansson)
pkg_check_modules(CRS_PC_CURL REQUIRED IMPORTED_TARGET GLOBAL libcurl)
pkg_check_modules(CRS_PC_CRYPTO REQUIRED IMPORTED_TARGET GLOBAL libcrypto)

foreach(dep uv protobuf_c sqlite3 jansson curl crypto)
  string(TOUPPER ${dep} up)
  add_library(crs::${dep} INTERFACE IMPORTED GLOBAL)
  target_link_libraries(crs::${dep} INTERFACE PkgConfig::CRS_PC_${up})
endforeach()
target_link_libraries(crs::uv INTERFACE Threads::Threads)
