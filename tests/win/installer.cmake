# The installer under Wine and the signing script (ctest label "wine", Windows build only):
#
#   ctest --preset windows -R 'wine_msi|sign_'
#
# wine_msi_install_upgrade_uninstall: installer_test.py installs the MSI into a fresh prefix
# with msiexec /qn, drives the installed module with the harness, upgrades to a newer package
# built at test time, uninstalls (with and without PURGE=1), and runs certrelay install/uninstall
# twice each. sign_binaries: scripts/sign with a throw-away certificate, osslsigncode verify.
if(NOT WIN32 OR NOT CRS_MSI)
  return()
endif()

add_executable(crs_wine_svcquery ${CMAKE_CURRENT_LIST_DIR}/svcquery.c)
set_target_properties(crs_wine_svcquery PROPERTIES OUTPUT_NAME svcquery)
target_link_libraries(crs_wine_svcquery PRIVATE advapi32)

find_program(CRS_OSSLSIGNCODE osslsigncode NO_CMAKE_FIND_ROOT_PATH)
find_program(CRS_OPENSSL_HOST openssl NO_CMAKE_FIND_ROOT_PATH)
if(CRS_OSSLSIGNCODE AND CRS_OPENSSL_HOST)
  add_test(NAME sign_binaries
    COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/sign_test.sh ${PROJECT_SOURCE_DIR}/scripts/sign
            ${CMAKE_CURRENT_BINARY_DIR}/sign
            $<TARGET_FILE:certrelay_exit> $<TARGET_FILE:certrelayd> $<TARGET_FILE:certrelay>
            ${CRS_MSI})
  set_tests_properties(sign_binaries PROPERTIES LABELS wine TIMEOUT 300)
else()
  message(WARNING "osslsigncode or openssl not found: sign_binaries is not registered")
endif()

if(NOT CRS_WINE64 OR NOT CRS_WINESERVER OR NOT CRS_PYTHON3)
  return()
endif()
add_test(NAME wine_msi_install_upgrade_uninstall
  COMMAND ${CRS_PYTHON3} ${CMAKE_CURRENT_LIST_DIR}/installer_test.py
          --wine ${CRS_WINE64} --wineserver ${CRS_WINESERVER}
          --dll $<TARGET_FILE:certrelay_exit>
          --broker $<TARGET_FILE:certrelayd>
          --tool $<TARGET_FILE:certrelay>
          --harness $<TARGET_FILE:crs_wine_harness>
          --svcquery $<TARGET_FILE:crs_wine_svcquery>
          --fixtures ${CRS_FIXTURE_DIR}
          --msi ${CRS_MSI}
          --version ${PROJECT_VERSION}
          --build-msi "${CMAKE_COMMAND}|-DWIXL=${CRS_WIXL}|-DMSIBUILD=${CRS_MSIBUILD}|-DWXS=${PROJECT_SOURCE_DIR}/installer/certrelay.wxs|-DEXAMPLE_INI=${PROJECT_SOURCE_DIR}/installer/certrelay.example.ini|-DEXIT_DLL=$<TARGET_FILE:certrelay_exit>|-DBROKER_EXE=$<TARGET_FILE:certrelayd>|-DTOOL_EXE=$<TARGET_FILE:certrelay>|-P|${CRS_MSI_SCRIPT}"
          --work ${CMAKE_CURRENT_BINARY_DIR}/wine-msi)
set_tests_properties(wine_msi_install_upgrade_uninstall PROPERTIES LABELS wine TIMEOUT 900)
