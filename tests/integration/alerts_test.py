"""Expiry and CRL alerts with the real broker, real file drops and a real SMTP server.

Certificates are made with openssl (or carry their notAfter as certsrv sends it) and CRLs with
`openssl ca -gencrl`, with deadlines minutes or hours away and lead times chosen so that a stage
is due at once or a few seconds later: nothing waits for days. Nothing asserts wall-clock time:
a test waits for a positive sign (an alert that must come, a logged tick) before it checks that
another alert did not come.

1. Stages and routing: a WebServer certificate 5 days from notAfter gets one `expiring` (the 7d
   stage, not 30d and 7d), in the catch-all drop, the WebServer-only drop and a mail with the
   default subject; a User certificate given only as DER (20 days) gets the 30d stage in the
   catch-all drop only; an expired one gets `expired` once and no late `expiring`. A CRL whose
   nextUpdate is 1 hour away gets `crl_expiring`; an older CRL arriving after a newer one of the
   same CA key is ignored; a CRL 30 days away is quiet; a Teams webhook gets the CRL alert's
   card. `certrelay events --kind expiring` lists the alerts. A client sending an alert kind gets
   a Nack.
2. Cancellation: revoked -> no alert; renewed (same subject and template, later notAfter) -> no
   alert for the older one; revoked then released from hold -> alert. A finished schedule is
   deleted `retention` after its deadline.
3. Downtime: a schedule that passed three stages while the broker was down gets one alert after
   the restart, and none more after another restart.
4. Reload and bounds: lead times added by a live reload (SIGHUP) apply to the schedules already
   kept; 40 alerts due at once with `batch = 7` are raised over several ticks, each once.
"""

import json
import os
import re
import signal
import subprocess
import time
import uuid

import crstest as t
from http_server import RecordingServer
from smtp_server import SmtpServer

DAY = 86400 * 1000
HOUR = 3600 * 1000
CA = "TESTCA\\Test CA"
NAME = "{{event}}-{{serial}}-{{event_id}}"


def event(kind, serial=None, not_after=None, der=None, subject=None, cn=None, template=None,
          crls=None, request_id=1):
    """A packed certrelay.v1.Event as the stub builds it, with the fields the alerts use."""
    eid = str(uuid.uuid4())
    ev = t.f_bytes(1, eid) + t.f_varint(2, t.KINDS.get(kind) or ALERT_KINDS[kind])
    ev += t.f_varint(3, int(time.time() * 1000))
    ev += t.f_bytes(4, t.f_bytes(1, CA) + t.f_bytes(2, "Test CA") + t.f_bytes(3, "ca.test"))
    if serial is not None:
        req = t.f_varint(1, request_id) + t.f_varint(3, 20)
        if template:
            req += t.f_bytes(15, template)
        ev += t.f_bytes(5, req)
        cert = t.f_bytes(1, serial)
        if der is not None:
            cert += t.f_bytes(2, der)
        if not_after is not None:
            cert += t.f_varint(4, not_after)
        if subject:
            cert += t.f_bytes(5, subject)
        if cn:
            cert += t.f_bytes(6, cn)
        if template:
            cert += t.f_bytes(9, template)
        ev += t.f_bytes(6, cert)
    for index, der_crl in crls or []:
        ev += t.f_bytes(7, t.f_varint(1, index) + t.f_bytes(2, der_crl))
    return eid, ev


ALERT_KINDS = {"expiring": 0x400, "expired": 0x800, "crl_expiring": 0x1000}


def now_ms():
    return int(time.time() * 1000)


def sh(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def make_ca(d):
    """A CA for `openssl ca -gencrl`, and a DER certificate from it valid for 20 days."""
    os.makedirs(d)
    with open(os.path.join(d, "index.txt"), "w"):
        pass
    with open(os.path.join(d, "crlnumber"), "w") as f:
        f.write("01\n")
    with open(os.path.join(d, "ca.cnf"), "w") as f:
        f.write("[ca]\ndefault_ca = test\n[test]\ndir = %s\ndatabase = $dir/index.txt\n"
                "crlnumber = $dir/crlnumber\ncertificate = $dir/ca.crt\n"
                "private_key = $dir/ca.key\ndefault_md = sha256\n" % d)
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=Test CA", "-days", "30"],
       d)
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
        "-nodes", "-keyout", "u.key", "-out", "u.der", "-outform", "DER", "-subj",
        "/CN=user.test", "-days", "20"], d)
    with open(os.path.join(d, "u.der"), "rb") as f:
        return f.read()


def gencrl(d, name, period):
    sh(["openssl", "ca", "-config", "ca.cnf", "-gencrl", "-out", name + ".pem"] + period, d)
    sh(["openssl", "crl", "-in", name + ".pem", "-outform", "DER", "-out", name + ".der"], d)
    with open(os.path.join(d, name + ".der"), "rb") as f:
        return f.read()


def config(tmp, sinks, alerts, **broker):
    path, settings = t.write_config(tmp, sinks, **broker)
    with open(path, "a") as f:
        f.write("\n[alerts]\n" + "".join("%s = %s\n" % kv for kv in alerts.items()))
    return path, settings


def file_sink(tmp, d, **keys):
    s = {"type": "file", "directory": tmp.join(d), "name": NAME, "der": "false",
         "events": "alerts"}
    s.update(keys)
    return s


def alerts_in(tmp, d):
    return sorted(t.json_docs(tmp.join(d)).values(), key=lambda doc: doc["time"])


def settle(state):
    """Waits until no delivery is pending, so every alert committed is in its drop."""
    t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 0")[0][0]
               == 0, "the deliveries to finish")


def summary(docs):
    return sorted((d["event"], (d.get("certificate") or {}).get("serial"),
                   d["expiry"].get("lead_ms"), d["expiry"].get("ca_cert_index")) for d in docs)


def stages_and_routing(opts):
    with t.TempDir("alerts-stages") as tmp:
        smtp = SmtpServer(t.free_port(), mode="plain").start()
        hook = RecordingServer(port=t.free_port()).start()
        try:
            user_der = make_ca(tmp.join("ca"))
            near = gencrl(tmp.join("ca"), "near", ["-crlhours", "1"])
            time.sleep(1.1)  # the newer CRLs' thisUpdate is a second later
            far = gencrl(tmp.join("ca"), "far", ["-crldays", "30"])
            sinks = [("all", file_sink(tmp, "all")),
                     ("web", file_sink(tmp, "web", events="expiring", templates="WebServer")),
                     ("mail", {"type": "email", "url": "smtp://127.0.0.1:%d" % smtp.port,
                               "starttls": "off", "from": "pki@example.com",
                               "to": "web@example.com", "events": "expiring",
                               "templates": "WebServer"}),
                     ("chat", {"type": "webhook", "url": hook.url("/teams"), "format": "teams",
                               "events": "crl_expiring"})]
            path, settings = config(tmp, sinks, {"expiry_warn": "30d, 7d, 1d",
                                                 "crl_warn": "2h", "expired": "on"})
            state = settings["state_dir"]
            broker = t.Broker(opts.certrelayd, path, tmp, settings["listen"]).start()
            now = now_ms()
            evs = [
                event("issued", "a1", not_after=now + 5 * DAY, subject="CN=www.test",
                      cn="www.test", template="WebServer", request_id=11),
                event("issued", "b1", der=user_der, subject="CN=user.test", cn="user.test",
                      template="User", request_id=12),
                event("issued", "c1", not_after=now - HOUR, subject="CN=old.test",
                      cn="old.test", template="WebServer", request_id=13),
                # CA key 1: the newer CRL first, then an older one that must not replace it.
                event("crl_issued", crls=[(1, far), (2, far)]),
                event("crl_issued", crls=[(1, near)]),
                event("crl_issued", crls=[(0, near)]),
            ]
            t.send_acked(settings["listen"], evs)
            t.wait_for(lambda: len(alerts_in(tmp, "all")) >= 4, "four alerts")
            settle(state)
            got = summary(alerts_in(tmp, "all"))
            want = sorted([("expiring", "a1", 7 * DAY, None), ("expiring", "b1", 30 * DAY, None),
                           ("expired", "c1", 0, None), ("crl_expiring", None, 2 * HOUR, 0)])
            if got != want:
                t.fail("alerts: %r, want %r" % (got, want))
            docs = {d["event"] + (d.get("certificate") or {}).get("serial", ""): d
                    for d in alerts_in(tmp, "all")}
            a = docs["expiringa1"]
            if a["expiry"]["days_left"] != 5 or a["expiry"]["source_event_id"] != evs[0][0]:
                t.fail("alert of a1: %r" % a["expiry"])
            if a["request"]["template"] != "WebServer" or a["ca"]["config"] != CA:
                t.fail("alert of a1 lacks its source's content: %r" % a)
            if docs["expiringb1"]["expiry"]["days_left"] != 20 or \
                    not docs["expiringb1"]["certificate"].get("not_after") or \
                    "der_base64" in docs["expiringb1"]["certificate"]:
                t.fail("b1 (notAfter read from the DER) days_left %r" %
                       docs["expiringb1"]["expiry"])
            if docs["crl_expiring"]["expiry"]["days_left"] != 1:
                t.fail("CRL alert: %r" % docs["crl_expiring"]["expiry"])
            web = summary(alerts_in(tmp, "web"))
            if web != [("expiring", "a1", 7 * DAY, None)]:
                t.fail("WebServer-only sink got %r" % web)
            t.wait_for(lambda: len(smtp.messages()) >= 1, "the alert mail")
            msgs = smtp.messages()
            text = msgs[0].data.decode("utf-8", "replace")
            if len(msgs) != 1 or \
                    "Subject: [Test CA] Certificate expires in 5 days: www.test (serial a1)" \
                    not in text:
                t.fail("mail: %d messages, first:\n%s" % (len(msgs), text[:1500]))

            t.wait_for(lambda: hook.requests("/teams"), "the Teams card")
            posts = hook.requests("/teams")
            card = posts[0].body.decode("utf-8", "replace")
            if len(posts) != 1 or "CRL expiring" not in card or "Days left" not in card or \
                    "Next update" not in card:
                t.fail("Teams: %d POSTs, first:\n%s" % (len(posts), card[:2000]))

            # The admin commands see alerts like any event.
            p = t.run([opts.certrelay, "events", "--kind", "expiring", "--json", "--config",
                       path], tmp)
            listed = sorted(e.get("serial") for e in json.loads(p.stdout)["events"])
            if listed != ["a1", "b1"]:
                t.fail("certrelay events --kind expiring: %s" % p.stdout[:2000])

            # A client may not raise an alert kind.
            c = t.Client(settings["listen"])
            c.hello()
            eid, ev = event("expired", "0f0f", not_after=now)
            c.send_event(ev)
            ans = c.answer()
            c.close()
            if ans[0] != "nack" or ans[1] != eid or "raised by the broker only" not in ans[2]:
                t.fail("a forged alert was answered %r" % (ans,))
            if t.db_rows(state, "SELECT COUNT(*) FROM events WHERE event_id = ?", (eid,))[0][0]:
                t.fail("the forged alert was stored")
            states = dict(t.db_rows(state, "SELECT ident, state FROM expiry_schedules"))
            if states.get(CA + "|c1") != 1 or states.get(CA + "|1") != 0:
                t.fail("schedule states: %r" % states)
            broker.stop_ok()
        finally:
            smtp.stop()
            hook.stop()


def cancellation(opts):
    with t.TempDir("alerts-cancel") as tmp:
        path, settings = config(tmp, [("all", file_sink(tmp, "all"))],
                                {"expiry_warn": "1d", "expiry_skip_renewed": "true"},
                                retention="1s")
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, path, tmp, settings["listen"]).start()
        now = now_ms()
        soon = now + DAY + 4000  # the 1d stage is due in 4 seconds
        t.send_acked(settings["listen"], [
            event("issued", "c2", not_after=soon, subject="CN=revoked.test", template="WebServer"),
            event("revoked", "c2", not_after=soon, subject="CN=revoked.test",
                  template="WebServer"),
            event("issued", "e1", not_after=soon, subject="CN=renew.test", template="WebServer"),
            event("issued", "e2", not_after=now + 400 * DAY, subject="CN=renew.test",
                  template="WebServer"),
            event("issued", "f1", not_after=soon, subject="CN=hold.test", template="WebServer"),
            event("revoked", "f1", not_after=soon, subject="CN=hold.test", template="WebServer"),
            event("unrevoked", "f1", not_after=soon, subject="CN=hold.test",
                  template="WebServer"),
            # Expired already: `expired` at once, then its finished schedule is pruned
            # (retention = 1s after the deadline) by a later tick.
            event("issued", "0c0c", not_after=now - 2 * HOUR, subject="CN=gone.test",
                  template="WebServer"),
            # The sentinel: due last; when its alert is there, the others' time has passed.
            event("issued", "d1", not_after=soon + 2000, subject="CN=d.test", template="User"),
        ])
        t.wait_for(lambda: any((d.get("certificate") or {}).get("serial") == "d1"
                               for d in alerts_in(tmp, "all")), "the sentinel's alert")
        settle(state)
        got = summary(alerts_in(tmp, "all"))
        want = [("expired", "0c0c", 0, None), ("expiring", "d1", DAY, None),
                ("expiring", "f1", DAY, None)]
        if got != want:
            t.fail("alerts %r, want %r (revoked c2 and renewed e1 stay quiet)" % (got, want))
        states = dict(t.db_rows(state, "SELECT ident, state FROM expiry_schedules"))
        if states.get(CA + "|c2") != 2 or states.get(CA + "|e1") != 3 or \
                states.get(CA + "|e2") != 0 or CA + "|0c0c" in states:
            t.fail("schedule states: %r" % states)
        broker.stop_ok()


def downtime(opts):
    with t.TempDir("alerts-down") as tmp:
        sinks = [("all", file_sink(tmp, "all"))]
        path, settings = config(tmp, sinks, {"expiry_warn": "off", "expired": "on"},
                                log_level="debug")
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, path, tmp, settings["listen"]).start()
        # 12 hours left: past the 30d, 7d and 1d stages of the configuration that follows.
        t.send_acked(settings["listen"], [
            event("issued", "0b0b", not_after=now_ms() + 12 * HOUR, subject="CN=k.test",
                  template="WebServer")])
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM expiry_schedules")[0][0] == 1,
                   "the schedule")
        broker.stop_ok()
        if alerts_in(tmp, "all"):
            t.fail("alerts with no lead time configured: %r" % alerts_in(tmp, "all"))

        path, settings = config(tmp, sinks, {"expiry_warn": "30d, 7d, 1d", "expired": "on"},
                                log_level="debug")
        for run in range(2):
            broker = t.Broker(opts.certrelayd, path, tmp, settings["listen"]).start()
            t.wait_for(lambda: "expiry: tick looked at" in broker.log_text(), "the first tick")
            if run == 0:
                t.wait_for(lambda: len(alerts_in(tmp, "all")) >= 1, "the alert")
            settle(state)
            broker.stop_ok()
            got = summary(alerts_in(tmp, "all"))
            if got != [("expiring", "0b0b", DAY, None)]:
                t.fail("after restart %d: %r, want one alert for the 1d stage" % (run + 1, got))


def reload_and_batch(opts):
    with t.TempDir("alerts-reload") as tmp:
        sinks = [("all", file_sink(tmp, "all", concurrency="16"))]
        path, settings = config(tmp, sinks, {"expiry_warn": "off", "batch": "7"},
                                log_level="debug")
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, path, tmp, settings["listen"]).start()
        deadline = now_ms() + 12 * HOUR
        serials = ["%04x" % (0x1000 + i) for i in range(40)]
        t.send_acked(settings["listen"], [
            event("issued", s, not_after=deadline, subject="CN=%s.test" % s, template="WebServer")
            for s in serials])
        config(tmp, sinks, {"expiry_warn": "7d, 1d", "batch": "7"}, log_level="debug")
        broker.proc.send_signal(signal.SIGHUP)
        t.wait_for(lambda: len(alerts_in(tmp, "all")) >= 40, "40 alerts after the reload")
        settle(state)
        got = summary(alerts_in(tmp, "all"))
        if got != sorted(("expiring", s, DAY, None) for s in serials):
            t.fail("after the reload: %r" % got)
        ticks = [int(n) for n in re.findall(r"expiry: tick looked at (\d+) schedules",
                                            broker.log_text())]
        if not ticks or max(ticks) > 7 or sum(ticks) < 40:
            t.fail("ticks looked at %r schedules (batch 7, 40 due)" % ticks)
        broker.stop_ok()


def main():
    opts = t.args("certrelayd", "certrelay")
    stages_and_routing(opts)
    cancellation(opts)
    downtime(opts)
    reload_and_batch(opts)


if __name__ == "__main__":
    t.main(main)
