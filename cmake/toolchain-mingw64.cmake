# CMake toolchain for the Windows x64 cross-build with Debian's mingw-w64 (win32 thread model).
#
#   cmake --preset windows      (the preset names this file)
#
# scripts/build-windows-deps also builds the CMake-based third-party libraries with this file, so
# the application and its static dependencies are compiled the same way. That script hashes this
# file into its cache key: editing it rebuilds the dependencies.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(CRS_MINGW_TRIPLET x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${CRS_MINGW_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${CRS_MINGW_TRIPLET}-g++)
set(CMAKE_RC_COMPILER ${CRS_MINGW_TRIPLET}-windres)

# Libraries, headers and CMake packages come from the mingw sysroot only, so nothing from the Linux
# host can leak into a Windows binary. Programs (code generators such as protoc-c) are host tools
# and are searched for on the host.
set(CMAKE_FIND_ROOT_PATH /usr/${CRS_MINGW_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# The binaries must import only DLLs that ship with Windows. -static-libgcc keeps libgcc's DLL
# out, and -static makes the linker prefer archives for everything else (libwinpthread, libssp,
# libstdc++), while Windows' own import libraries keep resolving to the system DLLs.
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static-libgcc -static")
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-static-libgcc -static")
set(CMAKE_MODULE_LINKER_FLAGS_INIT "-static-libgcc -static")

# Let add_test() run the Windows test programs under Wine. Debian installs wine64 outside PATH, and
# the search must bypass the find root above because Wine is a host program. The build still works
# without Wine; only the tests then cannot run.
find_program(CRS_WINE64 NAMES wine64 PATHS /usr/lib/wine NO_CMAKE_FIND_ROOT_PATH)
if(CRS_WINE64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${CRS_WINE64})
endif()
