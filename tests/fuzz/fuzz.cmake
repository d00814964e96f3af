# Fuzz targets. Each builds as a corpus replayer run by CTest (label unit), and, with clang and
# -DCRS_FUZZ=ON, as a libFuzzer binary: build/<dir>/tests/fuzz_frame_libfuzzer tests/fuzz/corpus/frame
if(NOT WIN32)
  add_executable(fuzz_frame_replay ${CMAKE_CURRENT_LIST_DIR}/fuzz_frame.c
                                   ${CMAKE_CURRENT_LIST_DIR}/fuzz_main.c)
  target_link_libraries(fuzz_frame_replay PRIVATE certrelay_core)
  add_test(NAME fuzz_frame_corpus
           COMMAND fuzz_frame_replay ${CMAKE_CURRENT_LIST_DIR}/corpus/frame)
  set_tests_properties(fuzz_frame_corpus PROPERTIES LABELS unit)
  if(CRS_FUZZ)
    add_executable(fuzz_frame_libfuzzer ${CMAKE_CURRENT_LIST_DIR}/fuzz_frame.c)
    target_compile_options(fuzz_frame_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz_frame_libfuzzer PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_libraries(fuzz_frame_libfuzzer PRIVATE certrelay_core)
  endif()
endif()
