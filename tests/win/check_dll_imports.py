#!/usr/bin/python3
"""certrelay_exit.dll runs inside certsrv, so it must bring nothing into that process beyond
Windows system DLLs certsrv has loaded already, and no third-party runtime of the broker's.

Reads `objdump -p` (the import directory) and `objdump -t` (the COFF symbol table) of the DLL and
asserts:
  1. the imported DLLs are exactly the allowlist below (case-insensitive): no IPHLPAPI, USERENV
     or WS2_32, which libuv would drag in;
  2. the symbol table is present (the DLL exports DllGetClassObject) and holds no libuv (uv_*)
     and no jansson (json_*) symbol.
Ends with "N passed, N failed"; exit status 0 only when none failed.
"""

import argparse
import re
import subprocess
import sys

ALLOWED_IMPORTS = {
    "advapi32.dll",  # registry, Event Log, security descriptors
    "bcrypt.dll",  # BCryptGenRandom (UUIDs, temporary file names)
    "kernel32.dll",
    "msvcrt.dll",  # the C runtime mingw-w64 targets
    "ole32.dll",  # COM
    "oleaut32.dll",  # BSTR, VARIANT
    "user32.dll",  # the Configure message box
}

FORBIDDEN_SYMBOL = re.compile(r"^_?(uv_|json_)")


def objdump(tool, flag, dll):
    return subprocess.run([tool, flag, dll], check=True, capture_output=True, text=True).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--objdump", required=True)
    ap.add_argument("--dll", required=True)
    args = ap.parse_args()
    passed = failed = 0

    def check(ok, what):
        nonlocal passed, failed
        if ok:
            passed += 1
            print("ok    " + what)
        else:
            failed += 1
            print("FAIL  " + what)

    headers = objdump(args.objdump, "-p", args.dll)
    imports = {m.group(1).lower() for m in re.finditer(r"DLL Name:\s*(\S+)", headers)}
    check(imports == ALLOWED_IMPORTS,
          "imports are exactly the system allowlist: got %s; unexpected %s; missing %s"
          % (sorted(imports), sorted(imports - ALLOWED_IMPORTS), sorted(ALLOWED_IMPORTS - imports)))

    symbols = []
    for line in objdump(args.objdump, "-t", args.dll).splitlines():
        # "[  12](sec  1)(fl 0x00)(ty  20)(scl   2) (nx 0) 0x0000000000001234 name"
        m = re.match(r"^\[\s*\d+\]\(sec\s+-?\d+\).*\s0x[0-9a-fA-F]+\s+(\S+)$", line)
        if m:
            symbols.append(m.group(1))
    check(any(s.lstrip("_") == "DllGetClassObject" for s in symbols),
          "the symbol table is present (%d symbols, DllGetClassObject among them)" % len(symbols))
    bad = sorted({s for s in symbols if FORBIDDEN_SYMBOL.match(s)})
    check(not bad, "no libuv or jansson symbols linked in%s" % (": " + ", ".join(bad[:20]) if bad else ""))

    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
