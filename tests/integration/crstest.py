"""Shared helpers for CertRelay's integration tests (real processes, sockets and files).

Each test makes its own temporary directory, writes a broker configuration into it, starts
`certrelayd` as a child process with its log in that directory, and talks to it over its Unix
socket, either with the raw protocol client below (a hand-written protobuf encoder: the tests
need no Python protobuf package) or through `certrelay simulate`.

Timeouts here only guard against hangs: a test never asserts how fast something happened.
"""

import json
import os
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import uuid

# Generous: the sanitizer build is several times slower than the plain one.
DEFAULT_TIMEOUT = 120.0

KINDS = {
    "issued": 0x1, "pending": 0x2, "denied": 0x4, "revoked": 0x8, "retrieve_pending": 0x10,
    "crl_issued": 0x20, "shutdown": 0x40, "startup": 0x80, "unrevoked": 0x100, "imported": 0x200,
}


def log(msg):
    print(msg, flush=True)


def fail(msg):
    raise AssertionError(msg)


def wait_for(cond, what, timeout=DEFAULT_TIMEOUT, interval=0.05):
    """Polls cond() until it returns a true value (returned), or fails naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            fail("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(interval)


def free_port():
    """A free TCP port on 127.0.0.1 below 32768 (ephemeral ports start there on this machine)."""
    import random
    for _ in range(200):
        port = random.randint(20000, 32000)
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            s.close()
    fail("no free port below 32768")


class TempDir:
    """A short temporary directory (Unix socket paths are limited to 107 bytes). Kept when the
    test fails or CRS_KEEP_TMP is set, so its logs can be read."""

    def __init__(self, name):
        self.path = tempfile.mkdtemp(prefix="crs-%s-" % name, dir="/tmp")
        self.ok = False

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None and not os.environ.get("CRS_KEEP_TMP"):
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            log("test files kept in %s" % self.path)
        return False

    def join(self, *parts):
        return os.path.join(self.path, *parts)


# ---- Protobuf, by hand: just the fields the tests need (see proto/certrelay.proto) ----

def varint(n):
    out = bytearray()
    n &= (1 << 64) - 1
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_varint(num, value):
    return varint(num << 3 | 0) + varint(value)


def f_bytes(num, data):
    if isinstance(data, str):
        data = data.encode("utf-8")
    return varint(num << 3 | 2) + varint(len(data)) + data


def hello_payload(version=1, stub_version="test", ca_config="TESTCA\\Test CA"):
    hello = f_varint(1, version) + f_bytes(2, stub_version) + f_bytes(3, ca_config)
    return f_bytes(1, hello)


def event_bytes(event_id=None, kind="issued", request_id=1, common_name=None, der=None,
                template=None):
    """A packed certrelay.v1.Event."""
    event_id = event_id or str(uuid.uuid4())
    ev = f_bytes(1, event_id) + f_varint(2, KINDS[kind]) + f_varint(3, int(time.time() * 1000))
    ev += f_bytes(4, f_bytes(1, "TESTCA\\Test CA") + f_bytes(2, "Test CA"))
    req = f_varint(1, request_id) + f_varint(3, 20)
    if template:
        req += f_bytes(15, template)
    ev += f_bytes(5, req)
    cert = b""
    if der is not None:
        cert += f_bytes(1, "1a2b3c") + f_bytes(2, der)
    if common_name is not None:
        cert += f_bytes(6, common_name)
    if template:
        cert += f_bytes(9, template)
    if cert:
        ev += f_bytes(6, cert)
    return ev


def event_payload(ev):
    return f_bytes(2, ev)


def frame(payload):
    return struct.pack(">I", len(payload)) + payload


def parse_fields(data):
    """Yields (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(data):
        key, i = _read_varint(data, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(data, i)
        elif wt == 2:
            n, i = _read_varint(data, i)
            v = data[i:i + n]
            i += n
        else:
            fail("unexpected wire type %d" % wt)
        yield num, wt, v


def _read_varint(data, i):
    shift = v = 0
    while True:
        b = data[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def decode_answer(payload):
    """('ack', event_id, None) or ('nack', event_id, reason) from an Envelope payload."""
    for num, _, body in parse_fields(payload):
        if num in (3, 4):
            fields = {n: v for n, _, v in parse_fields(body)}
            eid = fields.get(1, b"").decode()
            reason = fields.get(2, b"").decode() if num == 4 else None
            return ("ack" if num == 3 else "nack"), eid, reason
    fail("answer is neither Ack nor Nack: %r" % payload[:64])


class Client:
    """A raw protocol client over the broker's Unix socket."""

    def __init__(self, path, timeout=DEFAULT_TIMEOUT):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def hello(self, version=1):
        self.send(frame(hello_payload(version)))

    def send_event(self, ev):
        self.send(frame(event_payload(ev)))

    def read_frame(self):
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + n:
                    payload = self.buf[4:4 + n]
                    self.buf = self.buf[4 + n:]
                    return payload
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk

    def answer(self):
        payload = self.read_frame()
        if payload is None:
            fail("connection closed while waiting for an answer")
        return decode_answer(payload)

    def closed_by_peer(self):
        """True once the broker has closed the connection (reads EOF or a reset)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


# ---- The broker process ----

def _pairs(items):
    """(key, value) pairs from a dict or from a list of pairs (a list lets a key repeat)."""
    return list(items.items()) if isinstance(items, dict) else list(items)


def write_config(tmp, sinks=None, **broker):
    """Writes tmp/certrelay.ini; returns (path, settings dict). sinks: {name: keys} or a list of
    (name, keys), where keys is {key: value} or a list of (key, value) pairs, so that a key may
    repeat (a webhook's `header`)."""
    settings = {
        "listen": tmp.join("certrelay.sock"),
        "state_dir": tmp.join("state"),
        "spool_dir": tmp.join("spool"),
        "log_level": "info",
    }
    settings.update(broker)
    if sinks is None:
        sinks = {"archive": {"type": "file", "directory": tmp.join("out"), "concurrency": "16"}}
    lines = ["[broker]"] + ["%s = %s" % kv for kv in settings.items()] + [""]
    for name, keys in _pairs(sinks):
        lines.append("[sink.%s]" % name)
        lines += ["%s = %s" % kv for kv in _pairs(keys)]
        lines.append("")
    path = tmp.join("certrelay.ini")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path, settings


def child_env(tmp):
    env = dict(os.environ)
    env["CERTRELAY_HOME"] = tmp.join("home")
    return env


class Broker:
    """One certrelayd process; its stderr goes to tmp/broker-N.log."""

    count = 0

    def __init__(self, exe, config, tmp, sock):
        self.exe, self.config, self.tmp, self.sock = exe, config, tmp, sock
        Broker.count += 1
        self.logpath = tmp.join("broker-%d.log" % Broker.count)
        self.proc = None

    def start(self, wait=True):
        self.logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen([self.exe, "--config", self.config], stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=child_env(self.tmp))
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=DEFAULT_TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                fail("broker exited with %s during start:\n%s" % (self.proc.returncode,
                                                                  self.log_text()))
            return "broker ready" in self.log_text()
        wait_for(ready, "the broker to start", timeout)

    def log_text(self):
        with open(self.logpath, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig=signal.SIGTERM, timeout=DEFAULT_TIMEOUT):
        """Sends sig and waits for the exit status (fails on timeout)."""
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            fail("broker did not exit within %.0f s of signal %d:\n%s" % (
                timeout, sig, self.log_text()[-4000:]))
        self.logf.close()
        return rc

    def kill9(self):
        self.proc.kill()
        self.proc.wait()
        self.logf.close()

    def stop_ok(self):
        rc = self.stop()
        if rc != 0:
            fail("broker exited with %d after SIGTERM:\n%s" % (rc, self.log_text()[-6000:]))


def send_acked(sock, events):
    """Sends [(event id, packed Event)] on one new connection, one at a time, and fails unless
    each is acked."""
    c = Client(sock)
    c.hello()
    for i, (eid, ev) in enumerate(events):
        c.send_event(ev)
        got = c.answer()
        if got != ("ack", eid, None):
            fail("event %d (%s) answered %r" % (i, eid, got))
    c.close()


def db_rows(state_dir, sql, args=()):
    """Runs a read-only query on the broker's queue (WAL lets us read while it writes)."""
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(state_dir, "certrelay.db"), uri=True,
                          timeout=30)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def drop_files(directory):
    try:
        return sorted(os.listdir(directory))
    except FileNotFoundError:
        return []


def json_docs(directory):
    """{file name: parsed JSON} of every .json file in the drop directory."""
    out = {}
    for name in drop_files(directory):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), "rb") as f:
                out[name] = json.loads(f.read().decode("utf-8"))
    return out


# The default file-name template. It is unique per event: events without a request (crl_issued,
# startup, shutdown) get "-<event_id>" appended by the file sink.
NAME_PER_EVENT = "{{request_id}}-{{event}}"


def unique_sink(tmp, **extra):
    keys = {"type": "file", "directory": tmp.join("out"), "concurrency": "16",
            "name": NAME_PER_EVENT}
    keys.update(extra)
    return {"archive": keys}


def send_one(sock, request_id, kind="issued"):
    """Sends one event with a fresh id over a new connection, fails unless it is acked, and
    returns its id."""
    c = Client(sock)
    c.hello()
    eid = str(uuid.uuid4())
    c.send_event(event_bytes(eid, kind, request_id))
    if c.answer() != ("ack", eid, None):
        fail("event %s (request %d) was not acked" % (eid, request_id))
    c.close()
    return eid


def check_once_per_event(out, state_dir, count):
    """Checks that the drop holds exactly one JSON per committed event (and `count` of them):
    distinct event ids equal to the events table, and no request id twice."""
    ids = [r[0] for r in db_rows(state_dir, "SELECT event_id FROM events")]
    if len(ids) != count or len(set(ids)) != count:
        fail("%d events rows (%d distinct), want %d" % (len(ids), len(set(ids)), count))
    docs = json_docs(out)
    seen = {}
    for name, doc in docs.items():
        rid = (doc.get("request") or {}).get("id")
        if rid is not None:
            if rid in seen:
                fail("request %d delivered twice (%s, %s)" % (rid, seen[rid], name))
            seen[rid] = name
    if sorted(d["event_id"] for d in docs.values()) != sorted(ids):
        fail("event ids in the drop (%d) differ from the committed ones (%d)" % (
            len(docs), len(ids)))
    return docs


def run(cmd, tmp, timeout=DEFAULT_TIMEOUT * 5, check=True):
    """Runs a command to completion, returns CompletedProcess with text output."""
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(tmp),
                       timeout=timeout)
    p.stdout = p.stdout.decode("utf-8", "replace")
    p.stderr = p.stderr.decode("utf-8", "replace")
    if check and p.returncode != 0:
        fail("%s exited with %d\nstdout:\n%s\nstderr:\n%s" % (
            " ".join(cmd), p.returncode, p.stdout[-4000:], p.stderr[-4000:]))
    return p


def parse_counts(text):
    """Reads 'sent N', 'acked N', 'spooled N' (in any punctuation) from simulator output."""
    import re
    counts = {}
    for key in ("sent", "acked", "spooled", "failed", "lost"):
        m = re.search(r"\b%s\b\s*[:=]?\s*(\d+)" % key, text)
        if m:
            counts[key] = int(m.group(1))
    return counts


def args(*names):
    """Parses the --name PATH options CTest passes (all required here). No abbreviations:
    --certrelay must never be taken for --certrelayd."""
    import argparse
    p = argparse.ArgumentParser(allow_abbrev=False)
    for n in ("certrelayd", "certrelay"):
        p.add_argument("--" + n, required=n in names)
    return p.parse_args()


def main(test):
    try:
        test()
    except AssertionError as e:
        log("FAIL: %s" % e)
        sys.exit(1)
    log("PASS")
