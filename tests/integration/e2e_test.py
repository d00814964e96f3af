"""End to end: the broker plus `certrelay simulate --count 10000 --concurrency 16`. Every event
is acked and yields exactly one set of files in the drop; certificates and CRLs are byte-identical
to what the event carried (compared against the base64 inside each event's own JSON, since the
simulator keeps no copy) and parse with openssl; nothing else is left in the directory."""

import base64
import os
import subprocess

import crstest as t

COUNT = int(os.environ.get("CRS_E2E_COUNT", "10000"))
EVENTS = "issued,revoked,crl_issued,denied"
# The default file name: events without a request (crl_issued) get "-<event_id>" appended.
NAME = "{{request_id}}-{{event}}"


def expected_files(doc, stem):
    """The file set the file sink writes for one event, with the bytes each DER file holds."""
    files = {stem + ".json": None}
    cert = doc.get("certificate") or {}
    if doc["event"] == "crl_issued":
        for i, crl in enumerate(doc.get("crls") or []):
            idx = crl.get("ca_cert_index", i)
            base = stem if idx == 0 else "%s-%d" % (stem, idx)
            if crl.get("crl_base64"):
                files[base + ".crl"] = base64.b64decode(crl["crl_base64"])
            if crl.get("delta_crl_base64"):
                files[base + "-delta.crl"] = base64.b64decode(crl["delta_crl_base64"])
    elif cert.get("der_base64"):
        files[stem + ".cer"] = base64.b64decode(cert["der_base64"])
    return files


def check_drop(out, count, event_ids):
    """Checks the drop holds exactly one set of files per event and nothing else: one JSON per
    event id, request ids 1..count each once (crl_issued events carry no request), and the DER
    files each event implies, byte for byte."""
    docs = t.json_docs(out)
    expected = {}
    by_request = {}
    ncrl = 0
    for name, doc in docs.items():
        rid = (doc.get("request") or {}).get("id")
        if rid is None:
            stem = "-%s-%s" % (doc["event"], doc["event_id"])
        else:
            stem = "%s-%s" % (rid, doc["event"])
        if name != stem + ".json":
            t.fail("unexpected name %s for %s" % (name, stem))
        if rid is None:
            if doc["event"] != "crl_issued":
                t.fail("%s has no request id" % name)
            ncrl += 1
        elif rid in by_request:
            t.fail("request %d delivered twice: %s and %s" % (rid, by_request[rid], name))
        else:
            by_request[rid] = name
        expected.update(expected_files(doc, stem))
    if sorted(d["event_id"] for d in docs.values()) != sorted(event_ids):
        t.fail("event ids in the drop differ from the committed ones")
    if len(by_request) + ncrl != count or not set(by_request) <= set(range(1, count + 1)):
        t.fail("%d request ids + %d CRL events in the drop, want %d" % (
            len(by_request), ncrl, count))
    present = set(t.drop_files(out))
    if present != set(expected):
        t.fail("drop differs: unexpected %s, missing %s" % (
            sorted(present - set(expected))[:10], sorted(set(expected) - present)[:10]))
    for name, data in expected.items():
        if data is None:
            continue
        with open(os.path.join(out, name), "rb") as f:
            if f.read() != data:
                t.fail("%s differs from the DER carried by its event" % name)
    return docs, expected


def openssl_check(out, expected):
    cers = sorted(n for n in expected if n.endswith(".cer"))
    crls = sorted(n for n in expected if n.endswith(".crl"))
    if not cers:
        t.fail("no certificate files in the drop")
    for name in cers[:5]:
        subprocess.run(["openssl", "x509", "-inform", "DER", "-noout", "-in",
                        os.path.join(out, name)], check=True)
    for name in crls[:3]:
        subprocess.run(["openssl", "crl", "-inform", "DER", "-noout", "-in",
                        os.path.join(out, name)], check=True)
    t.log("openssl parsed %d certificates and %d CRLs" % (min(5, len(cers)), min(3, len(crls))))


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("e2e") as tmp:
        # The name includes the event id: crl_issued events have no request id, so the default
        # "{{request_id}}-{{event}}" would give them all one name.
        config, settings = t.write_config(tmp, sinks={"archive": {
            "type": "file", "directory": tmp.join("out"), "concurrency": "16",
            "name": NAME}})
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        # A long stub timeout: this test wants every event acked, not spooled, even on the
        # sanitizer build of a busy machine.
        p = t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--count",
                   str(COUNT), "--concurrency", "16", "--events", EVENTS, "--spool-dir",
                   settings["spool_dir"], "--timeout-ms", "60000"], tmp)
        t.log(p.stdout.strip())
        counts = t.parse_counts(p.stdout)
        if counts.get("acked") != COUNT:
            t.fail("acked %s of %d" % (counts.get("acked"), COUNT))

        out = tmp.join("out")
        t.wait_for(lambda: len([n for n in t.drop_files(out) if n.endswith(".json")]) >= COUNT,
                   "%d JSON files in the drop" % COUNT, timeout=900, interval=0.5)
        state = settings["state_dir"]
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state != 1")
                   [0][0] == 0, "every delivery to be recorded as delivered", timeout=300)
        ids = [r[0] for r in t.db_rows(state, "SELECT event_id FROM events")]
        if len(ids) != COUNT:
            t.fail("%d events committed, want %d" % (len(ids), COUNT))
        docs, expected = check_drop(out, COUNT, ids)
        openssl_check(out, expected)
        kinds = sorted(set(d["event"] for d in docs.values()))
        t.log("kinds delivered: %s" % ", ".join(kinds))
        broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
