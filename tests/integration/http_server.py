"""A real HTTP/1.1 and HTTPS server for the webhook tests: it records every request and answers
from a per-path script.

    srv = RecordingServer(tls=(cert, key), client_ca=None).start()
    srv.script("/retry", [(503, {"Retry-After": "1"}), (503, {}), (200, {})])
    srv.script("/bad", [(400, {})])
    ... srv.url("/retry") ... srv.requests("/retry") ... srv.stop()

Paths without a script (or whose script is used up) answer 204 No Content. Connections are kept
alive (HTTP/1.1), as a real receiver would, so connection reuse is exercised.

Run as a program it serves until interrupted and prints each request:

    http_server.py [--port N] [--cert PEM --key PEM]
"""

import argparse
import http.server
import socket
import ssl
import threading
import time


class Request:
    def __init__(self, method, path, headers, body, raw_headers):
        self.method = method
        self.path = path
        self.headers = headers          # {lower-case name: value}; repeated names joined by ", "
        self.raw_headers = raw_headers  # [(name, value)] as received
        self.body = body
        self.received = time.time()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet
        pass

    def _handle(self):
        srv = self.server.recording
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        raw = [(k, v) for k, v in self.headers.raw_items()]
        headers = {}
        for k, v in raw:
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        req = Request(self.command, self.path, headers, body, raw)
        status, extra = srv._next(self.path, req)
        if "_delay" in extra:
            # A scripted slow answer (longer than the sink's timeout, say).
            time.sleep(float(extra.pop("_delay")))
        if srv.delay:
            # A slow receiver keeps deliveries in flight (the crash test kills the broker then).
            # The request is already recorded: it counts as seen even if never answered.
            time.sleep(srv.delay)
        payload = b"" if status in (204, 304) else (b'{"status":%d}' % status)
        self.send_response(status)
        for k, v in extra.items():
            self.send_header(k, v)
        if status not in (204, 304):
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_POST = _handle
    do_PUT = _handle
    do_GET = _handle


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that goes away (a killed broker, a canceled transfer) is part of the tests.
        import sys
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(request, client_address)


class RecordingServer:
    def __init__(self, port=0, tls=None, client_ca=None, delay=0.0):
        self.lock = threading.Lock()
        self.delay = delay
        self.scripts = {}
        self.log = []
        self.httpd = _Server(("127.0.0.1", port), _Handler)
        self.httpd.recording = self
        self.tls = tls is not None
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(tls[0], tls[1])
            if client_ca:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(client_ca)
            # The handshake happens in the handler thread (do_handshake_on_connect=False would
            # need manual handling); a failed handshake only ends that connection.
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = None

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path):
        return "%s://127.0.0.1:%d%s" % ("https" if self.tls else "http", self.port, path)

    def script(self, path, responses):
        """responses: [(status, {header: value} or a function returning one)], used one per
        request, then 204s. A "_delay" entry (seconds) is not a header: the answer waits."""
        with self.lock:
            self.scripts[path] = list(responses)

    def _next(self, path, req):
        with self.lock:
            self.log.append(req)
            queue = self.scripts.get(path)
            if queue:
                status, headers = queue.pop(0)
                # Headers may be computed when the request arrives (an HTTP-date "in 3 s").
                return status, dict(headers() if callable(headers) else headers)
        return 204, {}

    def requests(self, path=None):
        with self.lock:
            return [r for r in self.log if path is None or r.path == path]


def start_recording_server(**kw):
    """A RecordingServer on a free port below 32768 (tries again if another process took it)."""
    import crstest
    for _ in range(20):
        try:
            return RecordingServer(port=crstest.free_port(), **kw).start()
        except OSError:
            continue
    crstest.fail("no free port for a test server")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    tls = (a.cert, a.key) if a.cert else None
    srv = RecordingServer(a.port, tls).start()
    print("listening on", srv.url("/"), flush=True)
    seen = 0
    try:
        while True:
            time.sleep(0.2)
            reqs = srv.requests()
            for r in reqs[seen:]:
                print(r.method, r.path, dict(r.headers), r.body[:200], flush=True)
            seen = len(reqs)
    except KeyboardInterrupt:
        srv.stop()


if __name__ == "__main__":
    main()
