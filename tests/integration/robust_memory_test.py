"""Issue 13, items 4, 5 and 10: what a client can make the broker hold, measured as the kernel
sees it (VmRSS and VmHWM of the broker process), with generous headroom.

1. Amplification: a 4 MiB frame of empty repeated elements (crls, nested extensions, request
   attributes, unknown fields) and a 16 MiB one. Before: 292 MB to 2.9 GB of RSS, kept
   afterwards, and the loop stalled. Now each is refused before decoding, the peak stays within
   64 MiB of the start, other clients are answered meanwhile, and a legitimate 12 MiB CRL event
   is still acked.
2. Partial frames: 32 connections each sending an unfinished 60 MiB frame (before: 1.98 GB for
   as long as they liked). The broker's RSS stays under 450 MiB (its 256 MiB budget plus
   headroom) while a well-behaved client is still served.
3. Idle connections: 1,100 connections that never say Hello; a real client still gets its
   events acked (the oldest silent connections are evicted), and silent connections are closed.
4. Unanswered acks: a client that sends 30,000 events and never reads an answer costs the
   broker under 3 MiB beyond what the same events cost a client that reads them (before: 7 MB).
5. The deadlines and the connection limit, configured short ([broker] hello_timeout,
   frame_timeout, idle_timeout, max_connections): a silent connection, an unfinished frame and
   an idle connection after Hello are each closed; with every slot taken by silent connections a
   client is still served."""

import os
import resource
import socket
import struct
import time
import uuid

import crstest as t

MiB = 1024 * 1024


def asan_factor(pid):
    """Under AddressSanitizer (the sanitize preset) shadow memory and redzones cost extra: the
    bounds are scaled by this factor there. Its quarantine of freed memory is turned off for the
    broker (test()), so freed buffers still leave the process."""
    with open("/proc/%d/maps" % pid) as f:
        return 3 if "libasan" in f.read() else 1


def mem(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    t.fail("no %s for %d" % (key, pid))


def served(sock, what):
    """A fresh client gets an event acked: the broker is responsive."""
    try:
        c = t.Client(sock, timeout=30)
        c.hello()
        eid = str(uuid.uuid4())
        c.send_event(t.event_bytes(eid, "issued", 7))
        got = c.answer()
        c.close()
    except OSError as e:
        t.fail("%s: a well-behaved client failed: %s" % (what, e))
    if got != ("ack", eid, None):
        t.fail("%s: a well-behaved client got %r" % (what, got))


def bomb(size, kind):
    """An Event frame of about `size` bytes made of empty repeated elements."""
    head = t.f_bytes(1, str(uuid.uuid4())) + t.f_varint(2, 1)
    if kind == "crls":
        body = b"\x3a\x00" * ((size - len(head)) // 2)  # field 7, empty CrlInfo
    elif kind == "unknown":
        body = t.varint(100 << 3) + b"\x00"
        body = body * ((size - len(head)) // len(body))
    elif kind == "extensions":
        body = t.f_bytes(6, b"\x62\x00" * (size // 2))  # CertificateInfo{extensions: empty...}
    else:
        body = t.f_bytes(5, b"\x72\x00" * (size // 2))  # RequestInfo{attributes: empty...}
    return t.frame(t.event_payload(head + body))


def amplification(broker, sock):
    pid = broker.proc.pid
    start = mem(pid, "VmHWM")
    for size, kind in ((4 * MiB, "crls"), (4 * MiB, "unknown"), (4 * MiB, "extensions"),
                       (4 * MiB, "attributes"), (16 * MiB, "crls")):
        c = t.Client(sock, timeout=60)
        c.hello()
        c.send(bomb(size, kind))
        if not c.closed_by_peer():
            t.fail("a %d MiB frame of empty %s was not refused" % (size // MiB, kind))
        c.close()
        served(sock, "after a bomb of %s" % kind)
    peak = mem(pid, "VmHWM")
    t.log("amplification: peak RSS %d MiB (start %d MiB)" % (peak // MiB, start // MiB))
    if peak - start > 64 * MiB * asan_factor(pid):
        t.fail("the bombs raised the broker's peak RSS by %d MiB" % ((peak - start) // MiB))
    if "would decode to too much memory" not in broker.log_text():
        t.fail("the refusal is not logged")
    # A legitimate large event (a big CRL) still goes through.
    c = t.Client(sock, timeout=60)
    c.hello()
    eid = str(uuid.uuid4())
    crl = os.urandom(12 * MiB)
    ev = t.f_bytes(1, eid) + t.f_varint(2, t.KINDS["crl_issued"]) + t.f_bytes(
        7, t.f_varint(1, 0) + t.f_bytes(2, crl))
    c.send_event(ev)
    if c.answer() != ("ack", eid, None):
        t.fail("a 12 MiB CRL event was not acked")
    c.close()


def partial_frames(broker, sock):
    pid = broker.proc.pid
    conns = []
    for _ in range(32):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        s.sendall(t.frame(t.hello_payload()) + struct.pack(">I", 60 * MiB))
        s.settimeout(0.05)
        conns.append([s, 0])
    chunk = b"\x12" * MiB
    progress = True
    while progress:
        progress = False
        for entry in conns:
            if entry[1] >= 60 * MiB - MiB:
                continue
            try:
                entry[1] += entry[0].send(chunk)
                progress = True
            except (socket.timeout, BlockingIOError):
                pass
            except OSError:
                entry[1] = 60 * MiB  # closed at the frame deadline: done with this one
    sent = sum(e[1] for e in conns)
    rss = mem(pid, "VmRSS")
    t.log("partial frames: %d MiB sent by 32 connections, broker RSS %d MiB" % (
        sent // MiB, rss // MiB))
    if rss > 450 * MiB * asan_factor(pid):
        t.fail("32 unfinished frames hold %d MiB of broker memory" % (rss // MiB))
    served(sock, "while 32 connections hold unfinished frames")
    for s, _ in conns:
        s.close()
    t.wait_for(lambda: mem(pid, "VmRSS") < 200 * MiB * asan_factor(pid),
               "the memory to be released (at the latest at the frame deadline)")


def idle_connections(broker, sock):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    idle = []
    for _ in range(1100):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock)
        idle.append(s)
    for i in range(5):
        served(sock, "with 1,100 connections that never say Hello (%d)" % i)
    # Silent connections are closed: evicted at once, the rest after the Hello deadline.
    closed = 0
    for s in idle[:50]:
        s.settimeout(30)
        try:
            if s.recv(1) == b"":
                closed += 1
        except (ConnectionResetError, socket.timeout):
            closed += 1 if not isinstance(s, socket.timeout) else 0
    for s in idle:
        s.close()
    if closed < 50:
        t.fail("only %d of 50 silent connections were closed" % closed)
    t.log("idle connections: served with 1,100 silent ones; silent ones closed")


def unread_acks(broker, sock):
    pid = broker.proc.pid
    n = 30000
    frames = b"".join(t.frame(t.event_payload(t.event_bytes(str(uuid.uuid4()), "denied", i)))
                      for i in range(n))
    # The same events from a client that reads its answers warm the queue's caches.
    import threading
    c = t.Client(sock, timeout=60)
    c.hello()
    sender = threading.Thread(target=c.send, args=(frames,))
    sender.start()
    for _ in range(n):
        c.read_frame()
    sender.join()
    c.close()
    time.sleep(0.5)
    before = mem(pid, "VmRSS")
    frames = b"".join(t.frame(t.event_payload(t.event_bytes(str(uuid.uuid4()), "denied", i)))
                      for i in range(n))
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(sock)
    s.sendall(t.frame(t.hello_payload()))
    s.settimeout(0.5)
    off = 0
    stalls = 0
    while off < len(frames) and stalls < 6:
        try:
            off += s.send(frames[off:off + 65536])
            stalls = 0
        except socket.timeout:
            stalls += 1
    time.sleep(1.0)
    after = mem(pid, "VmRSS")
    t.log("unread answers: %d KiB of events sent, broker RSS %+d KiB" % (
        off // 1024, (after - before) // 1024))
    if after - before > 3 * MiB * asan_factor(pid):
        t.fail("a client that never reads its answers costs %d KiB" % ((after - before) // 1024))
    s.close()


def deadlines(opts, tmp):
    config, settings = t.write_config(tmp, state_dir=tmp.join("state-dl"),
                                      listen=tmp.join("dl.sock"), hello_timeout="300ms",
                                      frame_timeout="500ms", idle_timeout="1s",
                                      max_connections="8")
    broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
    sock = settings["listen"]
    try:
        silent = t.Client(sock, timeout=30)
        partial = t.Client(sock, timeout=30)
        partial.hello()
        partial.send(struct.pack(">I", 1000) + b"\x12" * 10)
        idle = t.Client(sock, timeout=30)
        idle.hello()
        for c, what in ((silent, "a silent connection"), (partial, "an unfinished frame"),
                        (idle, "an idle connection")):
            if not c.closed_by_peer():
                t.fail("%s was not closed" % what)
            c.close()
        text = broker.log_text()
        for needle in ("no Hello within 300 ms", "frame not completed within 500 ms"):
            if needle not in text:
                t.fail("not logged: %r" % needle)
        many = [t.Client(sock, timeout=30) for _ in range(8)]
        served(sock, "with all 8 slots taken by silent connections")
        for c in many:
            c.close()
        t.log("deadlines: silent, unfinished and idle connections closed; served at the limit")
    finally:
        broker.stop_ok()


def test():
    opts = t.args("certrelayd")
    # Harmless without ASan; with it, freed memory is released instead of held in quarantine.
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + \
        ":quarantine_size_mb=0:thread_local_quarantine_size_kb=0"
    with t.TempDir("robust_memory") as tmp:
        deadlines(opts, tmp)
        # Shorter deadlines than the defaults keep the test short: connections paused by the
        # memory budget do not read, so their peers' closing is noticed at the frame deadline.
        config, settings = t.write_config(tmp, hello_timeout="3s", frame_timeout="15s")
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        try:
            sock = settings["listen"]
            amplification(broker, sock)
            partial_frames(broker, sock)
            idle_connections(broker, sock)
            unread_acks(broker, sock)
        finally:
            broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
