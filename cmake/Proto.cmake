# protoc-c runs on the build host (for the Windows build too) and writes the C into the build tree;
# generated code is never committed.
find_program(CRS_PROTOC_C protoc-c REQUIRED)
set(CRS_PROTO_SRC ${PROJECT_SOURCE_DIR}/proto/certrelay.proto)
set(CRS_PROTO_OUT ${PROJECT_BINARY_DIR}/proto)
set(CRS_PROTO_C ${CRS_PROTO_OUT}/certrelay.pb-c.c)
set(CRS_PROTO_H ${CRS_PROTO_OUT}/certrelay.pb-c.h)
file(MAKE_DIRECTORY ${CRS_PROTO_OUT})
add_custom_command(
  OUTPUT ${CRS_PROTO_C} ${CRS_PROTO_H}
  COMMAND ${CRS_PROTOC_C} --proto_path=${PROJECT_SOURCE_DIR}/proto --c_out=${CRS_PROTO_OUT}
          ${CRS_PROTO_SRC}
  DEPENDS ${CRS_PROTO_SRC}
  COMMENT "protoc-c certrelay.proto"
  VERBATIM)
# The command above lives in the top-level directory; targets in subdirectories that compile the
# generated file depend on this target so that the rule is visible to them (CMP0118 makes the
# GENERATED property itself global).
add_custom_target(crs_proto DEPENDS ${CRS_PROTO_C} ${CRS_PROTO_H})
