# Builds one MSI from certrelay.wxs (cmake -P). Called by the msi target and by the Wine test,
# which builds a second package with a higher VERSION to test upgrades.
#
#   cmake -DWIXL=... -DMSIBUILD=... -DWXS=... -DVERSION=x.y.z -DOUTPUT=file.msi
#         -DEXIT_DLL=... -DBROKER_EXE=... -DTOOL_EXE=... -DEXAMPLE_INI=... -P build-msi.cmake
foreach(var WIXL MSIBUILD WXS VERSION OUTPUT EXIT_DLL BROKER_EXE TOOL_EXE EXAMPLE_INI)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "build-msi.cmake: -D${var}=... is required")
  endif()
endforeach()

# wixl resolves File/@Source relative to its working directory and refuses absolute paths:
# stage the inputs in one folder and name them from there.
set(tmp ${OUTPUT}.tmp)
set(stage ${OUTPUT}.stage)
file(REMOVE ${tmp})
file(REMOVE_RECURSE ${stage})
file(MAKE_DIRECTORY ${stage})
file(COPY ${EXIT_DLL} ${BROKER_EXE} ${TOOL_EXE} ${EXAMPLE_INI} ${WXS} DESTINATION ${stage})
get_filename_component(dll ${EXIT_DLL} NAME)
get_filename_component(broker ${BROKER_EXE} NAME)
get_filename_component(tool ${TOOL_EXE} NAME)
get_filename_component(ini ${EXAMPLE_INI} NAME)
get_filename_component(wxs ${WXS} NAME)
execute_process(
  COMMAND ${WIXL} -a x64 -D Version=${VERSION} -D ExitDll=${dll} -D BrokerExe=${broker}
          -D ToolExe=${tool} -D ExampleIni=${ini} -o ${tmp} ${wxs}
  WORKING_DIRECTORY ${stage}
  RESULT_VARIABLE rc)
file(REMOVE_RECURSE ${stage})
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "wixl failed (${rc})")
endif()
# See installer/CMakeLists.txt for why these two rows change.
execute_process(
  COMMAND ${MSIBUILD} ${tmp}
          -q "UPDATE InstallExecuteSequence SET Sequence = 1450 WHERE Action = 'RemoveExistingProducts'"
          -q "UPDATE Property SET Value = 'ADDTOCA;CONFIG;PURGE;SERVICEACCOUNT;WIX_DOWNGRADE_DETECTED;WIX_UPGRADE_DETECTED' WHERE Property = 'SecureCustomProperties'"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "msibuild failed (${rc})")
endif()
file(RENAME ${tmp} ${OUTPUT})
