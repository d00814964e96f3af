#!/usr/bin/python3
"""The Windows pieces under Wine: the exit module registered with regsvr32, the broker running as
a Windows service managed with sc.exe, and tests/win/harness.c driving the module as certsrv does.

Each run gets a throw-away WINEPREFIX below --work, headless (DISPLAY unset, WINEDEBUG=-all) and
with winedbg disabled so that a crash fails the test instead of printing a backtrace and exiting 0.
The wineserver is started persistent for the many short wine processes and killed at the end.

  1. wineboot; copy certrelay_exit.dll, certrelayd.exe and the harness to C:\\CertRelay
  2. regsvr32 /s certrelay_exit.dll: CLSID, ProgIDs and InprocServer32 are in the registry
  3. certrelay.ini with a file sink; sc create CertRelay ... start= auto; sc start: RUNNING
  4. harness (8 threads, every event kind): every event lands in the drop directory, the
     certificates and CRLs byte-identical to the fixtures
  5. certrelay status over the pipe (the admin channel) reports the online run;
     PARAMCHANGE reaches the service; a second broker on the same pipe refuses to start
  6. sc stop: STOPPED; harness again: every Notify S_OK within the timeout, every event spooled
  7. sc start: the spooled events are delivered, the spool is empty
  8. sc stop, regsvr32 /u: registration gone; sc delete: service gone

Service state is asserted through `sc query`'s STATE, never through exit codes (Wine reports
1077 after a clean stop). Ends with "N passed, N failed"; exit status 0 only when none failed.
"""

import argparse
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

CLSID_EXIT = "{32091528-FF3F-49CB-B654-3E20ADC7464B}"
CLSID_MANAGE = "{4AFD9B02-66FC-48E5-93EF-BA6A471C3E44}"
SERVICE = "CertRelay"
PIPE = r"\\.\pipe\CertRelayWineTest"
CA_NAME = "CertRelay-Wine-CA"
# Windows paths inside the prefix, and where they are on the host.
WIN_BIN = r"C:\CertRelay"
WIN_TEST = r"C:\CertRelayTest"
STATE_RUNNING, STATE_STOPPED = 4, 1


class Run:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.work = Path(args.work).resolve() / f"run-{os.getpid()}"
        self.prefix = self.work / "prefix"
        self.env = dict(os.environ)
        for var in ("DISPLAY", "WAYLAND_DISPLAY"):
            self.env.pop(var, None)
        self.env.update(
            WINEPREFIX=str(self.prefix),
            WINEDEBUG="-all",
            WINEDLLOVERRIDES="mscoree,mshtml=;winedbg.exe=d",
            WINEARCH="win64",
        )
        self.server_started = False

    # --- reporting ---------------------------------------------------------------------------

    def check(self, ok, what):
        if ok:
            self.passed += 1
            print(f"ok    {what}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL  {what}", flush=True)
        return ok

    def log(self, msg):
        print(f"..    {msg}", flush=True)

    # --- paths ---------------------------------------------------------------------------------

    def host(self, winpath):
        """Host path of a C:\\ path inside the prefix."""
        assert winpath[:3].upper() == "C:\\"
        return self.prefix / "drive_c" / Path(*winpath[3:].split("\\"))

    # --- running wine --------------------------------------------------------------------------

    def wine(self, *argv, timeout=120, check=False, winedebug=None):
        """Runs a Windows program; returns its exit status and output. The output goes through a
        file, not a pipe: processes wine starts on the side (services.exe, conhost.exe) inherit
        the handles and would hold a pipe open long after the program itself exited."""
        cmd = [self.args.wine, *argv]
        env = self.env if winedebug is None else dict(self.env, WINEDEBUG=winedebug)
        with open(self.work / "wine-output.txt", "w+b") as f:
            try:
                p = subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                   stderr=subprocess.STDOUT, timeout=timeout)
                rc = p.returncode
            except subprocess.TimeoutExpired:
                self.log(f"timed out after {timeout}s: {' '.join(argv)}")
                rc = 124
            f.seek(0)
            out = f.read().decode("utf-8", "replace").replace("\r\n", "\n")
        if check and rc != 0:
            self.log(f"`{' '.join(argv)}` exited {rc}:\n{out}")
        return rc, out

    def wineserver(self, *flags):
        subprocess.run([self.args.wineserver, *flags], env=self.env, timeout=180,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def service_state(self):
        rc, out = self.wine("sc", "query", SERVICE, timeout=60)
        m = re.search(r"STATE\s*:\s*(\d+)", out)
        return int(m.group(1)) if m else None

    def wait_state(self, want, seconds=90):
        deadline = time.monotonic() + seconds
        state = None
        while time.monotonic() < deadline:
            state = self.service_state()
            if state == want:
                return True
            time.sleep(0.5)
        self.log(f"service state {state}, wanted {want}")
        return False

    # --- setup and teardown --------------------------------------------------------------------

    def setup(self):
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        self.log(f"WINEPREFIX {self.prefix}")
        t0 = time.monotonic()
        rc, out = self.wine("wineboot", "-i", timeout=300)
        # wineboot returns before its services settle; wait for that wineserver to exit, then
        # keep a persistent one for the many short processes that follow.
        self.wineserver("-w")
        self.log(f"prefix ready in {time.monotonic() - t0:.1f}s")
        if not self.check(rc == 0 and (self.prefix / "drive_c").is_dir(), "wineboot -i"):
            return False
        subprocess.Popen([self.args.wineserver, "-p"], env=self.env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).wait(timeout=60)
        self.server_started = True

        bindir = self.host(WIN_BIN)
        bindir.mkdir(parents=True)
        for src in (self.args.dll, self.args.broker, self.args.harness):
            shutil.copy2(src, bindir)
        if self.args.cli:
            shutil.copy2(self.args.cli, bindir)
        shutil.copytree(self.args.fixtures, bindir / "fixtures")
        testdir = self.host(WIN_TEST)
        (testdir / "drop").mkdir(parents=True)
        (testdir / "spool").mkdir()

        ini = self.prefix / "drive_c" / "ProgramData" / "CertRelay" / "certrelay.ini"
        ini.parent.mkdir(parents=True, exist_ok=True)
        ini.write_text(
            "[broker]\n"
            f"listen = {PIPE}\n"
            f"state_dir = {WIN_TEST}\\state\n"
            f"spool_dir = {WIN_TEST}\\spool\n"
            f"log_file = {WIN_TEST}\\logs\\certrelayd.log\n"
            "log_level = info\n"
            "\n"
            "[sink.drop]\n"
            "type = file\n"
            f"directory = {WIN_TEST}\\drop\n"
            "name = {{event_id}}\n")
        return True

    def teardown(self):
        if self.server_started:
            self.wineserver("-k")
            self.server_started = False

    # --- the harness ---------------------------------------------------------------------------

    def harness(self, expect_name, first_request, skip_identity=False, winedebug=None):
        argv = [f"{WIN_BIN}\\{Path(self.args.harness).name}",
                "--fixtures", f"{WIN_BIN}\\fixtures", "--ca", CA_NAME, "--pipe", PIPE,
                "--spool", f"{WIN_TEST}\\spool", "--expect", f"{WIN_TEST}\\{expect_name}",
                "--threads", str(self.args.threads), "--rounds", str(self.args.rounds),
                "--first-request", str(first_request), "--timeout-ms", "2000"]
        if skip_identity:
            argv.append("--skip-identity")
        rc, out = self.wine(*argv, timeout=600, winedebug=winedebug)
        self.harness_output = out
        sys.stdout.write("".join(f"      {line}\n" for line in out.splitlines()
                                 if "ReportEventW" not in line))
        self.check(rc == 0, f"harness ({expect_name}) exited {rc}")
        return self.read_expect(self.host(f"{WIN_TEST}\\{expect_name}"))

    @staticmethod
    def read_expect(path):
        rows = []
        if path.exists():
            for line in path.read_text().splitlines():
                rid, event, fixture = line.split("\t")
                rows.append((int(rid), event, fixture))
        return rows

    # --- where events land -----------------------------------------------------------------------

    def drop_jsons(self):
        return sorted(self.host(f"{WIN_TEST}\\drop").glob("*.json"))

    def spool_files(self):
        return sorted(self.host(f"{WIN_TEST}\\spool").glob("*.crev"))

    def wait_drop(self, count, seconds=180):
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n = len(self.drop_jsons())
            if n >= count:
                return n
            time.sleep(0.5)
        return n

    def verify_drop(self, expected, label):
        """Every expected event landed exactly once, with byte-identical DER."""
        fixtures = Path(self.args.fixtures)
        crl, delta = (fixtures / "crl.der").read_bytes(), (fixtures / "delta.der").read_bytes()
        want_req = {(event, rid): fx for rid, event, fx in expected if rid != 0}
        want_ca = {}
        for rid, event, fx in expected:
            if rid == 0:
                want_ca[event] = want_ca.get(event, 0) + 1
        seen_req, seen_ca, bad = {}, {}, []
        for path in self.drop_jsons():
            doc = json.loads(path.read_text(encoding="utf-8"))
            event = doc.get("event")
            rid = (doc.get("request") or {}).get("id")
            base = path.with_suffix("")
            if rid:
                key = (event, int(rid))
                seen_req[key] = seen_req.get(key, 0) + 1
                fx = want_req.get(key)
                if fx is None:
                    continue
                if fx != "-":
                    der = (fixtures / fx).read_bytes()
                    cer = base.with_suffix(".cer")
                    if not cer.exists() or cer.read_bytes() != der:
                        bad.append(f"{cer.name}: not byte-identical to {fx}")
                    b64 = (doc.get("certificate") or {}).get("der_base64")
                    if b64 is None or base64.b64decode(b64) != der:
                        bad.append(f"{path.name}: der_base64 differs from {fx}")
            else:
                seen_ca[event] = seen_ca.get(event, 0) + 1
                if event == "crl_issued":
                    c = Path(str(base) + ".crl")
                    d = Path(str(base) + "-delta.crl")
                    if not c.exists() or c.read_bytes() != crl:
                        bad.append(f"{c.name}: not byte-identical to crl.der")
                    if not d.exists() or d.read_bytes() != delta:
                        bad.append(f"{d.name}: not byte-identical to delta.der")
        missing = [k for k in want_req if seen_req.get(k, 0) == 0]
        dupes = [k for k, n in seen_req.items() if n > 1]
        self.check(not missing, f"{label}: every request event delivered "
                                f"({len(want_req) - len(missing)}/{len(want_req)})"
                   + (f"; missing e.g. {missing[:3]}" if missing else ""))
        self.check(not dupes, f"{label}: no request event delivered twice"
                   + (f"; e.g. {dupes[:3]}" if dupes else ""))
        short = {e: (seen_ca.get(e, 0), n) for e, n in want_ca.items() if seen_ca.get(e, 0) < n}
        self.check(not short, f"{label}: every crl_issued/startup/shutdown event delivered"
                   + (f"; short: {short}" if short else ""))
        self.check(not bad, f"{label}: certificates and CRLs byte-identical"
                   + (f"; {len(bad)} differ, e.g. {bad[:3]}" if bad else ""))

    # --- registration --------------------------------------------------------------------------

    def reg_query(self, key, value=None):
        argv = ["reg", "query", key] + (["/v", value] if value else ["/ve"])
        return self.wine(*argv, timeout=60)

    def check_registered(self):
        dll = f"{WIN_BIN}\\{Path(self.args.dll).name}"
        rc, out = self.reg_query(f"HKCR\\CLSID\\{CLSID_EXIT}\\InprocServer32")
        self.check(rc == 0 and dll.lower() in out.lower(), "InprocServer32 names the DLL")
        rc, out = self.reg_query(f"HKCR\\CLSID\\{CLSID_EXIT}\\InprocServer32", "ThreadingModel")
        self.check(rc == 0 and "Both" in out, "ThreadingModel = Both")
        for progid, clsid in (("CertRelay.Exit", CLSID_EXIT), ("CertRelay.Exit.1", CLSID_EXIT),
                              ("CertRelay.ExitManage", CLSID_MANAGE)):
            rc, out = self.reg_query(f"HKCR\\{progid}\\CLSID")
            self.check(rc == 0 and clsid.lower() in out.lower(), f"ProgID {progid} -> {clsid}")
        rc, out = self.reg_query("HKCR\\CertRelay.Exit\\CurVer")
        self.check(rc == 0 and "CertRelay.Exit.1" in out, "CurVer = CertRelay.Exit.1")
        rc, out = self.reg_query(
            "HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\CertRelay",
            "EventMessageFile")
        self.check(rc == 0 and dll.lower() in out.lower(), "Event Log source CertRelay")

    def check_unregistered(self):
        for key in (f"HKCR\\CLSID\\{CLSID_EXIT}", f"HKCR\\CLSID\\{CLSID_MANAGE}",
                    "HKCR\\CertRelay.Exit", "HKCR\\CertRelay.Exit.1", "HKCR\\CertRelay.ExitManage",
                    "HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\CertRelay"):
            rc, out = self.reg_query(key)
            self.check(rc != 0, f"regsvr32 /u removed {key}")

    # --- the scenario --------------------------------------------------------------------------

    def main(self):
        if not self.setup():
            return
        dll = f"{WIN_BIN}\\{Path(self.args.dll).name}"
        exe = f"{WIN_BIN}\\{Path(self.args.broker).name}"

        rc, out = self.wine("regsvr32", "/s", dll, check=True)
        self.check(rc == 0, f"regsvr32 /s certrelay_exit.dll (exit {rc})")
        self.check_registered()

        rc, out = self.wine("sc", "create", SERVICE, "binPath=", exe, "start=", "auto",
                            check=True)
        self.check(rc == 0, "sc create CertRelay")
        self.wine("sc", "start", SERVICE)
        if not self.check(self.wait_state(STATE_RUNNING), "sc start: STATE RUNNING"):
            self.dump_log()
            return

        # Online: everything goes through the pipe to the file drop.
        exp1 = self.harness("expect-online.tsv", 1000)
        n = self.wait_drop(len(exp1))
        self.check(n == len(exp1), f"online: {n} of {len(exp1)} events in the drop directory")
        self.verify_drop(exp1, "online")
        self.check(not self.spool_files(), "online: nothing was spooled")

        # The admin channel over the named pipe: certrelay status reports what the run did.
        if self.args.cli:
            rc, out = self.wine(f"{WIN_BIN}\\{Path(self.args.cli).name}", "status", "--pipe", PIPE,
                                "--json")
            try:
                st = json.loads(out[out.index("{"):])
                sinks = {s["name"]: s for s in st["sinks"]}
                ok = st["running"] and sum(s["delivered_24h"] for s in sinks.values()) == n and \
                    st["database"]["events"] == n
            except (ValueError, KeyError):
                ok = False
            self.check(rc == 0 and ok, f"certrelay status over the pipe (exit {rc}): {n} delivered")

        # PARAMCHANGE reaches the service's handler (which reopens the log file).
        rc, out = self.wine(f"{WIN_BIN}\\{Path(self.args.harness).name}", "--paramchange", SERVICE)
        log = self.host(f"{WIN_TEST}\\logs\\certrelayd.log")
        deadline = time.monotonic() + 30
        seen = False
        while not seen and time.monotonic() < deadline:
            seen = "parameter change" in log.read_text(errors="replace")
            time.sleep(0 if seen else 0.2)
        self.check(rc == 0 and seen, "PARAMCHANGE reaches the service (log file reopened)")

        # A second broker on the same pipe must refuse to start.
        rc, out = self.wine(exe, "--console", timeout=120)
        self.check(rc != 0 and "already owns the pipe" in out,
                   f"a second broker refuses the pipe (exit {rc})")

        # Offline: the service is stopped, so every event goes to the spool, in time.
        self.wine("sc", "stop", SERVICE)
        if not self.check(self.wait_state(STATE_STOPPED), "sc stop: STATE STOPPED"):
            self.dump_log()
            return
        # Wine's advapi32 traces each ReportEventW with its id and number of strings: the exit
        # module reports the outage once, under the catalogue's id 111 (BROKER_UNREACHABLE,
        # warning: 0x8000006f) with its three inserts (include/certrelay/msgid.h).
        exp2 = self.harness("expect-offline.tsv", 100000, skip_identity=True,
                            winedebug="-all,fixme+advapi")
        reports = re.findall(r"ReportEventW \([^,]*,0x0002,0x0000,0x8000006f,[^,]*,0x0003,",
                             self.harness_output)
        self.check(len(reports) == 1,
                   f"offline: Event Log id 111 (broker unreachable) reported once ({len(reports)})")
        spooled = len(self.spool_files())
        self.check(spooled == len(exp2), f"offline: {spooled} of {len(exp2)} events spooled")
        self.check(len(self.drop_jsons()) == len(exp1), "offline: nothing delivered while stopped")

        # Restart: the spool drains into the queue and on to the drop directory.
        self.wine("sc", "start", SERVICE)
        self.check(self.wait_state(STATE_RUNNING), "sc start again: STATE RUNNING")
        n = self.wait_drop(len(exp1) + len(exp2))
        self.check(n == len(exp1) + len(exp2),
                   f"restart: {n} of {len(exp1) + len(exp2)} events in the drop directory")
        self.verify_drop(exp1 + exp2, "after restart")
        deadline = time.monotonic() + 60
        while self.spool_files() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.check(not self.spool_files(), "restart: the spool is empty")

        self.wine("sc", "stop", SERVICE)
        self.check(self.wait_state(STATE_STOPPED), "sc stop: STATE STOPPED")
        log = self.host(f"{WIN_TEST}\\logs\\certrelayd.log")
        self.check(log.exists() and log.stat().st_size > 0, "the service wrote its log file")

        rc, out = self.wine("regsvr32", "/u", "/s", dll, check=True)
        self.check(rc == 0, "regsvr32 /u /s certrelay_exit.dll")
        self.check_unregistered()
        rc, out = self.wine("sc", "delete", SERVICE, check=True)
        self.check(rc == 0, "sc delete CertRelay")
        self.check(self.service_state() is None, "the service is gone")

    def dump_log(self):
        log = self.host(f"{WIN_TEST}\\logs\\certrelayd.log")
        if log.exists():
            self.log("certrelayd.log:\n" + log.read_text(errors="replace")[-4000:])


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wine", required=True)
    ap.add_argument("--wineserver", required=True)
    ap.add_argument("--dll", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--cli", help="certrelay.exe, to check the admin channel over the pipe")
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="keep the prefix after a passing run")
    args = ap.parse_args()

    run = Run(args)

    def on_signal(signum, frame):
        run.teardown()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        run.main()
    except Exception:  # a crash of the driver is a failure, reported like the others
        run.check(False, "driver error:\n" + traceback.format_exc())
    finally:
        run.teardown()
    print(f"{run.passed} passed, {run.failed} failed", flush=True)
    if run.failed == 0 and not args.keep:
        shutil.rmtree(run.work, ignore_errors=True)
    elif run.failed:
        print(f"the prefix is kept for inspection: {run.prefix}", flush=True)
    sys.exit(0 if run.failed == 0 and run.passed > 0 else 1)


if __name__ == "__main__":
    main()
