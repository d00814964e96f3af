# The Windows pieces under Wine (ctest label "wine"), in the Windows cross-build only:
#
#   ctest --preset windows -L wine
#
# harness.exe is a certsrv stand-in (see harness.c); run_wine_tests.py builds a throw-away Wine
# prefix, registers certrelay_exit.dll, runs certrelayd.exe as a service with sc.exe and drives the
# module with the harness. Needs wine64 (scripts/install-deps installs it; the toolchain file
# finds it as CRS_WINE64).
if(NOT WIN32)
  return()
endif()

add_executable(crs_wine_harness
  ${CMAKE_CURRENT_LIST_DIR}/harness.c
  ${PROJECT_SOURCE_DIR}/stub/win/guids.c)
set_target_properties(crs_wine_harness PROPERTIES OUTPUT_NAME harness)
target_include_directories(crs_wine_harness PRIVATE ${PROJECT_SOURCE_DIR}/stub/win)
target_link_libraries(crs_wine_harness PRIVATE ole32 oleaut32 advapi32 crypt32 uuid)

# catchup_view.exe: the CA database for `certrelay catchup` (a fake CCertView registered with
# CoRegisterClassObject) around the real command, tools/catchup.c, run in-process.
add_executable(crs_wine_catchup_view
  ${CMAKE_CURRENT_LIST_DIR}/catchup_view.c
  ${CMAKE_CURRENT_LIST_DIR}/fake_certview.c
  ${PROJECT_SOURCE_DIR}/tools/catchup.c
  ${PROJECT_SOURCE_DIR}/tools/admin/client.c)
set_target_properties(crs_wine_catchup_view PROPERTIES OUTPUT_NAME catchup_view)
target_include_directories(crs_wine_catchup_view PRIVATE
  ${PROJECT_SOURCE_DIR}/catchup/win ${PROJECT_SOURCE_DIR}/tools ${PROJECT_SOURCE_DIR}/tools/admin
  ${PROJECT_SOURCE_DIR}/stub)
target_link_libraries(crs_wine_catchup_view PRIVATE certrelay_stubcore certrelay_broker
  certrelay_catchup certrelay_core crs::jansson crs::uv ole32 oleaut32 uuid)

# fake_certview.dll: the same fake as an in-process COM server, for the broker service's
# scheduled catch-up (registered as CLSID_CCertView's InprocServer32 in the test prefix).
add_library(crs_wine_fake_certview MODULE
  ${CMAKE_CURRENT_LIST_DIR}/fake_certview_dll.c
  ${CMAKE_CURRENT_LIST_DIR}/fake_certview.c
  ${PROJECT_SOURCE_DIR}/catchup/win/certview_guids.c
  ${CMAKE_CURRENT_LIST_DIR}/fake_certview_dll.def)
set_target_properties(crs_wine_fake_certview PROPERTIES PREFIX "" OUTPUT_NAME fake_certview)
target_include_directories(crs_wine_fake_certview PRIVATE ${PROJECT_SOURCE_DIR}/catchup/win)
target_link_libraries(crs_wine_fake_certview PRIVATE ole32 oleaut32 advapi32 uuid)
target_link_options(crs_wine_fake_certview PRIVATE -static-libgcc)

# The ICertView2 reader against the fake in-process (a unit test run under Wine).
crs_add_unit_test(test_win_catchup_view
  ${CMAKE_CURRENT_LIST_DIR}/test_win_catchup_view.c
  ${CMAKE_CURRENT_LIST_DIR}/fake_certview.c)
target_include_directories(test_win_catchup_view PRIVATE ${PROJECT_SOURCE_DIR}/catchup/win)
target_link_libraries(test_win_catchup_view PRIVATE certrelay_catchup ole32 oleaut32 uuid)

# fake_broker.exe: a pipe server that is not the broker (an impostor that acknowledges everything,
# or a broker that hangs), optionally run as a service of its own.
add_executable(crs_wine_fake_broker ${CMAKE_CURRENT_LIST_DIR}/fake_broker.c)
set_target_properties(crs_wine_fake_broker PROPERTIES OUTPUT_NAME fake_broker)
target_link_libraries(crs_wine_fake_broker PRIVATE certrelay_core advapi32)

# certrelay_exit.dll imports only system DLLs certsrv already has and links no libuv or jansson
# (objdump of the DLL; needs no Wine, but belongs with the Windows checks).
if(CRS_PYTHON3 AND CMAKE_OBJDUMP)
  add_test(NAME win_exit_dll_imports
    COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/check_dll_imports.py
            --objdump ${CMAKE_OBJDUMP} --dll $<TARGET_FILE:certrelay_exit>)
  set_tests_properties(win_exit_dll_imports PROPERTIES LABELS wine TIMEOUT 120)
endif()

find_program(CRS_WINE64 NAMES wine64 PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
find_program(CRS_WINESERVER NAMES wineserver PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(NOT CRS_FIXTURE_DIR)
  set(CRS_FIXTURE_DIR ${PROJECT_BINARY_DIR}/tools/fixtures)
endif()
if(NOT CRS_WINE64 OR NOT CRS_WINESERVER OR NOT CRS_PYTHON3)
  message(WARNING "wine64, wineserver or python3 not found: the Wine tests are not registered")
  return()
endif()

add_test(NAME wine_exit_module_service
  COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/run_wine_tests.py
          --wine ${CRS_WINE64} --wineserver ${CRS_WINESERVER}
          --dll $<TARGET_FILE:certrelay_exit>
          --broker $<TARGET_FILE:certrelayd>
          --harness $<TARGET_FILE:crs_wine_harness>
          --fake-broker $<TARGET_FILE:crs_wine_fake_broker>
          --tool $<TARGET_FILE:certrelay>
          --cli $<TARGET_FILE:certrelay>
          --fixtures ${CRS_FIXTURE_DIR}
          --work ${CMAKE_CURRENT_BINARY_DIR}/wine)
set_tests_properties(wine_exit_module_service PROPERTIES LABELS wine TIMEOUT 900)

# Catch-up from the CA database: the module sees half of a table of rows (harness --rows), then
# `certrelay catchup` (in catchup_view.exe, over a fake CCertView) delivers only the other half.
add_test(NAME wine_catchup_view
  COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/catchup_test.py
          --wine ${CRS_WINE64} --wineserver ${CRS_WINESERVER}
          --dll $<TARGET_FILE:certrelay_exit>
          --broker $<TARGET_FILE:certrelayd>
          --harness $<TARGET_FILE:crs_wine_harness>
          --catchup-view $<TARGET_FILE:crs_wine_catchup_view>
          --fake-certview $<TARGET_FILE:crs_wine_fake_certview>
          --tool $<TARGET_FILE:certrelay>
          --fixtures ${CRS_FIXTURE_DIR}
          --work ${CMAKE_CURRENT_BINARY_DIR}/wine-catchup)
set_tests_properties(wine_catchup_view PROPERTIES LABELS wine TIMEOUT 900)
