"""Framing and protocol errors against a real broker: a valid Hello + Event is acked; an
oversized length, a truncated frame, a zero-length frame, garbage, an invalid event, a wrong
protocol version and an Event before Hello each close only their own connection with one clear
log line, while a good client connected throughout keeps getting acks."""

import os
import struct
import uuid

import crstest as t


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test():
    opts = t.args("certrelayd")
    with t.TempDir("framing") as tmp:
        # The sink ignores "denied": the flood below uses that kind, so it is committed but not
        # written out as files, which would only make the test slow.
        config, settings = t.write_config(tmp, max_frame="1048576", sinks={"archive": {
            "type": "file", "directory": tmp.join("out"), "events": "issued, revoked"}})
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        sock = settings["listen"]
        if (os.stat(sock).st_mode & 0o777) != 0o600:
            t.fail("socket mode is %o, want 600" % (os.stat(sock).st_mode & 0o777))

        good = t.Client(sock)
        good.hello()
        sent = []

        def good_roundtrip(request_id):
            eid = str(uuid.uuid4())
            good.send_event(t.event_bytes(eid, "issued", request_id))
            kind, got, reason = good.answer()
            if kind != "ack" or got != eid:
                t.fail("good client: expected ack for %s, got %s %s %s" % (eid, kind, got, reason))
            sent.append((request_id, eid))

        # (a) a valid Hello + Event is acked with the same id.
        good_roundtrip(1)

        def bad(name, data, expect_log, hello=True):
            c = t.Client(sock, timeout=30)
            if hello:
                c.hello()
            c.send(data)
            if name == "truncated":
                c.sock.shutdown(2 - 1)  # SHUT_WR: the frame stays incomplete at EOF
            if not c.closed_by_peer():
                t.fail("%s: broker did not close the connection" % name)
            c.close()
            t.wait_for(lambda: expect_log in broker.log_text(), "log line %r" % expect_log, 30)
            t.log("%s: closed, log has %r" % (name, expect_log))
            good_roundtrip(len(sent) + 1)

        # (b) oversized: the header alone announces 100 MiB, above max_frame (1 MiB here).
        bad("oversized", struct.pack(">I", 104857600),
            "frame of 104857600 bytes exceeds max_frame 1048576; closing")
        # (c) truncated: a header announcing 100 bytes, 10 of them, then EOF.
        bad("truncated", struct.pack(">I", 100) + b"0123456789",
            "connection closed in the middle of a frame")
        # (d) garbage: a frame whose payload is not an Envelope, and a zero-length frame.
        bad("garbage", t.frame(b"\xff\xff\xff\xff\xff\xff\xff\xff"), "undecodable frame of 8 bytes")
        bad("zero-length", struct.pack(">I", 0), "zero-length frame")
        # An Envelope that decodes but holds an invalid Event (the id is not a UUID).
        bad("invalid event", t.frame(t.event_payload(t.event_bytes("not-a-uuid"))),
            "invalid event of")
        # (e) an Event before Hello, and a Hello with another protocol version.
        bad("event before hello", t.frame(t.event_payload(t.event_bytes())),
            "Event before Hello", hello=False)
        bad("protocol version", t.frame(t.hello_payload(version=2)),
            "unsupported protocol version 2", hello=False)

        # Every error above took one line naming its connection.
        lines = [l for l in broker.log_text().splitlines() if "; closing" in l]
        if len(lines) != 7 or not all(" conn " in l for l in lines):
            t.fail("expected 7 one-line connection errors, got:\n" + "\n".join(lines))

        # A resent event (same id) is acked again and yields no second delivery.
        eid = sent[0][1]
        good.send_event(t.event_bytes(eid, "issued", 1))
        kind, got, _ = good.answer()
        if kind != "ack" or got != eid:
            t.fail("resent event not acked: %s %s" % (kind, got))

        # Pipelining: many events written at once are all acked, each exactly once.
        ids = [str(uuid.uuid4()) for _ in range(300)]
        good.send(b"".join(t.frame(t.event_payload(t.event_bytes(e, "revoked", 1000 + i)))
                           for i, e in enumerate(ids)))
        acked = set()
        for _ in ids:
            kind, got, _ = good.answer()
            if kind != "ack":
                t.fail("pipelined event not acked")
            acked.add(got)
        if acked != set(ids):
            t.fail("pipelined acks do not match the ids sent")

        # A flood from a client that never reads its acks: the broker stops reading from it
        # (the client's send blocks) instead of buffering without bound, and others carry on.
        flood = t.Client(sock, timeout=5)
        flood.hello()
        nflood = 60000
        data = b"".join(t.frame(t.event_payload(t.event_bytes(None, "denied", 200000 + i)))
                        for i in range(nflood))
        try:
            flood.send(data)
            t.log("flood: all %d bytes taken" % len(data))
        except OSError:
            t.log("flood: the broker stopped reading (backpressure)")
        rss = rss_kb(broker.proc.pid)
        if rss > 1024 * 1024:  # generous: ASan keeps a 256 MB quarantine
            t.fail("broker RSS %d KB after a flood" % rss)
        good_roundtrip(len(sent) + 1)
        flood.close()
        t.log("flood: broker RSS %d KB, good client still served" % rss)
        good.close()

        out = tmp.join("out")
        state = settings["state_dir"]
        expected = len(sent) + len(ids)
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 1")
                   [0][0] == expected, "%d deliveries" % expected)
        flooded = t.db_rows(state, "SELECT COUNT(*) FROM events")[0][0]
        t.log("flood: %d of %d events taken before the client gave up" % (
            flooded - expected, nflood))
        docs = t.json_docs(out)
        for rid, eid in sent:
            doc = docs.get("%d-issued.json" % rid)
            if doc is None or doc.get("event_id") != eid:
                t.fail("missing or wrong %d-issued.json" % rid)
        if flooded - expected >= nflood:
            t.fail("every flood event was taken: no backpressure")
        broker.stop_ok()
        if os.path.exists(sock):
            t.fail("socket file left after a clean stop")


if __name__ == "__main__":
    t.main(test)
