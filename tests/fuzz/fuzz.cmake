# Fuzz targets. Each builds as a corpus replayer run by CTest (label unit), and, with clang and
# -DCRS_FUZZ=ON, as a libFuzzer binary: build/<dir>/tests/fuzz_frame_libfuzzer tests/fuzz/corpus/frame
#   frame:  the frame reader, envelope decoding and event validation (lib/)
#   config: the INI reader and the configuration loader (broker/config/, sink settings)
#   render: the event renderers: JSON, templates, every webhook format, mail helpers
#   crl:    the CRL and certificate date readers (broker/x509.h, libcrypto)
if(NOT WIN32)
  foreach(target frame config render crl)
    if(target STREQUAL "frame")
      set(lib certrelay_core)
    else()
      set(lib certrelay_broker)
    endif()
    add_executable(fuzz_${target}_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_${target}.c
                                         ${CMAKE_CURRENT_LIST_DIR}/fuzz_main.c)
    target_link_libraries(fuzz_${target}_replay PRIVATE ${lib})
    add_test(NAME fuzz_${target}_corpus
             COMMAND fuzz_${target}_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/${target})
    set_tests_properties(fuzz_${target}_corpus PROPERTIES LABELS unit)
    if(CRS_FUZZ)
      add_executable(fuzz_${target}_libfuzzer ${CMAKE_CURRENT_LIST_DIR}/fuzz_${target}.c)
      target_compile_options(fuzz_${target}_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_options(fuzz_${target}_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
      target_link_libraries(fuzz_${target}_libfuzzer PRIVATE ${lib})
    endif()
  endforeach()
endif()
