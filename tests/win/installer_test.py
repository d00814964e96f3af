#!/usr/bin/python3
"""The MSI and the setup commands under Wine, in a fresh prefix (helpers from run_wine_tests.py).

  1. a registry key stands in for the CA's configuration, listing Microsoft's default exit module
  2. msiexec /i with a CONFIG the broker rejects: fails and rolls back. Then
     msiexec /i certrelay-x.y.z-x64.msi /qn ADDTOCA=1 CONFIG=<test config>: files in Program
     Files\\CertRelay, service RUNNING, ProgID and COM keys, Event Log sources, the CA's Active
     list holds both modules in order, the configuration is the given one; the service settings
     read back with QueryServiceConfig2 (svcquery.exe) as far as Wine implements it, and
     PRESHUTDOWN among the controls the running service accepts; the
     harness's events go through the installed module and broker into the drop directory
  3. upgrade to a package with a higher version built now: events sent while the service is
     stopped are spooled, events sent while msiexec runs are acked or spooled; after it every
     event is delivered exactly once, certrelay.ini and the queue are the same files, the module
     is still active
  4. msiexec /x: service, COM keys, Event Log sources and the module's entry in Active gone,
     Microsoft's module still there, %ProgramData%\\CertRelay kept; reinstall with
     SERVICEACCOUNT=virtual and upgrade without it (the account stays); msiexec /x PURGE=1: removed
  5. a script deployment: certrelay install twice (the second changes nothing and says so),
     certrelay uninstall --purge twice (likewise)

Ends with "N passed, N failed"; exit status 0 only when none failed.
"""

import argparse
import copy
import filecmp
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_wine_tests import (CA_NAME, CLSID_EXIT, CLSID_MANAGE, PIPE, SERVICE, STATE_RUNNING, drive,  # noqa: E402
                            WIN_BIN, WIN_TEST, Run)

MS_MODULE = "CertificateAuthority_MicrosoftDefault.Exit"
OUR_MODULE = "CertRelay.Exit"
CA_CONFIG = r"HKLM\SYSTEM\CurrentControlSet\Services\CertSvc\Configuration"
CA_EXIT_MODULES = CA_CONFIG + "\\" + CA_NAME + r"\ExitModules"
WIN_INSTALL = r"C:\Program Files\CertRelay"
WIN_DATA = r"C:\ProgramData\CertRelay"
WIN_CONFIG = WIN_TEST + r"\certrelay-test.ini"
EVENTLOG = r"HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application"
INSTALLED_FILES = ("certrelay_exit.dll", "certrelayd.exe", "certrelay.exe", "certrelay.example.ini")
COM_KEYS = (f"HKCR\\CLSID\\{CLSID_EXIT}", f"HKCR\\CLSID\\{CLSID_MANAGE}", "HKCR\\CertRelay.Exit",
            "HKCR\\CertRelay.Exit.1", "HKCR\\CertRelay.ExitManage", "HKCR\\CertRelay.ExitManage.1")


class InstallerRun(Run):

    # --- setup ---------------------------------------------------------------------------------

    def setup(self):
        """The base prefix (harness and fixtures in C:\\CertRelay, the test directories), then the
        test's configuration moved out of %ProgramData%, which the package must create itself."""
        if not super().setup():
            return False
        shutil.rmtree(self.host(WIN_DATA))
        for name in ("svcquery", "tool"):
            shutil.copy2(getattr(self.args, name), self.host(WIN_BIN))
        self.host(WIN_CONFIG).write_text(
            "[broker]\n"
            f"listen = {PIPE}\n"
            f"state_dir = {WIN_DATA}\\state\n"
            f"spool_dir = {WIN_TEST}\\spool\n"
            f"log_file = {WIN_TEST}\\logs\\certrelayd.log\n"
            "log_level = info\n"
            "\n"
            "[sink.drop]\n"
            "type = file\n"
            f"directory = {WIN_TEST}\\drop\n"
            "name = {{event_id}}\n")
        for name, path in (("v1.msi", self.args.msi), ("v2.msi", self.build_newer_msi())):
            shutil.copy2(path, self.host(f"{WIN_TEST}\\{name}"))
        return True

    def build_newer_msi(self):
        major, minor, patch = (int(x) for x in self.args.version.split("."))
        self.newer = f"{major}.{minor}.{patch + 1}"
        out = self.work / f"certrelay-{self.newer}-x64.msi"
        cmd = self.args.build_msi.split("|")
        cmd[1:1] = [f"-DVERSION={self.newer}", f"-DOUTPUT={out}"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        return out

    def ca_registry(self):
        """The stand-in for a CA's configuration, with Microsoft's default exit module active."""
        rc1, _ = self.wine("reg", "add", CA_CONFIG, "/v", "Active", "/d", CA_NAME, "/f")
        rc2, _ = self.wine("reg", "add", CA_EXIT_MODULES, "/v", "Active", "/t", "REG_MULTI_SZ",
                           "/d", MS_MODULE, "/f")
        return self.check(rc1 == 0 and rc2 == 0, f"CA stand-in: Active = {CA_NAME}, exit modules "
                                                 f"= {MS_MODULE}")

    # --- reading the system --------------------------------------------------------------------

    def active_modules(self):
        rc, out = self.reg_query(CA_EXIT_MODULES, "Active")
        for line in out.splitlines():
            if "REG_MULTI_SZ" in line:
                value = line.split("REG_MULTI_SZ", 1)[1].strip()
                return [m for m in value.split("\\0") if m]
        return None

    def registered_versions(self):
        """DisplayVersion of every product named CertRelay under the Uninstall key."""
        rc, out = self.wine("reg", "query",
                            r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Uninstall", "/s")
        versions = []
        for block in out.split("\n\n"):
            fields = dict(line.split(None, 2)[::2] for line in block.splitlines()
                          if len(line.split(None, 2)) == 3)
            if fields.get("DisplayName") == "CertRelay":
                versions.append(fields.get("DisplayVersion"))
        return versions

    def svcquery(self):
        rc, out = self.wine(f"{WIN_BIN}\\{Path(self.args.svcquery).name}", SERVICE)
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def msiexec(self, *argv):
        """msiexec ... /qn with a verbose log kept beside the prefix. Exit 1618 (another
        installation in progress: the previous msiexec's processes may still be exiting on a
        loaded machine) is retried for a while, as an administrator's script would."""
        deadline = time.monotonic() + 120
        while True:
            log = f"{WIN_TEST}\\msiexec-{len(list(self.work.glob('msiexec-*')))}.log"
            rc, out = self.wine("msiexec", *argv, "/qn", "/l*v", log, timeout=600)
            if self.host(log).exists():
                shutil.copy2(self.host(log), self.work / Path(log.split("\\")[-1]))
            if out.strip():
                sys.stdout.write("".join(f"      {line}\n" for line in out.splitlines()))
            self.log(f"msiexec {' '.join(argv)}: exit {rc}")
            if rc != 1618 or time.monotonic() > deadline:
                return rc
            self.log("msiexec: another installation is in progress (1618), retrying")
            time.sleep(2)

    def tool(self, *argv, where=WIN_INSTALL):
        rc, out = self.wine(f"{where}\\certrelay.exe", *argv, timeout=300)
        sys.stdout.write("".join(f"      {line}\n" for line in out.splitlines()))
        return rc, out

    # --- checks --------------------------------------------------------------------------------

    def check_installed(self, label):
        missing = [f for f in INSTALLED_FILES if not self.host(f"{WIN_INSTALL}\\{f}").is_file()]
        self.check(not missing, f"{label}: files in {WIN_INSTALL}"
                   + (f"; missing {missing}" if missing else ""))
        self.check(self.wait_state(STATE_RUNNING), f"{label}: sc query CertRelay: STATE RUNNING")
        dll = f"{WIN_INSTALL}\\certrelay_exit.dll".lower()
        rc, out = self.reg_query(f"HKCR\\CLSID\\{CLSID_EXIT}\\InprocServer32")
        self.check(rc == 0 and dll in out.lower(), f"{label}: InprocServer32 names the installed DLL")
        rc, out = self.reg_query("HKCR\\CertRelay.Exit\\CLSID")
        self.check(rc == 0 and CLSID_EXIT.lower() in out.lower(),
                   f"{label}: ProgID CertRelay.Exit -> {CLSID_EXIT}")
        for source, binary in (("CertRelay", "certrelay_exit.dll"), ("CertRelayBroker", "certrelayd.exe")):
            rc, out = self.reg_query(f"{EVENTLOG}\\{source}", "EventMessageFile")
            self.check(rc == 0 and binary in out.lower(), f"{label}: Event Log source {source}")
        modules = self.active_modules()
        self.check(modules == [MS_MODULE, OUR_MODULE],
                   f"{label}: the CA's Active list is [{MS_MODULE}, {OUR_MODULE}] (got {modules})")

    def check_service_settings(self):
        q = self.svcquery()
        self.log(f"svcquery: {q}")
        self.check(q.get("binary", "").lower().strip('"') == f"{WIN_INSTALL}\\certrelayd.exe".lower(),
                   "QueryServiceConfig: binary in Program Files")
        self.check(q.get("start_type") == "2", "QueryServiceConfig: automatic start")
        self.check(q.get("account", "").lower() in ("localsystem", ".\\localsystem"),
                   "QueryServiceConfig: LocalSystem")
        self.check(q.get("description") == "Delivers AD CS exit module events (CertRelay)",
                   "QueryServiceConfig2: description")
        # What Wine's service manager implements is checked; what it does not is said.
        for key, want in (("failure_actions", "1:5000,1:30000,1:60000"), ("failure_reset", "86400"),
                          ("failure_actions_flag", "1"), ("delayed_auto_start", "1"),
                          ("preshutdown_timeout", "30000")):
            have = q.get(key)
            if have is None or have.startswith("unsupported"):
                fa = q.get("failure_actions", "")
                self.log(f"QueryServiceConfig2 {key}: not shown by this system "
                         f"({have or fa or 'no value'}); Windows reports {want}")
            elif key.startswith("failure") and q.get("failure_actions") == "":
                self.log(f"QueryServiceConfig2 {key}: {have} (Wine stores no failure actions: "
                         f"ChangeServiceConfig2 rejects the level); Windows reports {want}")
            else:
                self.check(have == want, f"QueryServiceConfig2 {key} = {want} (got {have})")

    def check_removed(self, label):
        self.check(self.service_state() is None, f"{label}: the service is gone")
        left = [k for k in COM_KEYS if self.reg_query(k)[0] == 0]
        self.check(not left, f"{label}: COM keys gone" + (f"; left {left}" if left else ""))
        left = [s for s in ("CertRelay", "CertRelayBroker")
                if self.reg_query(f"{EVENTLOG}\\{s}", "EventMessageFile")[0] == 0]
        self.check(not left, f"{label}: Event Log sources gone" + (f"; left {left}" if left else ""))
        modules = self.active_modules()
        self.check(modules == [MS_MODULE],
                   f"{label}: the CA's Active list is [{MS_MODULE}] (got {modules})")

    # --- the scenario --------------------------------------------------------------------------

    def main(self):
        if not self.setup() or not self.ca_registry():
            return

        # 2. Install. First with a configuration the broker rejects: the custom action fails,
        # and Windows Installer rolls everything back.
        bad = f"{WIN_TEST}\\bad.ini"
        self.host(bad).write_text("[broker]\nno_such_key = 1\n")
        rc = self.msiexec("/i", f"{WIN_TEST}\\v1.msi", f"CONFIG={bad}")
        self.check(rc != 0, f"msiexec /i with an invalid CONFIG fails (exit {rc})")
        self.check(self.service_state() is None and not self.host(WIN_INSTALL).exists()
                   and self.reg_query("HKCR\\CertRelay.Exit")[0] != 0,
                   "invalid CONFIG: rolled back (no service, files or COM keys)")
        rc = self.msiexec("/i", f"{WIN_TEST}\\v1.msi", "ADDTOCA=1", f"CONFIG={WIN_CONFIG}")
        if not self.check(rc == 0, f"msiexec /i v1.msi /qn ADDTOCA=1 CONFIG=... (exit {rc})"):
            return
        self.check_installed("install")
        ini = self.host(f"{WIN_DATA}\\certrelay.ini")
        self.check(ini.is_file() and filecmp.cmp(ini, self.host(WIN_CONFIG), shallow=False),
                   "install: certrelay.ini is the CONFIG file")
        self.check_service_settings()
        exp1 = self.harness("expect-install.tsv", 1000)
        n = self.wait_drop(len(exp1))
        self.check(n == len(exp1), f"install: {n} of {len(exp1)} events delivered by the installed copy")
        self.verify_drop(exp1, "install")

        # The service takes SERVICE_CONTROL_PRESHUTDOWN (Windows sends it at shutdown and waits
        # for the stop, up to the pre-shutdown timeout).
        q = self.svcquery()
        accepted = int(q.get("controls_accepted", "0"), 16)
        self.check(accepted & 0x100, f"the running service accepts PRESHUTDOWN (controls {accepted:#x})")
        rc, out = self.wine(f"{WIN_BIN}\\{Path(self.args.svcquery).name}", "--control", "15", SERVICE)
        if "control=ok" in out:
            self.check(self.wait_state(1), "PRESHUTDOWN: the service stopped")
        else:
            self.log(f"ControlService(SERVICE_CONTROL_PRESHUTDOWN): {out.strip()}; Windows, and "
                     "Wine likewise, let only the system send it, so the stop it triggers is not "
                     "shown here")

        # 3. Upgrade. Events first while the service is stopped (spooled), then during msiexec.
        db = self.host(f"{WIN_DATA}\\state\\certrelay.db")
        db_ino, ini_bytes = db.stat().st_ino, ini.read_bytes()
        self.wine("sc", "stop", SERVICE)
        self.wait_state(1)
        exp2 = self.harness("expect-stopped.tsv", 100000, skip_identity=True)
        spooled = len(self.spool_files())
        self.check(spooled == len(exp2), f"upgrade: {spooled} of {len(exp2)} events spooled while stopped")
        self.wine("sc", "start", SERVICE)
        self.wait_state(STATE_RUNNING)
        exp3 = self.harness_during(lambda: self.msiexec("/i", f"{WIN_TEST}\\v2.msi"),
                                   "expect-upgrade.tsv", 200000, "upgrade")
        self.check(self.wait_state(STATE_RUNNING), "upgrade: STATE RUNNING")
        versions = self.registered_versions()
        self.check(versions == [self.newer],
                   f"upgrade: only version {self.newer} is registered (got {versions})")
        total = exp1 + exp2 + exp3
        n = self.wait_drop(len(total))
        self.check(n == len(total), f"upgrade: {n} of {len(total)} events delivered")
        self.verify_drop(total, "after upgrade")
        deadline = time.monotonic() + 60
        while self.spool_files() and time.monotonic() < deadline:
            time.sleep(0.5)
        self.check(not self.spool_files(), "upgrade: the spool is empty")
        self.check(ini.is_file() and ini.read_bytes() == ini_bytes, "upgrade: certrelay.ini kept")
        self.check(db.is_file() and db.stat().st_ino == db_ino, "upgrade: the queue (certrelay.db) kept")
        self.check(self.active_modules() == [MS_MODULE, OUR_MODULE],
                   f"upgrade: the CA's Active list still holds both modules ({self.active_modules()})")

        # 4. Uninstall, then again with PURGE=1.
        rc = self.msiexec("/x", f"{WIN_TEST}\\v2.msi")
        self.check(rc == 0, f"msiexec /x (exit {rc})")
        self.check_removed("uninstall")
        gone = [f for f in INSTALLED_FILES if self.host(f"{WIN_INSTALL}\\{f}").exists()]
        self.check(not gone, "uninstall: binaries removed" + (f"; left {gone}" if gone else ""))
        self.check(ini.is_file() and db.is_file(), f"uninstall: {WIN_DATA} kept (config, queue)")
        rc = self.msiexec("/i", f"{WIN_TEST}\\v1.msi", "SERVICEACCOUNT=virtual")
        self.check(rc == 0 and self.wait_state(STATE_RUNNING),
                   "reinstall with SERVICEACCOUNT=virtual, without ADDTOCA: RUNNING")
        self.check(self.active_modules() == [MS_MODULE], "reinstall without ADDTOCA: module not added")
        account = self.svcquery().get("account")
        self.check(account == "NT SERVICE\\CertRelay", f"SERVICEACCOUNT=virtual: account {account}")
        rc = self.msiexec("/i", f"{WIN_TEST}\\v2.msi")
        account = self.svcquery().get("account")
        self.check(rc == 0 and self.wait_state(STATE_RUNNING) and account == "NT SERVICE\\CertRelay",
                   f"upgrade without SERVICEACCOUNT keeps the virtual account ({account})")
        rc = self.msiexec("/x", f"{WIN_TEST}\\v2.msi", "PURGE=1")
        self.check(rc == 0, f"msiexec /x PURGE=1 (exit {rc})")
        self.check(self.service_state() is None, "uninstall PURGE=1: the service is gone")
        self.check(not self.host(WIN_DATA).exists(), f"uninstall PURGE=1: {WIN_DATA} removed")

        # 5. Script deployment from C:\CertRelay: each command twice.
        shutil.copy2(self.example_ini(), self.host(WIN_BIN))
        for i in (1, 2):
            rc, out = self.tool("install", "--add-to-ca", "--config", WIN_CONFIG, where=WIN_BIN)
            if i == 1:
                self.check(rc == 0 and "created" in out and "done," in out,
                           f"certrelay install (1st): exit {rc}, changes made")
                self.check(self.wait_state(STATE_RUNNING), "certrelay install: STATE RUNNING")
                self.check(self.active_modules() == [MS_MODULE, OUR_MODULE],
                           "certrelay install --add-to-ca: both modules active")
            else:
                self.check(rc == 0 and "nothing to change" in out,
                           f"certrelay install (2nd): exit {rc}, says nothing to change")
        rc, out = self.tool("install", "--account", "virtual", where=WIN_BIN)
        self.check(rc == 0 and self.svcquery().get("account") == "NT SERVICE\\CertRelay",
                   "certrelay install --account virtual: the service runs as NT SERVICE\\CertRelay")
        rc, out = self.tool("install", where=WIN_BIN)
        self.check(rc == 0 and "nothing to change" in out
                   and self.svcquery().get("account") == "NT SERVICE\\CertRelay",
                   "certrelay install without --account keeps the account, nothing to change")
        for i in (1, 2):
            rc, out = self.tool("uninstall", "--purge", where=WIN_BIN)
            if i == 1:
                self.check(rc == 0 and "deleted" in out, f"certrelay uninstall (1st): exit {rc}")
                self.check_removed("certrelay uninstall")
                self.check(not self.host(WIN_DATA).exists(), f"certrelay uninstall --purge: {WIN_DATA} removed")
            else:
                self.check(rc == 0 and "nothing to change" in out,
                           f"certrelay uninstall (2nd): exit {rc}, says nothing to change")

    def example_ini(self):
        return Path(self.args.build_msi.split("-DEXAMPLE_INI=")[1].split("|")[0])

    def harness_during(self, action, expect_name, first_request, label):
        """Runs the harness on a thread while action() runs here; returns the expected rows.
        The copy writes its wine output to a folder of its own (Run.wine uses one file)."""
        side = copy.copy(self)
        side.work = self.work / "side"
        side.work.mkdir(exist_ok=True)
        side.passed = side.failed = 0
        rows = []
        t = threading.Thread(target=lambda: rows.extend(
            side.harness(expect_name, first_request, skip_identity=True)))
        t.start()
        rc = action()
        t.join()
        self.passed += side.passed
        self.failed += side.failed
        self.check(rc == 0, f"{label}: msiexec exit {rc} with the harness running")
        return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in ("wine", "wineserver", "dll", "broker", "tool", "harness", "svcquery", "fixtures",
                 "msi", "version", "build-msi", "work"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the prefix after a passing run")
    args = ap.parse_args()

    run = InstallerRun(args)

    drive(run, args.keep)


if __name__ == "__main__":
    main()
