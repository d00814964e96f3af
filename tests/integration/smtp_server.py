"""A real SMTP server for the email tests: Debian's python3-aiosmtpd, recording every message.

    srv = SmtpServer(mode="starttls", cert=..., key=..., users={"relay": "s3cret"}).start()
    ... srv.port ... srv.messages() -> [Message(mail_from, rcpt_tos, data, authenticated)]
    srv.stop()

mode: "plain" (no TLS), "starttls" (STARTTLS offered and required before MAIL), or "implicit"
(TLS from the first byte, as smtps:// on port 465). users: when given, AUTH is offered (PLAIN
and LOGIN) and required before MAIL. reject: a set of recipient addresses refused with 550.
defer_first: the first N messages are answered 451 after DATA (recorded with deferred=True).

Run as a program it serves until interrupted and prints each message:

    smtp_server.py [--port N] [--mode plain|starttls|implicit --cert PEM --key PEM]
"""

import argparse
import logging
import ssl
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

# aiosmtpd warns (rightly) about AUTH without TLS, which the plain mode tests on purpose.
logging.getLogger("mail.log").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", message="Requiring AUTH while not requiring TLS")
warnings.filterwarnings("ignore", message=".*login_data is deprecated")


class Message:
    def __init__(self, mail_from, rcpt_tos, data, authenticated, tls, deferred=False):
        self.deferred = deferred
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.data = data  # bytes, as received after the DATA command (dot-unstuffed)
        self.authenticated = authenticated
        self.tls = tls


class _Handler:
    def __init__(self, owner):
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.owner.reject:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        # STARTTLS sets session.ssl; implicit TLS only shows on the transport.
        tls = session.ssl is not None or \
            server.transport.get_extra_info("ssl_object") is not None
        with self.owner.lock:
            deferred = self.owner.defer_first > 0
            if deferred:
                self.owner.defer_first -= 1
            msg = Message(envelope.mail_from, envelope.rcpt_tos, envelope.original_content
                          or envelope.content, session.auth_data, tls, deferred)
            self.owner.log.append(msg)
        return "451 4.3.0 try again later" if deferred else "250 2.0.0 queued"


class SmtpServer:
    def __init__(self, port, mode="plain", cert=None, key=None, users=None, reject=(),
                 defer_first=0):
        self.lock = threading.Lock()
        self.defer_first = defer_first
        self.log = []
        self.port = port
        self.mode = mode
        self.users = users
        self.reject = {r.lower() for r in reject}
        kwargs = {"server_hostname": "localhost", "decode_data": False}
        ctx = None
        if mode in ("starttls", "implicit"):
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
        if mode == "starttls":
            kwargs["tls_context"] = ctx
            kwargs["require_starttls"] = True
        if users is not None:
            kwargs["authenticator"] = self._authenticate
            kwargs["auth_required"] = True
            # Plain mode tests AUTH without TLS; the TLS modes keep aiosmtpd's safe default.
            kwargs["auth_require_tls"] = mode != "plain"
        self.controller = Controller(_Handler(self), hostname="127.0.0.1", port=port,
                                     ssl_context=ctx if mode == "implicit" else None, **kwargs)

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        ok = self.users.get(login) == password
        return AuthResult(success=ok, auth_data=login if ok else None)

    def start(self):
        self.controller.start()
        return self

    def stop(self):
        self.controller.stop()

    def messages(self, include_deferred=False):
        with self.lock:
            return [m for m in self.log if include_deferred or not m.deferred]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8025)
    ap.add_argument("--mode", default="plain", choices=["plain", "starttls", "implicit"])
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    srv = SmtpServer(a.port, a.mode, a.cert, a.key).start()
    print("listening on 127.0.0.1:%d (%s)" % (a.port, a.mode), flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            msgs = srv.messages()
            for m in msgs[seen:]:
                print("from", m.mail_from, "to", m.rcpt_tos, flush=True)
                print(m.data.decode("utf-8", "replace"), flush=True)
            seen = len(msgs)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
