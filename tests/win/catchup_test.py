#!/usr/bin/python3
"""Catch-up from the CA database under Wine: `certrelay catchup` reads the CA database through
ICertView2 and the broker service delivers only what the exit module never saw.

  1. a fresh prefix (run_wine_tests.Run's setup): certrelay_exit.dll registered with regsvr32,
     certrelayd.exe running as the CertRelay service with a file sink
  2. a CA database table of 9 requests with real DER certificates from the fixtures: issued,
     revoked (issued, later revoked), denied, pending, each kind twice, and one revoked request
     whose issuance the module saw but not its revocation; times carry seconds and milliseconds,
     so the dedup key's minute truncation is exercised
  3. the certsrv-like harness (harness.exe --rows) drives the real exit module with the live
     events of half the rows, through the named pipe into the service: they land in the drop
  4. catchup_view.exe serves the same table as the CA database (a fake CCertView registered with
     CoRegisterClassObject) and runs the real `certrelay catchup --ca "HOST\\CA Name"
     --from-request 1` in-process: only the other half reaches the drop, each document with
     "origin": "catchup", the certificates byte-identical to the fixtures; the view was asked
     what certsrv's would be (OpenConnection with the config string, SetResultColumnCount and a
     SetResultColumn per needed column, SetRestriction on Request.RequestID, CV_OUT_BINARY for
     RawCertificate) and every object it handed out was released
  5. the same run again: nothing new is delivered (every event a duplicate)
  6. `--since` with the CA name alone: three views (Request.ResolvedWhen, Request.RevokedWhen,
     Request.SubmittedWhen with Request.Disposition = 9), OpenConnection with this machine's
     name before the CA name, nothing new delivered
  7. a CA config naming another CA: a clear error naming OpenConnection, exit 1
  8. the broker's own schedule (catchup = on, no catchup_ca): fake_certview.dll registered as
     CCertView's InprocServer32, four more rows the module never saw; the service, started, reads
     the CA database on its threadpool (COM initialised there by the reader), opens this
     machine's CA by the name its events carry, and delivers exactly their events

Ends with "N passed, N failed"; exit status 0 only when none failed.
"""

import argparse
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_wine_tests import (CA_KEY, CA_NAME, PIPE, SERVICE, STATE_RUNNING, drive,  # noqa: E402
                            STATE_STOPPED, WIN_BIN, WIN_TEST, Run)

CA_CONFIG = "ca01.contoso.test\\" + CA_NAME
MINUTE = 60_000


class CatchupRun(Run):
    def rows(self):
        """The CA database: (request_id, disposition, leaf or None, live) with dates. live: 0 the
        module saw nothing, 1 every event, 2 only the first (the issuance of a revoked one)."""
        manifest = [line.split("\t") for line in
                    (Path(self.args.fixtures) / "manifest.tsv").read_text().splitlines()]
        # Three days ago, on no minute boundary.
        base = (int(time.time()) // 60 - 3 * 24 * 60) * MINUTE + 17_345
        table = [(1, 20, 1), (2, 20, 0), (3, 21, 1), (4, 21, 0), (5, 31, 1), (6, 31, 0),
                 (7, 9, 1), (8, 9, 0), (9, 21, 2)]
        rows = []
        for rid, disp, live in table:
            submitted = base + rid * 10 * MINUTE
            resolved = submitted + 2 * MINUTE + 1_234 if disp != 9 else None
            revoked = resolved + 3 * MINUTE + 4_567 if disp == 21 else None
            leaf = manifest[rid % len(manifest)] if disp in (20, 21) else None
            rows.append(dict(id=rid, disp=disp, live=live, submitted=submitted,
                             resolved=resolved, revoked=revoked, leaf=leaf))
        self.since_ms = (base // MINUTE - 60) * MINUTE  # whole seconds, as --since takes it
        return rows

    @staticmethod
    def row_line(r):
        def v(x):
            return "-" if x is None else str(x)
        lf = r["leaf"]
        if lf is None:
            cert = ["-"] * 7
        else:
            cert = [f"leaf{int(lf[0]):02d}.der", lf[1], lf[2], str(int(lf[3]) * 1000),
                    str(int(lf[4]) * 1000), lf[5], lf[6]]
        template = lf[9] if lf is not None else "-"
        return "\t".join([str(r["id"]), str(r["disp"]), v(r["submitted"]), v(r["resolved"]),
                          v(r["revoked"]), "1" if r["disp"] == 21 else "-", *cert, template,
                          str(r["live"])]) + "\n"

    @staticmethod
    def events_of(r):
        """The events the module raises for a row, in order."""
        first = {20: "issued", 21: "issued", 31: "denied", 9: "pending"}[r["disp"]]
        return [first, "revoked"] if r["disp"] == 21 else [first]

    def drop_docs(self):
        docs = []
        for path in self.drop_jsons():
            doc = json.loads(path.read_text(encoding="utf-8"))
            rid = (doc.get("request") or {}).get("id")
            if rid:
                docs.append((doc["event"], int(rid), doc, path))
        return docs

    def catchup(self, *args, label):
        """Runs catchup_view.exe around `certrelay catchup ARGS --pipe PIPE`; returns its exit
        status and the view's record as a dict of lists."""
        argv = [f"{WIN_BIN}\\catchup_view.exe", "--fixtures", f"{WIN_BIN}\\fixtures",
                "--rows", f"{WIN_TEST}\\rows.tsv", "--ca-name", CA_NAME, "--", "catchup", *args,
                "--pipe", PIPE]
        rc, out = self.wine(*argv, timeout=300)
        if not out.strip():
            # Seen once in a full parallel run: the program ended with status 1 before printing
            # anything (not even its report, so the view saw no call and nothing was submitted).
            # That is Wine failing to start it, not a catch-up result: start it once more, and
            # say so.
            self.log(f"{label}: catchup_view.exe exited {rc} with no output; starting it again")
            rc, out = self.wine(*argv, timeout=300)
        sys.stdout.write("".join(f"      {line}\n" for line in out.splitlines()))
        rec = {}
        for line in out.splitlines():
            m = re.match(r"^(config|views|result|restriction|rows_served|binary_reads|"
                         r"protocol_errors|live_objects|exit) ?(.*)$", line)
            if m:
                rec.setdefault(m.group(1), []).append(m.group(2))
        self.check(rec.get("protocol_errors") == ["0"],
                   f"{label}: the reader made only calls certsrv's view accepts")
        self.check(rec.get("live_objects") == ["0"],
                   f"{label}: every view, row and column object was released")
        return rc, out, rec

    def main(self):
        if not self.setup():
            return
        bindir = self.host(WIN_BIN)
        shutil.copy2(self.args.catchup_view, bindir / "catchup_view.exe")
        dll = f"{WIN_BIN}\\{Path(self.args.dll).name}"
        exe = f"{WIN_BIN}\\{Path(self.args.broker).name}"
        ini = self.prefix / "drive_c" / "ProgramData" / "CertRelay" / "certrelay.ini"
        os.chmod(ini, 0o644)
        os.chmod(ini.parent, 0o755)

        rc, _ = self.wine("regsvr32", "/s", dll, check=True)
        self.check(rc == 0, f"regsvr32 /s certrelay_exit.dll (exit {rc})")
        rc, _ = self.wine("sc", "create", SERVICE, "binPath=", exe, "start=", "auto", check=True)
        self.check(rc == 0, "sc create CertRelay")
        self.wine("sc", "start", SERVICE)
        if not self.check(self.wait_state(STATE_RUNNING), "sc start: STATE RUNNING"):
            self.dump_log()
            return

        rows = self.rows()
        self.host(f"{WIN_TEST}\\rows.tsv").write_text("".join(self.row_line(r) for r in rows))
        live, missed = set(), set()
        for r in rows:
            evs = self.events_of(r)
            for i, ev in enumerate(evs):
                seen = r["live"] == 1 or (r["live"] == 2 and i == 0)
                (live if seen else missed).add((ev, r["id"]))

        # The module sees half: its live events, through the pipe, into the drop.
        argv = [f"{WIN_BIN}\\{Path(self.args.harness).name}", "--fixtures", f"{WIN_BIN}\\fixtures",
                "--ca", CA_NAME, "--registry-key", CA_KEY, "--pipe", PIPE,
                "--broker-service", SERVICE, "--spool", f"{WIN_TEST}\\spool",
                "--expect", f"{WIN_TEST}\\expect-live.tsv", "--rows", f"{WIN_TEST}\\rows.tsv",
                "--skip-identity"]
        rc, out = self.wine(*argv, timeout=300)
        sys.stdout.write("".join(f"      {line}\n" for line in out.splitlines()))
        self.check(rc == 0, f"harness --rows (exit {rc})")
        want_live = len(live) + 1  # and the startup event Initialize raises
        n = self.wait_drop(want_live)
        self.check(n == want_live, f"live: {n} of {want_live} events in the drop directory")
        got = {(ev, rid) for ev, rid, _, _ in self.drop_docs()}
        self.check(got == live, f"live: exactly the events of the rows the module saw "
                                f"({sorted(got ^ live)[:4]} differ)" if got != live else
                   "live: exactly the events of the rows the module saw")

        # Catch-up: only what the module missed.
        rc, out, rec = self.catchup("--ca", CA_CONFIG, "--from-request", "1", label="catch-up")
        self.check(rc == 0, f"certrelay catchup --from-request 1 (exit {rc})")
        self.check(rec.get("config") == [CA_CONFIG],
                   f"OpenConnection got the config string ({rec.get('config')})")
        self.check(rec.get("views") == ["1 1"], f"one view created and opened ({rec.get('views')})")
        self.check(rec.get("restriction") == ["Request.RequestID ge ascend 1"],
                   f"SetRestriction(Request.RequestID, CVR_SEEK_GE, CVR_SORT_ASCEND, 1) "
                   f"({rec.get('restriction')})")
        results = rec.get("result", [])
        needed = {"Request.RequestID", "Request.Disposition", "Request.SubmittedWhen",
                  "Request.ResolvedWhen", "Request.RevokedWhen", "Request.RevokedReason",
                  "RawCertificate", "SerialNumber", "NotBefore", "NotAfter", "CertificateTemplate",
                  "CommonName", "DistinguishedName"}
        self.check(needed <= set(results) and len(results) == len(set(results)) and
                   "Request.RawRequest" not in results,
                   f"SetResultColumn for each needed column once, nothing else asked "
                   f"({len(results)} columns; missing {sorted(needed - set(results))})")
        with_cert = sum(1 for r in rows if r["leaf"] is not None)
        self.check(rec.get("binary_reads") == [str(with_cert)],
                   f"RawCertificate read with CV_OUT_BINARY for each of the {with_cert} "
                   f"certificates ({rec.get('binary_reads')})")
        self.check(rec.get("rows_served") == [str(len(rows))],
                   f"the view served all {len(rows)} rows ({rec.get('rows_served')})")
        want = len(live) + 1 + len(missed)
        n = self.wait_drop(want)
        time.sleep(2)  # anything extra would land now
        docs = self.drop_docs()
        got = {(ev, rid) for ev, rid, _, _ in docs}
        self.check(len(self.drop_jsons()) == want and got == live | missed,
                   f"catch-up: {len(self.drop_jsons())} of {want} events in the drop, the missed "
                   f"half added" + (f"; differ: {sorted(got ^ (live | missed))[:4]}"
                                    if got != live | missed else ""))
        origins = {(ev, rid): doc.get("origin", "live") for ev, rid, doc, _ in docs}
        self.check(all(origins[k] == "catchup" for k in missed) and
                   all(origins[k] == "live" for k in live),
                   "caught-up documents say origin catchup, live ones do not")
        self.check(len(docs) == len(got), "no event delivered twice")
        bad = []
        fixtures = Path(self.args.fixtures)
        by_id = {r["id"]: r for r in rows}
        for ev, rid, doc, path in docs:
            r = by_id[rid]
            if (ev, rid) not in missed or r["leaf"] is None:
                continue
            der = (fixtures / f"leaf{int(r['leaf'][0]):02d}.der").read_bytes()
            cer = path.with_suffix(".cer")
            if not cer.exists() or cer.read_bytes() != der:
                bad.append(cer.name)
        self.check(not bad, f"caught-up certificates byte-identical to the fixtures ({bad[:3]})")
        self.check(re.search(rf"{len(missed)} stored, {len(live)} duplicates", out) is not None,
                   f"the command reports {len(missed)} stored and {len(live)} duplicates")

        # A second run delivers nothing.
        before = len(self.drop_jsons())
        rc, out, rec = self.catchup("--ca", CA_CONFIG, "--from-request", "1",
                                    label="second run")
        time.sleep(2)
        self.check(rc == 0 and len(self.drop_jsons()) == before and
                   re.search(rf" 0 stored, {len(live) + len(missed)} duplicates", out) is not None,
                   f"second run: nothing new delivered (exit {rc}, "
                   f"{len(self.drop_jsons()) - before} new files)")

        # --since, with the CA name alone: the CA on this machine, three views.
        rc, out, rec = self.catchup("--ca", CA_NAME, "--since",
                                    time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                  time.gmtime(self.since_ms / 1000)),
                                    label="--since")
        time.sleep(2)
        self.check(rc == 0 and len(self.drop_jsons()) == before,
                   f"--since: nothing new delivered (exit {rc})")
        cfg = (rec.get("config") or [""])[0]
        self.check(cfg.endswith("\\" + CA_NAME) and len(cfg) > len(CA_NAME) + 1,
                   f"a bare CA name is the CA on this machine: OpenConnection({cfg!r})")
        since = str(self.since_ms)
        want_restr = [f"Request.ResolvedWhen ge ascend {since}",
                      f"Request.RevokedWhen ge ascend {since}",
                      f"Request.SubmittedWhen ge ascend {since}",
                      "Request.Disposition eq none 9"]
        self.check(rec.get("restriction") == want_restr and rec.get("views") == ["3 3"],
                   f"--since: one view per date, pending by Disposition 9 "
                   f"({rec.get('views')}, {rec.get('restriction')})")

        # A config string naming no CA: a clear error.
        rc, out, rec = self.catchup("--ca", "ca01.contoso.test\\Another CA", "--from-request",
                                    "1", label="no such CA")
        self.check(rc == 1 and "OpenConnection" in out,
                   f"a CA that does not answer: exit {rc}, the error names OpenConnection")

        self.wine("sc", "stop", SERVICE)
        self.check(self.wait_state(STATE_STOPPED), "sc stop: STATE STOPPED")
        self.scheduled(rows, live | missed)

    def scheduled(self, rows, delivered):
        """The broker's own catch-up (catchup = on): the service reads the CA database through
        fake_certview.dll, registered as CCertView's in-process server, on a threadpool thread."""
        # Four requests the module never saw, resolved while it was away.
        last = max(r["submitted"] for r in rows)
        manifest = [line.split("\t") for line in
                    (Path(self.args.fixtures) / "manifest.tsv").read_text().splitlines()]
        new = []
        for rid, disp in ((10, 20), (11, 21), (12, 31), (13, 9)):
            submitted = last + (rid - 9) * 10 * MINUTE
            resolved = submitted + MINUTE + 999 if disp != 9 else None
            revoked = resolved + MINUTE + 1 if disp == 21 else None
            leaf = manifest[rid % len(manifest)] if disp in (20, 21) else None
            new.append(dict(id=rid, disp=disp, live=0, submitted=submitted, resolved=resolved,
                            revoked=revoked, leaf=leaf))
        self.host(f"{WIN_TEST}\\rows.tsv").write_text(
            "".join(self.row_line(r) for r in rows + new))
        want_new = {(ev, r["id"]) for r in new for ev in self.events_of(r)}

        shutil.copy2(self.args.fake_certview, self.host(WIN_BIN) / "fake_certview.dll")
        clsid = "HKCR\\CLSID\\{A12D0F7A-1E84-11D1-9BD6-00C04FB683FA}\\InprocServer32"
        settings = "HKLM\\SOFTWARE\\CertRelayTest\\FakeCertView"
        ok = True
        for argv in (("reg", "add", clsid, "/ve", "/d", f"{WIN_BIN}\\fake_certview.dll", "/f"),
                     ("reg", "add", clsid, "/v", "ThreadingModel", "/d", "Both", "/f"),
                     ("reg", "add", settings, "/v", "Rows", "/d", f"{WIN_TEST}\\rows.tsv", "/f"),
                     ("reg", "add", settings, "/v", "Fixtures", "/d", f"{WIN_BIN}\\fixtures",
                      "/f"),
                     ("reg", "add", settings, "/v", "CaName", "/d", CA_NAME, "/f"),
                     ("reg", "add", settings, "/v", "Trace", "/d",
                      f"{WIN_TEST}\\view-trace.txt", "/f")):
            rc, _ = self.wine(*argv, check=True)
            ok = ok and rc == 0
        self.check(ok, "fake_certview.dll registered as CCertView's in-process server")

        # catchup = on, without catchup_ca: the broker takes the CA its events came from.
        ini = self.prefix / "drive_c" / "ProgramData" / "CertRelay" / "certrelay.ini"
        text = ini.read_text()
        ini.write_text(text.replace("log_level = info\n",
                                    "log_level = info\ncatchup = on\ncatchup_interval = 1h\n", 1))
        before = len(self.drop_jsons())
        self.wine("sc", "start", SERVICE)
        if not self.check(self.wait_state(STATE_RUNNING), "catchup = on: STATE RUNNING"):
            self.dump_log()
            return
        n = self.wait_drop(before + len(want_new), seconds=180)
        time.sleep(2)
        docs = self.drop_docs()
        got = {(ev, rid) for ev, rid, _, _ in docs}
        self.check(len(self.drop_jsons()) == before + len(want_new) and
                   got == delivered | want_new,
                   f"scheduled catch-up: the {len(want_new)} events the module never saw, "
                   f"nothing else ({len(self.drop_jsons()) - before} new; differ "
                   f"{sorted(got ^ (delivered | want_new))[:4]})")
        self.check(all(doc.get("origin") == "catchup" for ev, rid, doc, _ in docs
                       if (ev, rid) in want_new), "scheduled catch-up: origin catchup")
        trace = self.host(f"{WIN_TEST}\\view-trace.txt")
        lines = trace.read_text(errors="replace").splitlines() if trace.exists() else []
        self.log("fake_certview.dll trace:\n" + "\n".join(lines[:12]))
        cfg = [ln[len("config "):] for ln in lines if ln.startswith("config ")]
        self.check(cfg and all(c.lower().endswith("\\" + CA_NAME.lower()) and
                               len(c) > len(CA_NAME) + 1 for c in cfg),
                   f"the service opened this machine's CA by its name ({cfg[:1]})")
        self.check(any(ln.startswith("restriction Request.ResolvedWhen ge ascend ")
                       for ln in lines) and
                   any(ln.startswith("restriction Request.RevokedWhen ge ascend ")
                       for ln in lines),
                   "the service restricted its views by the resolved and revoked dates")
        log = self.host(f"{WIN_TEST}\\logs\\certrelayd.log")
        text = log.read_text(errors="replace") if log.exists() else ""
        m = re.search(r"catch-up of .*: (\d+) rows read, (\d+) events stored, (\d+) duplicates",
                      text)
        self.check(m is not None and int(m.group(2)) == len(want_new),
                   f"the broker logs the run: {m.group(0) if m else 'no catch-up line'}")
        self.wine("sc", "stop", SERVICE)
        self.check(self.wait_state(STATE_STOPPED), "sc stop: STATE STOPPED")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wine", required=True)
    ap.add_argument("--wineserver", required=True)
    ap.add_argument("--dll", required=True)
    ap.add_argument("--broker", required=True)
    ap.add_argument("--harness", required=True)
    ap.add_argument("--catchup-view", required=True)
    ap.add_argument("--fake-certview", required=True)
    ap.add_argument("--tool", required=True)
    ap.add_argument("--fixtures", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the prefix after a passing run")
    args = ap.parse_args()

    run = CatchupRun(args)

    drive(run, args.keep)


if __name__ == "__main__":
    main()
