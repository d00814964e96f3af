#!/usr/bin/python3
"""Integration test of `certrelay simulate` without a broker: every event must land in the spool.

  sim_from_test.py CERTRELAY FIXTURE_DIR

1. --from with a script holding every event kind, hostile strings included: one spool file per
   event, in script order, each decoding to exactly the properties the script gave (and never the
   archived key).
2. Synthetic events: real DER certificates and CRLs that openssl parses, serials that match.
3. Bad scripts and bad options: a clear message and a non-zero exit, nothing spooled.

Spool files are decoded with crstest's small protobuf reader, so the test needs no protobuf
package: a spool file is one frame, a 4-byte big-endian length and an Envelope whose field 2 is the
Event (proto/certrelay.proto).
"""
import base64
import hashlib
import os
import subprocess
import sys
import tempfile

import crstest as t

CERTRELAY = sys.argv[1]
FIXTURES = sys.argv[2]
FAILURES = []


def check(cond, what):
    if not cond:
        FAILURES.append(what)
        print("FAIL:", what, file=sys.stderr)


# --- protobuf wire format: crstest's reader, as a map of field number to values ------------------

def fields(buf):
    """Returns {field_number: [values]}; length-delimited values are bytes, varints ints."""
    out = {}
    for num, _, v in t.parse_fields(bytes(buf)):
        out.setdefault(num, []).append(v)
    return out


def one(f, num, default=None):
    return f[num][0] if num in f else default


def signed(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def read_spool_file(path):
    data = open(path, "rb").read()
    n = int.from_bytes(data[:4], "big")
    assert n == len(data) - 4, "frame length mismatch in %s" % path
    env = fields(data[4:])
    return fields(env[2][0])


# Event fields
EV_ID, EV_KIND, EV_TIME, EV_CA, EV_REQ, EV_CERT, EV_CRLS, EV_EXTRA, EV_RAW = range(1, 10)
KINDS = {"issued": 1, "pending": 2, "denied": 4, "revoked": 8, "retrieve_pending": 16,
         "crl_issued": 32, "shutdown": 64, "startup": 128, "unrevoked": 256, "imported": 512}


def spool_events(spool):
    names = sorted(n for n in os.listdir(spool) if n.endswith(".crev"))
    return [(n, read_spool_file(os.path.join(spool, n))) for n in names]


def run(args, **kw):
    return subprocess.run([CERTRELAY] + args, capture_output=True, text=True, timeout=120, **kw)


def figures(stdout):
    out = {}
    for line in stdout.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1].isdigit():
            out[parts[0]] = int(parts[1])
    return out


def b64(data):
    return {"base64": base64.b64encode(data).decode()}


def fixture(name):
    return open(os.path.join(FIXTURES, name), "rb").read()


# --- 1. scripted events -------------------------------------------------------------------------

HOSTILE_CN = [
    "../../etc/x",
    "CON",
    "line1\r\nline2",
    "A" * 4096,
    "\u00e9t\u00e9 \U0001F512 \u202e\u0645\u0631\u062d\u0628\u0627",
    "nul-free but\ttabbed\x01\x1f",
]
ARCHIVED_KEY_MARKER = b"SCRIPTED-ARCHIVED-KEY-MUST-NOT-LEAK"


def scripted_events():
    leaf = fixture("leaf01.der")
    crl, delta = fixture("crl.der"), fixture("delta.der")
    ca = {"SanitizedCAName": "Contoso-CA", "MachineDNSName": "ca01.contoso.test"}
    events = []
    rid = 100
    for kind in ["issued", "pending", "denied", "revoked", "retrieve_pending", "unrevoked",
                 "imported"]:
        for cn in HOSTILE_CN if kind == "issued" else [kind + "-cn"]:
            rid += 1
            req = {"RequestID": rid, "Disposition": 20, "RequesterName": "CONTOSO\\" + cn[:20],
                   "SubmittedWhen": {"date": "2026-01-02T03:04:05.678Z"},
                   "RawArchivedKey": b64(ARCHIVED_KEY_MARKER),
                   "RequestAttributes": "CertificateTemplate:User\nccm:" + cn[:50]}
            if kind == "revoked":
                # A revoked request has Disposition 21: with 20, certsrv's 0x8 means a release
                # from hold, which the stub reports as unrevoked.
                req.update({"Disposition": 21,
                            "RevokedWhen": {"date": "2026-02-03T04:05:06+01:00"},
                            "RevokedReason": 1})
            cert = None
            if kind not in ("pending", "denied"):
                cert = {"SerialNumber": "61aa%04x" % rid, "RawCertificate": b64(leaf),
                        "CommonName": cn, "NotBefore": {"date": "2025-01-01T00:00:00Z"}}
            ev = {"event": kind, "request": req, "ca": ca,
                  "attributes": {"ccm": cn, "CertificateTemplate": "User"},
                  "extensions": [{"oid": "2.5.29.15", "critical": True,
                                  "value": {"base64": "AwIFoA=="}},
                                 {"oid": "1.3.6.1.4.1.311.20.2", "flags": 131072,
                                  "value": b64(b"\x1e\x04\x00U\x00s")}],
                  "comment": "scripted %d" % rid}
            if cert is not None:
                ev["certificate"] = cert
            events.append(ev)
    events.append({"event": "crl_issued",
                   "ca": dict(ca, **{"CertCount": 2, "CRLState.0": 3, "CRLState.1": 4,
                                     "RawCRL.0": b64(crl), "RawDeltaCRL.0": b64(delta),
                                     "RawCRL.1": b64(b"\x30\x00")})})
    events.append({"event": "startup", "ca": ca})
    events.append({"event": "shutdown"})
    return events


def test_scripted(tmp):
    import json
    events = scripted_events()
    script = os.path.join(tmp, "events.json")
    with open(script, "w", encoding="utf-8") as f:
        json.dump(events, f, ensure_ascii=False)
    spool = os.path.join(tmp, "spool-from")
    r = run(["simulate", "--from", script, "--pipe", os.path.join(tmp, "absent.sock"),
             "--spool-dir", spool, "--timeout-ms", "500", "--count", "3"])
    check(r.returncode == 0, "simulate --from exits 0 (stderr: %s)" % r.stderr)
    fig = figures(r.stdout)
    check(fig.get("sent") == len(events), "sent %s == %d" % (fig.get("sent"), len(events)))
    check(fig.get("spooled") == len(events), "all spooled: %s" % r.stdout)
    check(fig.get("acked") == 0 and fig.get("failed") == 0, "none acked/failed: %s" % r.stdout)
    check("latency_us p50" in r.stdout, "latency line printed")

    got = spool_events(spool)
    check(len(got) == len(events), "one spool file per event (%d)" % len(got))
    leaf = fixture("leaf01.der")
    for (name, ev), want in zip(got, events):
        raw = open(os.path.join(spool, name), "rb").read()
        check(ARCHIVED_KEY_MARKER not in raw, "%s: no archived key" % name)
        check(one(ev, EV_ID).decode() + ".crev" == name, "%s: named by event id" % name)
        kind = KINDS[want["event"]]
        check(one(ev, EV_KIND) == kind, "%s: kind %s in script order" % (name, want["event"]))
        check(one(ev, EV_RAW) == kind, "%s: raw_exit_event" % name)
        ca = fields(one(ev, EV_CA, b""))
        if "ca" in want and "SanitizedCAName" in want["ca"]:
            check(one(ca, 2) == b"Contoso-CA", "%s: ca sanitized name" % name)
        if "request" in want:
            req = fields(one(ev, EV_REQ))
            check(one(req, 1) == want["request"]["RequestID"], "%s: request id" % name)
            check(one(req, 8) == 1767323045678, "%s: SubmittedWhen as Unix ms" % name)
            check(len(req.get(14, [])) == 2, "%s: two attributes" % name)
            if want["event"] == "revoked":
                check(one(req, 10) == 1770087906000, "%s: RevokedWhen with offset" % name)
                check(one(req, 12) == 1, "%s: RevokedReason" % name)
        if "certificate" in want:
            cert = fields(one(ev, EV_CERT))
            check(one(cert, 6) == want["certificate"]["CommonName"].encode(),
                  "%s: hostile common name round-trips byte for byte" % name)
            check(one(cert, 2) == leaf, "%s: certificate DER identical" % name)
            check(one(cert, 1) == want["certificate"]["SerialNumber"].encode(), "%s: serial" % name)
            exts = [fields(x) for x in cert.get(12, [])]
            check([one(x, 1) for x in exts] == [b"2.5.29.15", b"1.3.6.1.4.1.311.20.2"],
                  "%s: extensions in order" % name)
            check(one(exts[0], 2) == 1 and one(exts[0], 4) == 1, "%s: critical flag" % name)
            check(one(exts[1], 4) == 131072, "%s: explicit flags" % name)
        elif want["event"] in ("pending", "denied"):
            # certsrv still enumerates the request's extensions, but there is no certificate.
            cert = fields(one(ev, EV_CERT, b""))
            check(2 not in cert and 1 not in cert, "%s: no certificate for %s" %
                  (name, want["event"]))
        if want["event"] == "crl_issued":
            crls = [fields(c) for c in ev.get(EV_CRLS, [])]
            check(len(crls) == 1, "%s: only the valid CRL index" % name)
            check(one(crls[0], 1, 0) == 0 and one(crls[0], 2) == fixture("crl.der") and
                  one(crls[0], 3) == fixture("delta.der"), "%s: base and delta CRL" % name)
        if want["event"] in ("startup", "shutdown"):
            check(EV_REQ not in ev and EV_CERT not in ev, "%s: CA identity only" % name)


# --- 2. synthetic events ------------------------------------------------------------------------

def openssl(args, data):
    return subprocess.run(["openssl"] + args, input=data, capture_output=True, timeout=60)


def test_synthetic(tmp):
    spool = os.path.join(tmp, "spool-sim")
    r = run(["simulate", "--pipe", os.path.join(tmp, "absent.sock"), "--spool-dir", spool,
             "--count", "60", "--concurrency", "4", "--timeout-ms", "500", "--seed", "7"])
    check(r.returncode == 0, "synthetic simulate exits 0 (stderr: %s)" % r.stderr)
    fig = figures(r.stdout)
    check(fig.get("sent") == 60 and fig.get("spooled") == 60, "60 spooled: %s" % r.stdout)
    got = spool_events(spool)
    check(len(got) == 60, "60 spool files")
    ids = set()
    kinds = set()
    certs_checked = crls_checked = 0
    for name, ev in got:
        kinds.add(one(ev, EV_KIND))
        if EV_REQ in ev:
            ids.add(one(fields(one(ev, EV_REQ)), 1))
        if EV_CERT in ev and certs_checked < 6:
            cert = fields(one(ev, EV_CERT))
            p = openssl(["x509", "-inform", "DER", "-noout", "-serial"], one(cert, 2))
            check(p.returncode == 0, "%s: openssl x509 parses the certificate" % name)
            serial = p.stdout.decode().strip().split("=")[1].lower()
            check(serial == one(cert, 1).decode(), "%s: SerialNumber matches the DER" % name)
            thumb = hashlib.sha1(one(cert, 2)).hexdigest()
            check(one(cert, 8).decode().replace(" ", "") == thumb,
                  "%s: CertificateHash is the DER's SHA-1 thumbprint" % name)
            certs_checked += 1
        for c in ev.get(EV_CRLS, []):
            c = fields(c)
            for num in (2, 3):
                p = openssl(["crl", "-inform", "DER", "-noout"], one(c, num))
                check(p.returncode == 0, "%s: openssl crl parses CRL field %d" % (name, num))
            crls_checked += 1
    check(len(ids) == len([1 for _, e in got if EV_REQ in e]), "request ids are unique")
    check(ids <= set(range(1, 61)), "request ids in 1..60")
    check(1 in kinds and len(kinds) >= 4, "a mix of kinds, mostly issued: %s" % sorted(kinds))
    check(certs_checked > 0, "some certificates checked")

    spool2 = os.path.join(tmp, "spool-sim-restricted")
    r = run(["simulate", "--pipe", os.path.join(tmp, "absent.sock"), "--spool-dir", spool2,
             "--count", "20", "--events", "revoked,crl_issued", "--timeout-ms", "500"])
    check(r.returncode == 0, "--events run exits 0")
    kinds = {one(ev, EV_KIND) for _, ev in spool_events(spool2)}
    check(kinds <= {8, 32} and kinds, "--events restricts kinds: %s" % sorted(kinds))
    check(crls_checked > 0 or 32 in kinds, "CRLs present somewhere")


# --- 3. bad scripts and options -----------------------------------------------------------------

def test_bad_input(tmp):
    cases = [
        ('[{"event": "issued"}, {"event": "pending"}, {"event": "x"}]',
         "event 3: unknown event name 'x'"),
        ('{"event": "issued"}', "expected a JSON array of events"),
        ('[{"event": "issued", "request": {"RequestID": "abc"}}]',
         "event 1: request.RequestID: expected a number (LONG)"),
        ('[{"event": "issued", "certificate": {"RawCertificate": {"base64": "!!"}}}]',
         "event 1: certificate.RawCertificate: bad base64"),
        ('[{"event": "issued", "request": {"SubmittedWhen": {"date": "yesterday"}}}]',
         "event 1: request.SubmittedWhen: bad date"),
        ('[{"event": "issued", "requests": {}}]', "event 1: unknown key 'requests'"),
        ('[{"request": {}}]', "event 1: missing \"event\""),
        ('[{"event": "issued", "extensions": [{"critical": true}]}]',
         "event 1: extensions[0]: \"oid\" must be a non-empty string"),
        ('[{"event": "issued", "attributes": {"a": 1}}]',
         "event 1: attributes.a: value must be a string"),
        ('[{"event": "issued",\n "request": {"RequestID": 1,}}]', ":2:"),
    ]
    spool = os.path.join(tmp, "spool-bad")
    for i, (text, want) in enumerate(cases):
        path = os.path.join(tmp, "bad%d.json" % i)
        with open(path, "w") as f:
            f.write(text)
        r = run(["simulate", "--from", path, "--pipe", os.path.join(tmp, "absent.sock"),
                 "--spool-dir", spool])
        check(r.returncode != 0, "bad script %d exits non-zero" % i)
        check(path in r.stderr and want in r.stderr,
              "bad script %d: message %r in %r" % (i, want, r.stderr.strip()))
    check(not os.path.exists(spool) or not os.listdir(spool), "nothing spooled for bad scripts")

    r = run(["simulate", "--from", os.path.join(tmp, "missing.json")])
    check(r.returncode != 0 and "missing.json" in r.stderr, "missing script reported")
    r = run(["simulate", "--events", "issued,bogus"])
    check(r.returncode != 0 and "bogus" in r.stderr, "bad --events reported")
    r = run(["simulate", "--count", "-1"])
    check(r.returncode != 0 and "--count" in r.stderr, "bad --count reported")
    r = run(["simulate", "--frobnicate", "1"])
    check(r.returncode != 0 and "--frobnicate" in r.stderr, "unknown option reported")
    r = run(["nosuchcommand"])
    check(r.returncode != 0 and "nosuchcommand" in r.stderr, "unknown command reported")
    r = run(["--version"])
    check(r.returncode == 0 and r.stdout.startswith("certrelay "), "--version")


def main():
    with tempfile.TemporaryDirectory(prefix="crs-simfrom-") as tmp:
        test_scripted(tmp)
        test_synthetic(tmp)
        test_bad_input(tmp)
    if FAILURES:
        print("%d check(s) failed" % len(FAILURES), file=sys.stderr)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
