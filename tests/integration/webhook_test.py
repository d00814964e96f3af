"""The webhook sink end to end: certrelayd delivers scripted events (sent by `certrelay simulate
--from`) to real HTTP and HTTPS servers on 127.0.0.1 started by this test.

Checked:
- each format's body is what its receiver expects (JSON event document, CloudEvents 1.0
  structured mode, a Teams Adaptive Card message, a Slack blocks message);
- the Standard Webhooks signature verifies with an independent HMAC computation, webhook-id is
  the event id, the bearer token and the configured (repeated) header lines are sent;
- no certificate value reaches a header (the common name carries CR/LF and a fake header);
- TLS with a CA made by this test works, also with a client certificate; a wrong CA fails and is
  retried, never delivered; insecure = true delivers and logs a warning;
- 503, 503, 200: delivered after two retries, with the receiver's Retry-After (seconds, then an
  HTTP-date) used as the delay; 400: dead-lettered after one attempt; an answer slower than the
  sink's timeout: retried;
- routing by `events =` and `templates =`;
- a large CRL event (body built on the threadpool) arrives intact and signed;
- secrets (signing secret, bearer token, a URL that embeds a token) never appear in the log.
"""

import base64
import email.utils
import hashlib
import hmac
import json
import os
import re
import time
import uuid

import crstest as t
from http_server import RecordingServer
from testca import TestCA

HOSTILE_CN = "evil.example.com\r\nX-Injected: yes"
CA_PROPS = {"SanitizedCAName": "Sinks Test CA", "MachineDNSName": "ca01.sinks.test"}


def script(leaf_der, crl):
    b64 = base64.b64encode(leaf_der).decode()
    crl_ca = dict(CA_PROPS, **{"CertCount": 1, "CRLState.0": 3,
                               "RawCRL.0": {"base64": base64.b64encode(crl).decode()}})
    return [
        {"event": "issued",
         "request": {"RequestID": 101, "RequesterName": "CORP\\alice", "Disposition": 20,
                     "CertificateTemplate": "WebServer"},
         "certificate": {"SerialNumber": "0a0b0c", "RawCertificate": {"base64": b64},
                         "CommonName": HOSTILE_CN, "DistinguishedName": "CN=evil.example.com",
                         "CertificateTemplate": "WebServer"},
         "ca": CA_PROPS},
        {"event": "revoked",
         "request": {"RequestID": 102, "RequesterName": "CORP\\bob", "Disposition": 21,
                     "RevokedReason": 1, "CertificateTemplate": "User"},
         "certificate": {"SerialNumber": "0d0e0f", "CommonName": "bob",
                         "CertificateTemplate": "User"},
         "ca": CA_PROPS},
        {"event": "startup", "ca": CA_PROPS},
        {"event": "shutdown", "ca": CA_PROPS},
        {"event": "crl_issued", "ca": crl_ca},
    ]


def start_server(**kw):
    """A RecordingServer on a free port below 32768 (tries again if another process took it)."""
    for _ in range(20):
        try:
            return RecordingServer(port=t.free_port(), **kw).start()
        except OSError:
            continue
    t.fail("no free port for a test server")


def deliveries(state, sink):
    return t.db_rows(state, "SELECT e.event_id, d.state, d.attempts, d.last_status, d.last_error "
                            "FROM deliveries d JOIN events e ON e.rowid = d.event_rowid "
                            "WHERE d.sink = ?", (sink,))


def verify_signature(req, secret_b64):
    wid = req.headers.get("webhook-id")
    ts = req.headers.get("webhook-timestamp")
    sig = req.headers.get("webhook-signature")
    if not (wid and ts and sig):
        t.fail("signature headers missing: %r" % req.headers)
    if not re.fullmatch(r"\d+", ts):
        t.fail("webhook-timestamp is not an integer: %r" % ts)
    key = base64.b64decode(secret_b64)
    mac = hmac.new(key, ("%s.%s." % (wid, ts)).encode() + req.body, hashlib.sha256).digest()
    want = "v1," + base64.b64encode(mac).decode()
    if want not in sig.split(" "):
        t.fail("signature does not verify: got %r, want %r" % (sig, want))


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("webhook") as tmp:
        ca = TestCA(tmp.join("pki"), "Sinks Test CA")
        other = TestCA(tmp.join("pki-other"), "Some Other CA")
        server_cert = ca.issue("server", "127.0.0.1", server=True)
        client_cert = ca.issue("client", "certrelay", client=True)
        leaf = ca.issue("leaf", "evil.example.com")

        web = start_server()
        tls = start_server(tls=(server_cert.cert, server_cert.key))
        mtls = start_server(tls=(server_cert.cert, server_cert.key), client_ca=ca.cert)
        web.script("/retry", [
            (503, {"Retry-After": "1"}),
            (503, lambda: {"Retry-After": email.utils.formatdate(time.time() + 3,
                                                                 usegmt=True)}),
            (200, {})])
        web.script("/bad", [(400, {})])
        web.script("/slow", [(204, {"_delay": "3"})])

        secret = base64.b64encode(os.urandom(32)).decode()
        token = "tok-" + uuid.uuid4().hex
        url_token = "T" + uuid.uuid4().hex
        files = {"secret": "whsec_%s\n" % secret, "token": "  %s\n" % token,
                 "slack_url": web.url("/slack/services/%s" % url_token) + "\n"}
        for name, text in files.items():
            with open(tmp.join(name), "w") as f:
                f.write(text)

        fast = [("backoff_initial", "50ms"), ("backoff_max", "10s")]
        sinks = [
            ("json", [("type", "webhook"), ("url", web.url("/json")), ("format", "json"),
                      ("secret_file", tmp.join("secret")),
                      ("bearer_token_file", tmp.join("token")),
                      ("header", "X-Tenant: pki"), ("header", "X-Second: two"),
                      ("events", "issued, revoked")] + fast),
            ("cloudevents", [("type", "webhook"), ("url", web.url("/ce")),
                             ("format", "cloudevents")] + fast),
            ("teams", [("type", "webhook"), ("url", web.url("/teams")), ("format", "teams"),
                       ("events", "issued")] + fast),
            ("slack", [("type", "webhook"), ("url_file", tmp.join("slack_url")),
                       ("format", "slack"), ("events", "issued")] + fast),
            ("tls", [("type", "webhook"), ("url", tls.url("/tls")), ("ca_file", ca.cert),
                     ("events", "issued")] + fast),
            ("mtls", [("type", "webhook"), ("url", mtls.url("/mtls")), ("ca_file", ca.cert),
                      ("client_cert", client_cert.cert), ("client_key", client_cert.key),
                      ("events", "issued")] + fast),
            ("insecure", [("type", "webhook"), ("url", tls.url("/insecure")),
                          ("insecure", "true"), ("events", "issued")] + fast),
            ("tlswrong", [("type", "webhook"), ("url", tls.url("/tlswrong")),
                          ("ca_file", other.cert), ("events", "issued"),
                          ("max_attempts", "1000"), ("backoff_initial", "50ms"),
                          ("backoff_max", "200ms")]),
            ("retry", [("type", "webhook"), ("url", web.url("/retry")),
                       ("events", "startup")] + fast),
            ("bad", [("type", "webhook"), ("url", web.url("/bad")),
                     ("events", "shutdown")] + fast),
            ("routed", [("type", "webhook"), ("url", web.url("/routed")),
                        ("templates", "User")] + fast),
            ("slow", [("type", "webhook"), ("url", web.url("/slow")), ("timeout", "500ms"),
                      ("events", "startup")] + fast),
            ("crl", [("type", "webhook"), ("url", web.url("/crl")), ("events", "crl_issued"),
                     ("secret_file", tmp.join("secret"))] + fast),
        ]
        config, settings = t.write_config(tmp, sinks)
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        # A CRL large enough that its body is built on the threadpool (over 256 KiB packed).
        big_crl = os.urandom(600 * 1024)
        with open(tmp.join("events.json"), "w") as f:
            json.dump(script(leaf.der_bytes(), big_crl), f)
        t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--from",
               tmp.join("events.json"), "--spool-dir", settings["spool_dir"]], tmp)

        # Routing: which sinks got a row for which events.
        want_rows = {"json": 2, "cloudevents": 5, "crl": 1, "teams": 1, "slack": 1, "tls": 1,
                     "mtls": 1, "insecure": 1, "tlswrong": 1, "retry": 1, "bad": 1, "routed": 1,
                     "slow": 1}

        def settled():
            for sink, n in want_rows.items():
                rows = deliveries(state, sink)
                if len(rows) != n:
                    return False
                if sink == "bad":
                    if any(r[1] != 2 for r in rows):
                        return False
                elif sink == "tlswrong":
                    if any(r[2] < 3 for r in rows):
                        return False
                elif any(r[1] != 1 for r in rows):
                    return False
            return True

        t.wait_for(settled, "every delivery to settle")
        ids = {r[0] for r in deliveries(state, "cloudevents")}

        # --- json: body, signature, webhook-id, bearer token, extra headers -----------------
        reqs = web.requests("/json")
        if len(reqs) != 2:
            t.fail("want 2 requests to /json, got %d" % len(reqs))
        for r in reqs:
            doc = json.loads(r.body)
            if doc.get("schema") != "certrelay.event/1" or doc["event"] not in ("issued",
                                                                                 "revoked"):
                t.fail("json body is not the event document: %r" % doc)
            if r.headers.get("webhook-id") != doc["event_id"] or doc["event_id"] not in ids:
                t.fail("webhook-id %r is not the event id %r" % (r.headers.get("webhook-id"),
                                                                 doc["event_id"]))
            verify_signature(r, secret)
            if r.headers.get("authorization") != "Bearer " + token:
                t.fail("bearer token not sent: %r" % r.headers.get("authorization"))
            if r.headers.get("x-tenant") != "pki" or r.headers.get("x-second") != "two":
                t.fail("configured header lines not sent: %r" % r.headers)
            if r.headers.get("content-type") != "application/json":
                t.fail("json content type: %r" % r.headers.get("content-type"))
        t.log("json: 2 signed deliveries verified")

        # --- cloudevents --------------------------------------------------------------------
        types = set()
        for r in web.requests("/ce"):
            ce = json.loads(r.body)
            if r.headers.get("content-type") != "application/cloudevents+json; charset=utf-8":
                t.fail("cloudevents content type: %r" % r.headers.get("content-type"))
            for attr in ("specversion", "id", "source", "type", "time", "datacontenttype",
                         "data"):
                if attr not in ce:
                    t.fail("cloudevents attribute %s missing: %r" % (attr, ce))
            if ce["specversion"] != "1.0" or ce["id"] not in ids:
                t.fail("bad cloudevents envelope: %r" % ce)
            if ce["source"] != "/certrelay/ca01.sinks.test/Sinks%20Test%20CA":
                t.fail("cloudevents source: %r" % ce["source"])
            if ce["data"]["event_id"] != ce["id"]:
                t.fail("cloudevents data is not the event document")
            types.add(ce["type"])
        if types != {"org.certrelay.certificate.issued", "org.certrelay.certificate.revoked",
                     "org.certrelay.ca.startup", "org.certrelay.ca.shutdown",
                     "org.certrelay.crl.issued"}:
            t.fail("cloudevents types: %r" % types)

        # --- teams and slack ----------------------------------------------------------------
        (r,) = web.requests("/teams")
        msg = json.loads(r.body)
        att = msg["attachments"][0]
        card = att["content"]
        if (msg["type"] != "message" or
                att["contentType"] != "application/vnd.microsoft.card.adaptive" or
                card["type"] != "AdaptiveCard" or
                card["$schema"] != "http://adaptivecards.io/schemas/adaptive-card.json" or
                not card["version"] or not isinstance(card["body"], list) or not card["body"]):
            t.fail("not an Adaptive Card message: %r" % msg)
        (r,) = [x for x in web.log if x.path.startswith("/slack/")]
        msg = json.loads(r.body)
        if msg["blocks"][0]["type"] != "header" or "Certificate issued" not in msg["text"]:
            t.fail("not a Slack blocks message: %r" % msg)

        # --- no certificate value in any header ----------------------------------------------
        for r in web.requests() + tls.requests() + mtls.requests():
            for k, v in r.raw_headers:
                if "evil" in v or "injected" in k.lower() or "\r" in v or "\n" in v:
                    t.fail("certificate value in a header: %s: %r" % (k, v))

        # --- TLS -----------------------------------------------------------------------------
        for path in ("/tls", "/insecure"):
            if len(tls.requests(path)) != 1:
                t.fail("want one delivery to %s" % path)
        if len(mtls.requests("/mtls")) != 1:
            t.fail("client-certificate delivery missing")
        if tls.requests("/tlswrong"):
            t.fail("a delivery through a wrong CA reached the server")
        (row,) = deliveries(state, "tlswrong")
        if row[1] != 0 or "certificate" not in (row[4] or "").lower():
            t.fail("wrong CA: want pending with a certificate error, got %r" % (row,))
        t.log("wrong CA: %d attempts, last error %r" % (row[2], row[4]))

        # --- retries ---------------------------------------------------------------------------
        reqs = web.requests("/retry")
        if len(reqs) != 3 or len({r.headers["webhook-id"] for r in reqs}) != 1:
            t.fail("want 3 attempts of one event at /retry, got %d" % len(reqs))
        if len({r.body for r in reqs}) != 1:
            t.fail("retries sent different bodies")
        (row,) = deliveries(state, "retry")
        if row[1] != 1 or row[2] != 3:
            t.fail("retry: want delivered after 3 attempts, got %r" % (row,))
        text = broker.log_text()
        delays = {int(a): int(d) for a, d in re.findall(
            r"sink retry: event \S+ attempt (\d+) failed: .*; retrying in (\d+) ms", text)}
        if delays.get(1) != 1000:
            t.fail("Retry-After: 1 not honoured: %r" % delays)
        if not 1000 <= delays.get(2, -1) <= 3000:
            t.fail("Retry-After as an HTTP-date not honoured: %r" % delays)
        (row,) = deliveries(state, "bad")
        if row[2] != 1 or row[3] != 400 or "HTTP 400" not in (row[4] or ""):
            t.fail("400: want dead after one attempt with status 400, got %r" % (row,))
        if len(web.requests("/bad")) != 1:
            t.fail("400: the receiver saw more than one attempt")
        (row,) = deliveries(state, "slow")
        # The receiver hangs on the first request only; on a loaded machine a later attempt may
        # time out too, so the count is at least 2, and the row must end up delivered.
        if row[1] != 1 or row[2] < 2 or not re.search(
                r"sink slow: .*attempt 1 failed: .*timed out", text):
            t.fail("a timed-out attempt must be retried: %r" % (row,))
        (r,) = web.requests("/crl")
        verify_signature(r, secret)
        doc = json.loads(r.body)
        if base64.b64decode(doc["crls"][0]["crl_base64"]) != big_crl:
            t.fail("the large CRL did not arrive intact")
        (r,) = web.requests("/routed")
        if json.loads(r.body)["event"] != "revoked":
            t.fail("templates = User routed the wrong event")

        broker.stop_ok()
        text = broker.log_text()
        if "insecure = true" not in text:
            t.fail("insecure = true did not log a warning")
        for s in (secret, token, url_token):
            if s in text:
                t.fail("a secret appears in the log")
        for srv in (web, tls, mtls):
            srv.stop()


if __name__ == "__main__":
    t.main(test)
