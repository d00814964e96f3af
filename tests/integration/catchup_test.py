"""Catch-up (`certrelay catchup --from-csv`, the broker's dedup index and scheduled catch-up)
against a real broker delivering to a real file drop.

A certutil -view csv export is written at test time from the real DER certificates that
tests/fixtures/gen-fixtures.sh made with openssl, with certutil's display names, dispositions
("20 -- Issued"), status codes and US dates at minute precision. The live path (the raw protocol
client, as the exit module) sends half of the requests, with the same request ids and times to
the millisecond; then:

1. a dry run lists exactly the other half and stores nothing;
2. catch-up delivers exactly the other half (an issued-then-revoked request as two events);
3. a second run delivers nothing; a late live event for a caught-up request is acked, not
   delivered;
4. malformed CSV records are reported with their line and skipped, the good ones stored; a
   directory given as --from-csv is refused;
5. a schema version 2 database is migrated to 3 with its events' keys backfilled;
6. `catchup = on` with `catchup_csv`, turned on by a reload, closes the gap from the watermark.
"""

import argparse
import base64
import calendar
import os
import sqlite3
import time
import uuid

import crstest as t

CA = "TESTCA\\Test CA"
# 2026-12-03T10:15:00Z
T0 = calendar.timegm((2026, 12, 3, 10, 15, 0)) * 1000
MIN = 60000


def opts():
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--certrelayd", required=True)
    p.add_argument("--certrelay", required=True)
    p.add_argument("--fixtures", required=True)
    return p.parse_args()


def load_certs(fixtures):
    """[(der, serial, cn, template)] of the fixture leaves."""
    out = []
    with open(os.path.join(fixtures, "manifest.tsv")) as f:
        for line in f:
            cols = line.rstrip("\n").split("\t")
            with open(os.path.join(fixtures, "leaf%02d.der" % int(cols[0])), "rb") as d:
                out.append((d.read(), cols[1], cols[6], cols[9]))
    return out


# ---- Rows and what the live path sends for them ----

def row(rid, disp, cert=None, submitted=None, resolved=None, revoked=None, reason=None):
    return {"rid": rid, "disp": disp, "cert": cert, "submitted": submitted,
            "resolved": resolved, "revoked": revoked, "reason": reason}


def live_event(r, kind):
    """The packed Event the exit module sends for row r at `kind`."""
    eid = str(uuid.uuid4())
    ev = t.f_bytes(1, eid) + t.f_varint(2, t.KINDS[kind]) + t.f_varint(3, int(time.time() * 1000))
    ev += t.f_bytes(4, t.f_bytes(1, CA))
    req = t.f_varint(1, r["rid"]) + t.f_varint(3, 20 if kind == "issued" else r["disp"])
    req += t.f_bytes(6, "TESTCA\\alice")
    if r["submitted"] is not None:
        req += t.f_varint(8, r["submitted"])
    if r["resolved"] is not None:
        req += t.f_varint(9, r["resolved"])
    if kind == "revoked":
        req += t.f_varint(10, r["revoked"]) + t.f_varint(12, r["reason"])
    ev += t.f_bytes(5, req)
    if r["cert"] is not None:
        der, serial, cn, tpl = r["cert"]
        ev += t.f_bytes(6, t.f_bytes(1, serial) + t.f_bytes(2, der) + t.f_bytes(6, cn) +
                        t.f_bytes(9, tpl))
    ev += t.f_varint(9, t.KINDS[kind])
    return eid, ev


def us_date(ms):
    """certutil's US format at minute precision: 12/3/2026 10:15 AM."""
    tm = time.gmtime(ms // 1000)
    h = tm.tm_hour % 12 or 12
    return "%d/%d/%d %d:%02d %s" % (tm.tm_mon, tm.tm_mday, tm.tm_year, h, tm.tm_min,
                                     "AM" if tm.tm_hour < 12 else "PM")


DISP_TEXT = {9: "9 -- Taken Under Submission", 20: "20 -- Issued", 21: "21 -- Revoked",
             31: "31 -- Denied", 15: "15 -- CA Certificate"}


def q(s):
    return '"%s"' % s.replace('"', '""')


def write_csv(path, rows, extra_lines=()):
    """A certutil -view csv export of rows (BOM, CRLF, display names, PEM cells)."""
    head = ["Request ID", "Request Disposition", "Request Status Code", "Requester Name",
            "Request Submission Date", "Request Resolution Date", "Revocation Date",
            "Revocation Reason", "Binary Certificate", "Certificate Template", "Serial Number",
            "Issued Common Name"]
    lines = [",".join(q(h) for h in head)]
    for r in rows:
        cert = r["cert"]
        if cert is not None:
            b64 = base64.b64encode(cert[0]).decode()
            pem = "-----BEGIN CERTIFICATE-----\r\n%s\r\n-----END CERTIFICATE-----\r\n" % (
                "\r\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)))
        cells = [
            q("0x%x" % r["rid"] if r["rid"] % 2 else str(r["rid"])),
            q(DISP_TEXT[r["disp"]]),
            q("0x80094012 (-2146877422 CERTSRV_E_TEMPLATE_DENIED)" if r["disp"] == 31
              else "0x0 (WIN32: 0)"),
            q("TESTCA\\alice"),
            q(us_date(r["submitted"])) if r["submitted"] is not None else "EMPTY",
            q(us_date(r["resolved"])) if r["resolved"] is not None else "EMPTY",
            q(us_date(r["revoked"])) if r["revoked"] is not None else "EMPTY",
            q("0x%x -- Key Compromise" % r["reason"]) if r["reason"] is not None else "EMPTY",
            q(pem) if cert is not None else "EMPTY",
            q(cert[3]) if cert is not None else "EMPTY",
            q(cert[1]) if cert is not None else "EMPTY",
            q(cert[2]) if cert is not None else "EMPTY",
        ]
        lines.append(",".join(cells))
    lines += list(extra_lines)
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n")


def catchup(o, tmp, config, *extra, check=True):
    return t.run([o.certrelay, "catchup", "--config", config] + list(extra), tmp, check=check)


def summary_counts(text):
    """{'rows': n, 'built': n, 'stored'|'sent': n, 'duplicates': n, 'rejected': n, 'bad': n}."""
    import re
    m = re.search(r"(\d+) rows read, (\d+) events built, (\d+) (?:stored|would be sent), "
                  r"(\d+) duplicates, (\d+) rejected, (\d+) bad rows", text)
    if m is None:
        t.fail("no summary line in:\n%s" % text)
    return dict(zip(("rows", "built", "stored", "duplicates", "rejected", "bad"),
                    (int(x) for x in m.groups())))


def delivered(out):
    """{(request id, event): document} of the drop (one file per request and kind)."""
    res = {}
    for name, doc in t.json_docs(out).items():
        key = (doc["request"]["id"], doc["event"])
        if key in res:
            t.fail("request %d %s delivered twice" % key)
        res[key] = doc
    return res


def test_reconcile(o, certs):
    with t.TempDir("catchup") as tmp:
        out = tmp.join("out")
        config, settings = t.write_config(tmp, sinks=t.unique_sink(tmp))
        state = settings["state_dir"]
        rows = []
        for rid in range(1, 9):
            res = T0 + rid * MIN + 17345
            rows.append(row(rid, 20, certs[rid - 1], res - 5000, res))
        rows.append(row(9, 21, certs[8], T0 + 9 * MIN - 4000, T0 + 9 * MIN + 2000,
                        T0 + 180 * MIN + 12345, 1))
        rows.append(row(10, 9, None, T0 + 10 * MIN + 3000))
        rows.append(row(11, 31, None, T0 + 11 * MIN, T0 + 11 * MIN + 59000))
        rows.append(row(12, 21, certs[9], T0 + 12 * MIN, T0 + 12 * MIN + 1000,
                        T0 + 240 * MIN, 1))
        rows.append(row(13, 15, certs[10], T0 + 13 * MIN, T0 + 13 * MIN))
        csv = tmp.join("export.csv")
        write_csv(csv, rows)
        by_id = {r["rid"]: r for r in rows}

        broker = t.Broker(o.certrelayd, config, tmp, settings["listen"]).start()
        live = [live_event(by_id[rid], "issued") for rid in (1, 2, 3, 4, 9)]
        live.append(live_event(by_id[10], "pending"))
        t.send_acked(settings["listen"], live)
        t.wait_for(lambda: len(t.json_docs(out)) == 6, "the 6 live deliveries")
        want_live = {(1, "issued"), (2, "issued"), (3, "issued"), (4, "issued"), (9, "issued"),
                     (10, "pending")}
        want_caught = {(5, "issued"), (6, "issued"), (7, "issued"), (8, "issued"),
                       (9, "revoked"), (11, "denied"), (12, "issued"), (12, "revoked")}

        # 1. The dry run lists the other half and stores nothing.
        p = catchup(o, tmp, config, "--from-csv", csv, "--ca", "testca\\test ca", "--dry-run",
                    "--from-request", "1")
        c = summary_counts(p.stdout)
        if c != {"rows": 13, "built": 14, "stored": 8, "duplicates": 6, "rejected": 0, "bad": 0}:
            t.fail("dry run counts %r\n%s" % (c, p.stdout))
        listed = set()
        for line in p.stdout.splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 3 and parts[0].isdigit():
                listed.add((int(parts[0]), parts[1]))
        if listed != want_caught:
            t.fail("dry run listed %r, want %r" % (sorted(listed), sorted(want_caught)))
        if "web04.contoso.test" not in p.stdout and certs[4][2] not in p.stdout:
            t.fail("dry run does not show the subject:\n%s" % p.stdout)
        n = t.db_rows(state, "SELECT count(*) FROM events")[0][0]
        if n != 6:
            t.fail("the dry run stored events: %d rows" % n)
        t.log("dry run: 8 events listed, nothing stored")

        # 2. Catch-up delivers exactly the other half.
        p = catchup(o, tmp, config, "--from-csv", csv, "--ca", "testca\\test ca",
                    "--from-request", "1")
        c = summary_counts(p.stdout)
        if (c["stored"], c["duplicates"], c["rejected"]) != (8, 6, 0):
            t.fail("catch-up counts %r\n%s" % (c, p.stdout))
        t.wait_for(lambda: len(t.json_docs(out)) == 14, "the 8 caught-up deliveries")
        docs = delivered(out)
        if set(docs) != want_live | want_caught:
            t.fail("delivered %r" % sorted(docs))
        for key in want_caught:
            if docs[key].get("origin") != "catchup":
                t.fail("%r has origin %r" % (key, docs[key].get("origin")))
        for key in want_live:
            if "origin" in docs[key]:
                t.fail("live %r has an origin" % (key,))
        d = docs[(5, "issued")]
        if d["certificate"]["serial"] != certs[4][1] or d["certificate"]["common_name"] != certs[4][2]:
            t.fail("issued 5 certificate: %r" % d["certificate"])
        if base64.b64decode(d["certificate"]["der_base64"]) != certs[4][0]:
            t.fail("issued 5 does not carry the certificate's DER")
        if docs[(9, "revoked")]["request"].get("revoked") != "2026-12-03T13:15:00.000Z":
            t.fail("revoked 9: %r" % docs[(9, "revoked")]["request"])
        t.log("catch-up: the 8 missing events delivered once, with origin catchup")

        # 3. A second run delivers nothing; a late live event is acked, not delivered.
        p = catchup(o, tmp, config, "--from-csv", csv, "--ca", CA, "--from-request", "1")
        c = summary_counts(p.stdout)
        if (c["stored"], c["duplicates"]) != (0, 14):
            t.fail("second run counts %r\n%s" % (c, p.stdout))
        late_eid, late = live_event(by_id[5], "issued")
        t.send_acked(settings["listen"], [(late_eid, late)])
        n = t.db_rows(state, "SELECT count(*) FROM events")[0][0]
        if n != 14:
            t.fail("%d events stored after the second run and the late event, want 14" % n)
        t.wait_for(lambda: "already stored under another id" in broker.log_text(),
                   "the late event logged as already stored")
        if len(t.json_docs(out)) != 14:
            t.fail("the second run or the late event delivered again")
        t.log("second run: 14 duplicates, nothing delivered; late live event acked, not delivered")

        # catchup --status shows the watermark.
        p = catchup(o, tmp, config, "--status", "--json")
        import json
        marks = json.loads(p.stdout)["watermarks"]
        if len(marks) != 1 or marks[0]["ca"] != "test ca" or \
                marks[0]["max_request_id"] != 12 or marks[0]["keys"] != 14:
            t.fail("watermarks %r" % marks)

        # 4. Malformed records: reported with their line, skipped; the good ones stored.
        bad = tmp.join("bad.csv")
        good = [row(20, 20, certs[11], T0 + 20 * MIN, T0 + 20 * MIN),
                row(21, 9, None, T0 + 21 * MIN)]
        write_csv(bad, good, extra_lines=[
            '"22","20 -- Issued","0x0","x","13/45/2026 10:15 AM",EMPTY,EMPTY,EMPTY,EMPTY,'
            'EMPTY,EMPTY,EMPTY',
            '"23","20 -- Issued"',
            '"24","20 -- Issued","0x0","x",EMPTY,EMPTY,EMPTY,EMPTY,"not base64 !!",EMPTY,EMPTY,'
            'EMPTY'])
        p = catchup(o, tmp, config, "--from-csv", bad, "--from-request", "1", check=False)
        if p.returncode != 1:
            t.fail("malformed rows: exit %d, want 1\n%s%s" % (p.returncode, p.stdout, p.stderr))
        c = summary_counts(p.stdout)
        if (c["rows"], c["stored"], c["bad"]) != (2, 2, 3):
            t.fail("malformed rows counts %r\n%s%s" % (c, p.stdout, p.stderr))
        # Physical lines, as an editor shows them (PEM cells span several).
        with open(bad, "rb") as f:
            starts = [i + 1 for i, l in enumerate(f.read().split(b"\r\n"))
                      if l.startswith((b'"22"', b'"23"', b'"24"'))]
        if len(starts) != 3:
            t.fail("test bug: bad rows at %r" % starts)
        for line in starts:
            if "line %d skipped" % line not in p.stderr:
                t.fail("line %d not reported:\n%s" % (line, p.stderr))
        t.wait_for(lambda: len(t.json_docs(out)) == 16, "the 2 good rows delivered")
        p = catchup(o, tmp, config, "--from-csv", tmp.join("out"), "--from-request", "1",
                    check=False)
        if p.returncode != 1 or "not a regular file" not in p.stderr:
            t.fail("a directory as --from-csv: exit %d\n%s" % (p.returncode, p.stderr))
        t.log("malformed rows reported by line and skipped; a directory refused")
        broker.stop_ok()


V2_SCHEMA = """
CREATE TABLE events (rowid INTEGER PRIMARY KEY, event_id TEXT UNIQUE NOT NULL,
    kind INTEGER NOT NULL, received_ms INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE deliveries (event_rowid INTEGER NOT NULL, sink TEXT NOT NULL,
    state INTEGER NOT NULL, attempts INTEGER NOT NULL, next_attempt_ms INTEGER NOT NULL,
    last_error TEXT, last_status INTEGER, updated_ms INTEGER NOT NULL,
    PRIMARY KEY (event_rowid, sink));
CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
CREATE INDEX deliveries_sink_due ON deliveries (sink, state, next_attempt_ms);
CREATE TABLE attempts (event_rowid INTEGER NOT NULL, sink TEXT NOT NULL,
    attempt INTEGER NOT NULL, started_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL,
    outcome INTEGER NOT NULL, status INTEGER NOT NULL, error TEXT,
    PRIMARY KEY (event_rowid, sink, attempt)) WITHOUT ROWID;
PRAGMA user_version = 2;
"""


def test_migration(o, certs):
    with t.TempDir("catchup-migrate") as tmp:
        config, settings = t.write_config(tmp, sinks=t.unique_sink(tmp))
        state = settings["state_dir"]
        os.makedirs(state, exist_ok=True)
        r = row(5, 20, certs[4], T0 + 5 * MIN, T0 + 5 * MIN + 30000)
        eid, body = live_event(r, "issued")
        db = sqlite3.connect(os.path.join(state, "certrelay.db"))
        db.executescript(V2_SCHEMA)
        db.execute("INSERT INTO events VALUES (1, ?, 1, 1000, ?)", (eid, body))
        db.execute("INSERT INTO deliveries VALUES (1, 'archive', 1, 1, 1000, NULL, 0, 1000)")
        db.commit()
        db.close()
        broker = t.Broker(o.certrelayd, config, tmp, settings["listen"]).start()
        if "dedup keys of 1 stored events backfilled" not in broker.log_text():
            t.fail("no backfill line:\n%s" % broker.log_text())
        version = t.db_rows(state, "PRAGMA user_version")[0][0]
        keys = t.db_rows(state, "SELECT ca, request_id, kind, minute, event_rowid FROM event_keys")
        if version != 4 or keys != [("test ca", 5, 1, (T0 + 5 * MIN) // MIN, 1)]:
            t.fail("after the migration: version %d, keys %r" % (version, keys))
        csv = tmp.join("export.csv")
        write_csv(csv, [r, row(6, 20, certs[5], T0 + 6 * MIN, T0 + 6 * MIN)])
        p = catchup(o, tmp, config, "--from-csv", csv, "--since", "2026-12-01T00:00:00Z")
        c = summary_counts(p.stdout)
        if (c["stored"], c["duplicates"]) != (1, 1):
            t.fail("catch-up after the migration: %r\n%s" % (c, p.stdout))
        t.wait_for(lambda: len(t.json_docs(tmp.join("out"))) == 1, "request 6 delivered")
        if list(delivered(tmp.join("out"))) != [(6, "issued")]:
            t.fail("delivered %r" % list(delivered(tmp.join("out"))))
        broker.stop_ok()
        t.log("schema 2 -> 3: keys backfilled, the migrated event's request not delivered again")


def test_scheduled(o, certs):
    with t.TempDir("catchup-sched") as tmp:
        out = tmp.join("out")
        now = int(time.time() * 1000)
        rows = [row(1, 20, certs[0], now - 21 * MIN, now - 20 * MIN),
                row(2, 20, certs[1], now - 11 * MIN, now - 10 * MIN),
                row(3, 21, certs[2], now - 16 * MIN, now - 15 * MIN, now - 5 * MIN, 4),
                row(4, 20, certs[3], now - 181 * MIN, now - 180 * MIN)]
        csv = tmp.join("export.csv")
        write_csv(csv, rows)
        base = dict(sinks=t.unique_sink(tmp), catchup_csv=csv, catchup_ca=CA,
                    catchup_interval="1h")
        config, settings = t.write_config(tmp, catchup="off", **base)
        broker = t.Broker(o.certrelayd, config, tmp, settings["listen"]).start()
        t.send_acked(settings["listen"], [live_event(rows[0], "issued")])
        t.wait_for(lambda: len(t.json_docs(out)) == 1, "the live delivery")
        # Turned on by a reload: the schedule reads from the watermark (the live event's time,
        # less the overlap), so request 4, resolved three hours ago, is before it.
        t.write_config(tmp, catchup="on", **base)
        t.run([o.certrelay, "reload", "--config", config], tmp)
        t.wait_for(lambda: "catch-up of " + CA + ": 4 rows read" in broker.log_text() or
                   "catch-up of " + CA + ": 3 rows read" in broker.log_text(),
                   "the scheduled catch-up to finish")
        t.wait_for(lambda: len(t.json_docs(out)) == 4, "the 3 caught-up deliveries")
        got = set(delivered(out))
        if got != {(1, "issued"), (2, "issued"), (3, "issued"), (3, "revoked")}:
            t.fail("scheduled catch-up delivered %r\n%s" % (sorted(got), broker.log_text()))
        marks = t.db_rows(settings["state_dir"], "SELECT caught_up_ms FROM watermarks")
        if len(marks) != 1 or marks[0][0] is None:
            t.fail("caught_up_ms not recorded: %r" % marks)
        broker.stop_ok()
        t.log("scheduled catch-up (turned on by a reload) delivered the gap from the watermark")


def test_key_retention(o, certs):
    """dedup_retention bounds the index: keys stored longer ago than it are swept by retention,
    and a catch-up run after that stores the events again (what the setting trades away)."""
    with t.TempDir("catchup-keys") as tmp:
        config, settings = t.write_config(tmp, dedup_retention="2s", sinks=t.unique_sink(tmp))
        state = settings["state_dir"]
        broker = t.Broker(o.certrelayd, config, tmp, settings["listen"]).start()
        csv = tmp.join("export.csv")
        write_csv(csv, [row(7, 20, certs[0], T0 + 7 * MIN, T0 + 7 * MIN),
                        row(8, 20, certs[1], T0 + 8 * MIN, T0 + 8 * MIN)])
        c = summary_counts(catchup(o, tmp, config, "--from-csv", csv, "--ca", CA,
                                   "--from-request", "1").stdout)
        if c["stored"] != 2:
            t.fail("first run stored %r" % c)
        c = summary_counts(catchup(o, tmp, config, "--from-csv", csv, "--ca", CA,
                                   "--from-request", "1").stdout)
        if (c["stored"], c["duplicates"]) != (0, 2):
            t.fail("second run within dedup_retention: %r" % c)
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM event_keys")[0][0] == 0,
                   "the keys to be swept after dedup_retention", timeout=30)
        if "catch-up dedup keys older than dedup_retention removed" not in broker.log_text():
            t.fail("no sweep line:\n%s" % broker.log_text())
        c = summary_counts(catchup(o, tmp, config, "--from-csv", csv, "--ca", CA,
                                   "--from-request", "1").stdout)
        if c["stored"] != 2:
            t.fail("a run after the keys were swept stored %r" % c)
        broker.stop_ok()
        t.log("dedup keys swept after dedup_retention; the index stays bounded")


def test_scheduled_bad_rows(o, certs):
    """A catchup_csv with more bad rows than the broker logs one by one: the first 20 are logged,
    then one line says the rest are only counted, and the run's summary counts all of them (also
    those past the first chunk of 256 rows, which later chunks read again)."""
    with t.TempDir("catchup-badrows") as tmp:
        now = int(time.time() * 1000)
        good = [row(1000 + i, 20, certs[i % len(certs)], now - 30 * MIN, now - 20 * MIN)
                for i in range(300)]
        bad = ['"%d","20 -- Issued"' % (2000 + i) for i in range(50)]
        csv = tmp.join("export.csv")
        write_csv(csv, good, extra_lines=bad)
        config, settings = t.write_config(tmp, catchup="on", catchup_csv=csv, catchup_ca=CA,
                                          catchup_interval="1h", sinks=t.unique_sink(tmp))
        broker = t.Broker(o.certrelayd, config, tmp, settings["listen"]).start()
        summary = "catch-up of " + CA + ": "
        t.wait_for(lambda: summary in broker.log_text() and "bad rows" in broker.log_text(),
                   "the scheduled run's summary", timeout=60)
        text = broker.log_text()
        logged = text.count(" skipped: ")
        if logged != 20 or "not logged one by one" not in text:
            t.fail("%d bad rows logged one by one, want 20 and the counting line\n%s"
                   % (logged, text[-3000:]))
        if ", 50 bad rows" not in text:
            t.fail("the summary does not count the 50 bad rows:\n%s" % text[-3000:])
        broker.stop_ok()
        t.log("a source full of bad rows: 20 logged, the rest counted in the summary")


def main():
    o = opts()
    certs = load_certs(o.fixtures)
    test_reconcile(o, certs)
    test_migration(o, certs)
    test_scheduled(o, certs)
    test_key_retention(o, certs)
    test_scheduled_bad_rows(o, certs)


if __name__ == "__main__":
    t.main(main)
