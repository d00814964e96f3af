"""The email sink end to end: certrelayd delivers scripted events to real SMTP servers (Debian's
python3-aiosmtpd) on 127.0.0.1 in the three TLS modes, with AUTH, and the messages are read back
with Python's email package.

Checked:
- plain SMTP with AUTH, STARTTLS (required) with AUTH, implicit TLS (smtps://);
- envelope recipients are exactly to + cc + bcc (+ the requester's address found in the
  certificate's subjectAltName), Bcc never appears as a header;
- a common name holding "\\r\\nBcc: x@evil" adds no header and no recipient; a requester address
  holding CR/LF and angle brackets is skipped with a log line and the message still goes out;
- Date and Message-ID are present and well-formed; the Message-ID of a retry (after a 451) is the
  one of the first attempt;
- the .cer attachment is the certificate, byte for byte;
- a non-ASCII subject template is RFC 2047 encoded and decodes back; the HTML alternative
  escapes certificate values;
- starttls = required against a server without STARTTLS is retried, never sent in clear;
  a refused recipient (550) dead-letters at once; an event without any recipient is done;
- the SMTP password never appears in the log.
"""

import base64
import email
import email.policy
import email.utils
import json
import re

import crstest as t
from smtp_server import SmtpServer
from testca import TestCA

HOSTILE_CN = "evil.example.com\r\nBcc: x@evil.example"
HTML_CN = "<script>alert(1)</script>"
HOSTILE_EMAIL = "x@evil.example>\r\nRCPT TO:<y@evil.example"
PASSWORD = "s3cret-pass-for-smtp"
CA_PROPS = {"SanitizedCAName": "Sinks Test CA", "MachineDNSName": "ca01.sinks.test"}


def start_smtp(**kw):
    for _ in range(20):
        try:
            return SmtpServer(t.free_port(), **kw).start()
        except (OSError, RuntimeError):
            continue
    t.fail("no free port for an SMTP server")


def deliveries(state, sink):
    return t.db_rows(state, "SELECT e.event_id, e.kind, d.state, d.attempts, d.last_status, "
                            "d.last_error FROM deliveries d JOIN events e ON "
                            "e.rowid = d.event_rowid WHERE d.sink = ?", (sink,))


def parse(msg):
    return email.message_from_bytes(msg.data, policy=email.policy.default)


def by_sender(srv, sender):
    return [m for m in srv.messages() if m.mail_from == sender]


def check_common_headers(m, sink):
    """Date parses; Message-ID is <EVENT_ID.SINK@HOST>; one line each."""
    if m["Date"] is None or email.utils.parsedate_to_datetime(m["Date"]) is None:
        t.fail("Date missing or unparseable: %r" % m["Date"])
    mid = m["Message-ID"]
    if not mid or not re.fullmatch(r"<[0-9a-f-]{36}\.%s@[A-Za-z0-9._-]+>" % sink, mid):
        t.fail("Message-ID not <event_id.%s@host>: %r" % (sink, mid))
    if m["X-CertRelay-Event-Id"] not in mid:
        t.fail("Message-ID does not carry the event id")
    return mid


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("email") as tmp:
        ca = TestCA(tmp.join("pki"), "Sinks Test CA")
        server = ca.issue("server", "127.0.0.1", server=True)
        leaf = ca.issue("leaf", "evil.example.com", email="requester@example.com")
        leaf_serial = "%x" % ca.serial
        users = {"relay": PASSWORD}

        plain = start_smtp(mode="plain", users=users, reject={"nobody@example.com"})
        starttls = start_smtp(mode="starttls", cert=server.cert, key=server.key, users=users)
        smtps = start_smtp(mode="implicit", cert=server.cert, key=server.key, defer_first=1)

        with open(tmp.join("password"), "w") as f:
            f.write(PASSWORD + "\n")
        with open(tmp.join("body.txt"), "w") as f:
            f.write("Text part: {{kind_title}} for {{common_name}}\nSerial {{serial}}\n")
        with open(tmp.join("body.html"), "w") as f:
            f.write("<html><body><h1>{{kind_title}}</h1><p>{{common_name}}</p></body></html>\n")

        auth = [("username", "relay"), ("password_file", tmp.join("password"))]
        fast = [("backoff_initial", "50ms"), ("backoff_max", "2s")]
        sinks = [
            ("plain", [("type", "email"), ("url", "smtp://127.0.0.1:%d" % plain.port),
                       ("starttls", "off"), ("from", "CertRelay <plain@example.com>"),
                       ("to", "pki@example.com"), ("cc", "Audit Team <audit@example.com>"),
                       ("bcc", "hidden@example.com"), ("to_requester", "true"),
                       ("attach_certificate", "true"), ("events", "issued, revoked")]
             + auth + fast),
            ("starttls", [("type", "email"), ("url", "smtp://127.0.0.1:%d" % starttls.port),
                          ("starttls", "required"), ("ca_file", ca.cert),
                          ("from", "tls@example.com"), ("to", "ops@example.com"),
                          ("subject", "Zertifikat für {{common_name}} – {{event}}"),
                          ("body_file", tmp.join("body.txt")),
                          ("html_body_file", tmp.join("body.html")),
                          ("events", "issued, revoked")] + auth + fast),
            ("smtps", [("type", "email"), ("url", "smtps://127.0.0.1:%d" % smtps.port),
                       ("ca_file", ca.cert), ("from", "smtps@example.com"),
                       ("to", "sec@example.com")] + fast),
            ("notls", [("type", "email"), ("url", "smtp://127.0.0.1:%d" % plain.port),
                       ("from", "notls@example.com"), ("to", "pki@example.com"),
                       ("events", "issued"), ("max_attempts", "1000"),
                       ("backoff_initial", "50ms"), ("backoff_max", "200ms")] + auth),
            ("opportunistic", [("type", "email"), ("url", "smtp://127.0.0.1:%d" % plain.port),
                               ("starttls", "opportunistic"), ("from", "opp@example.com"),
                               ("to", "pki@example.com"), ("events", "issued")] + auth + fast),
            ("refused", [("type", "email"), ("url", "smtp://127.0.0.1:%d" % plain.port),
                         ("starttls", "off"), ("from", "refused@example.com"),
                         ("to", "nobody@example.com"), ("events", "issued")] + auth + fast),
            ("requesteronly", [("type", "email"), ("url", "smtp://127.0.0.1:%d" % plain.port),
                               ("starttls", "off"), ("from", "ro@example.com"),
                               ("to_requester", "true"), ("events", "startup")] + auth + fast),
        ]
        config, settings = t.write_config(tmp, sinks)
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        events = [
            {"event": "issued",
             "request": {"RequestID": 201, "RequesterName": "CORP\\alice", "Disposition": 20,
                         "CertificateTemplate": "WebServer"},
             "certificate": {"SerialNumber": leaf_serial,
                             "RawCertificate": {"base64": base64.b64encode(
                                 leaf.der_bytes()).decode()},
                             "CommonName": HOSTILE_CN, "CertificateTemplate": "WebServer"},
             "ca": CA_PROPS},
            {"event": "revoked",
             "request": {"RequestID": 202, "RequesterName": "CORP\\bob", "Disposition": 21,
                         "RevokedReason": 1},
             "certificate": {"SerialNumber": "0d0e0f", "CommonName": HTML_CN,
                             "EMail": HOSTILE_EMAIL},
             "ca": CA_PROPS},
            {"event": "startup", "ca": CA_PROPS},
        ]
        with open(tmp.join("events.json"), "w") as f:
            json.dump(events, f)
        t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--from",
               tmp.join("events.json"), "--spool-dir", settings["spool_dir"]], tmp)

        want = {"plain": (2, 1), "starttls": (2, 1), "smtps": (3, 1), "opportunistic": (1, 1),
                "refused": (1, 2), "requesteronly": (1, 1)}

        def settled():
            for sink, (n, st) in want.items():
                rows = deliveries(state, sink)
                if len(rows) != n or any(r[2] != st for r in rows):
                    return False
            rows = deliveries(state, "notls")
            return len(rows) == 1 and rows[0][3] >= 3

        t.wait_for(settled, "every email delivery to settle")
        ids = {r[1]: r[0] for r in deliveries(state, "smtps")}

        # --- plain + AUTH: recipients, headers, injection, attachment ------------------------
        msgs = by_sender(plain, "plain@example.com")
        if len(msgs) != 2:
            t.fail("want 2 messages from the plain sink, got %d" % len(msgs))
        for msg in msgs:
            m = parse(msg)
            if msg.authenticated != "relay":
                t.fail("plain sink did not authenticate")
            rcpts = sorted(r.lower() for r in msg.rcpt_tos)
            issued = m["X-CertRelay-Event"] == "issued"
            want_rcpts = sorted(["pki@example.com", "audit@example.com", "hidden@example.com"] +
                                (["requester@example.com"] if issued else []))
            if rcpts != want_rcpts:
                t.fail("envelope recipients %r, want %r" % (rcpts, want_rcpts))
            head = msg.data.decode("utf-8", "replace").split("\r\n\r\n", 1)[0]
            for line in head.split("\r\n"):
                if "x@evil" in line and not line.startswith("Subject:"):
                    t.fail("certificate value outside the subject: %r" % line)
            if m.get_all("Bcc"):
                t.fail("a Bcc header was sent")
            for k in ("From", "To", "Cc", "Subject", "Date", "Message-ID"):
                if len(m.get_all(k) or []) != 1:
                    t.fail("header %s appears %d times" % (k, len(m.get_all(k) or [])))
            if "\n" in m["Subject"] or "\r" in m["Subject"]:
                t.fail("line break in the subject")
            if m["From"].addresses[0].addr_spec != "plain@example.com":
                t.fail("From: %r" % m["From"])
            to = [a.addr_spec for a in m["To"].addresses]
            if to != ["pki@example.com"] + (["requester@example.com"] if issued else []):
                t.fail("To: %r" % to)
            if [a.addr_spec for a in m["Cc"].addresses] != ["audit@example.com"]:
                t.fail("Cc: %r" % m["Cc"])
            check_common_headers(m, "plain")
            if issued:
                if "evil.example.com  Bcc: x@evil.example" not in m["Subject"]:
                    t.fail("hostile subject not neutralized as expected: %r" % m["Subject"])
                atts = [p for p in m.iter_attachments()]
                if len(atts) != 1 or atts[0].get_filename() != leaf_serial + ".cer":
                    t.fail("attachment missing or misnamed: %r" % [a.get_filename()
                                                                  for a in atts])
                if atts[0].get_content_type() != "application/pkix-cert":
                    t.fail("attachment type %s" % atts[0].get_content_type())
                if atts[0].get_content() != leaf.der_bytes():
                    t.fail("attachment is not the certificate")
                body = m.get_body(("plain",)).get_content()
                if any(ln.startswith("Bcc:") for ln in body.splitlines()):
                    t.fail("a value with a line break made a line of its own in the body")
                if "issued a certificate" not in body or "Serial number:  " + leaf_serial \
                        not in body:
                    t.fail("default body missing facts:\n%s" % body)
        if "requester address" not in broker.log_text():
            t.fail("the hostile requester address was not logged as skipped")

        # --- STARTTLS + AUTH, custom templates, RFC 2047, HTML escaping --------------------------
        msgs = by_sender(starttls, "tls@example.com")
        if len(msgs) != 2 or not all(x.tls and x.authenticated == "relay" for x in msgs):
            t.fail("STARTTLS sink: want 2 authenticated messages over TLS")
        for msg in msgs:
            m = parse(msg)
            raw_subject = [ln for ln in msg.data.decode("ascii", "replace").split("\r\n")
                           if ln.startswith("Subject:")][0]
            if "=?UTF-8?B?" not in raw_subject:
                t.fail("non-ASCII subject not RFC 2047 encoded: %r" % raw_subject)
            if not m["Subject"].startswith("Zertifikat für "):
                t.fail("subject does not decode: %r" % m["Subject"])
            check_common_headers(m, "starttls")
            html = m.get_body(("html",)).get_content()
            text = m.get_body(("plain",)).get_content()
            if not text.startswith("Text part: "):
                t.fail("body_file not used: %r" % text)
            if m["X-CertRelay-Event"] == "revoked":
                if "&lt;script&gt;" not in html or "<script>" in html:
                    t.fail("HTML part does not escape the common name: %r" % html)

        # --- implicit TLS, default templates, same Message-ID on retry ------------------------
        msgs = smtps.messages(include_deferred=True)
        if not all(x.tls for x in msgs):
            t.fail("smtps sink sent without TLS")
        first = msgs[0]
        if not first.deferred:
            t.fail("the server did not defer the first message")
        first_id = parse(first)["Message-ID"]
        again = [x for x in msgs[1:] if parse(x)["Message-ID"] == first_id]
        if len(again) != 1:
            t.fail("the retry after 451 did not reuse Message-ID %s" % first_id)
        subjects = {parse(x)["X-CertRelay-Event"]: parse(x)["Subject"]
                    for x in smtps.messages()}
        for kind, want_subject in (("issued", "Certificate issued"),
                                   ("revoked", "Certificate revoked"),
                                   ("startup", "Certificate Services started")):
            if want_subject not in subjects.get(kind, ""):
                t.fail("default subject for %s: %r" % (kind, subjects.get(kind)))
        for x in smtps.messages():
            m = parse(x)
            mid = check_common_headers(m, "smtps")
            if ids[t.KINDS[m["X-CertRelay-Event"]]] not in mid:
                t.fail("Message-ID does not carry its event id")

        # --- STARTTLS required, refused, opportunistic, nobody to send to -----------------------
        if by_sender(plain, "notls@example.com"):
            t.fail("starttls = required sent a message without TLS")
        (row,) = deliveries(state, "notls")
        if row[2] != 0:
            t.fail("starttls = required failure must be retried, got %r" % (row,))
        t.log("STARTTLS refused: %d attempts, last error %r" % (row[3], row[5]))
        (row,) = deliveries(state, "refused")
        if row[3] != 1 or row[4] != 550:
            t.fail("refused recipient: want dead after 1 attempt with 550, got %r" % (row,))
        if len(by_sender(plain, "opp@example.com")) != 1:
            t.fail("opportunistic sink did not send in clear to a server without STARTTLS")
        if by_sender(plain, "ro@example.com"):
            t.fail("a message without recipients was sent")

        broker.stop_ok()
        if PASSWORD in broker.log_text():
            t.fail("the SMTP password appears in the log")
        for srv in (plain, starttls, smtps):
            srv.stop()


if __name__ == "__main__":
    t.main(test)
