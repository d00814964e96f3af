"""Issue 13, item 1: no re-delivery storm when outcomes cannot be recorded.

The queue's disk (a small tmpfs) fills up while webhook deliveries are in flight: the receiver
takes each POST, but the broker cannot write the outcome. Before the fix the rows stayed pending
and were fetched again at once: thousands of POSTs per event. Now the sink pauses (logged once)
and keeps the outcomes in memory until the database takes writes again.

Checked, as the receiver and the operator see it: while the disk is full, no event is POSTed a
second time; the pause is logged once per sink and the log stays small; once space is freed every
outcome is recorded (all rows delivered) and each event was POSTed exactly once. Also: the broker
still stops cleanly. Exits 77 (skipped) where tmpfs cannot be mounted.

Before that, the log volume of a receiver that is down: 200 events retried every few
milliseconds for a few seconds must cost a bounded number of lines (one per attempt was 12.7 MB
in 15 s), with a summary line saying how many attempts were not logged one by one."""

import collections
import os
import sys
import time
import uuid

import crstest as t
from diskfull_test import mount_tmpfs, umount
from http_server import RecordingServer

SKIP = 77
EVENTS = 7


def fill(path):
    """Writes path until the file system is full; returns the file's name."""
    name = os.path.join(path, "filler")
    # Unbuffered: with a buffer, the bytes of the write that hit the end stay in it, and closing
    # the file raises ENOSPC again (whenever the free space is not a multiple of the chunk).
    with open(name, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 65536)
        except OSError:
            pass
    return name


def log_volume(opts, tmp):
    sinks = {"down": {"type": "webhook", "url": "http://127.0.0.1:%d/x" % t.free_port(),
                      "concurrency": "16", "max_attempts": "1000", "backoff_initial": "5ms",
                      "backoff_max": "10ms"}}
    config, settings = t.write_config(tmp, sinks=sinks, state_dir=tmp.join("state-down"),
                                      listen=tmp.join("down.sock"))
    broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
    try:
        ids = [str(uuid.uuid4()) for _ in range(200)]
        t.send_acked(settings["listen"], [(e, t.event_bytes(e, "issued", i + 1))
                                          for i, e in enumerate(ids)])
        state = settings["state_dir"]
        t.wait_for(lambda: t.db_rows(state, "SELECT SUM(attempts) FROM deliveries")[0][0] >= 2000,
                   "2000 failed attempts")
    finally:
        broker.stop()
    text = broker.log_text()
    lines = [l for l in text.splitlines() if "sink down:" in l]
    attempts = t.db_rows(state, "SELECT SUM(attempts) FROM deliveries")[0][0]
    t.log("receiver down: %d attempts, %d log lines about the sink" % (attempts, len(lines)))
    if len(lines) > 40:
        t.fail("%d log lines for %d failed attempts within a minute" % (len(lines), attempts))
    if "were not logged one by one" not in text:
        t.fail("no summary of the attempts not logged")


def test():
    opts = t.args("certrelayd")
    with t.TempDir("robust_storm") as tmp:
        log_volume(opts, tmp)
        statefs = tmp.join("statefs")
        if not mount_tmpfs(statefs, "4m"):
            t.log("SKIP: cannot mount tmpfs here")
            sys.exit(SKIP)
        srv = RecordingServer(port=t.free_port(), delay=1.0).start()
        broker = None
        try:
            sinks = {"hook": {"type": "webhook", "url": srv.url("/h"), "concurrency": "4",
                              "backoff_initial": "100ms", "backoff_max": "1s"}}
            config, settings = t.write_config(tmp, sinks=sinks,
                                              state_dir=os.path.join(statefs, "state"))
            broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
            ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
            t.send_acked(settings["listen"], [(e, t.event_bytes(e, "issued", i + 1))
                                              for i, e in enumerate(ids)])
            # The first POSTs are being answered slowly: fill the disk under them.
            t.wait_for(lambda: srv.requests(), "the first POST")
            filler = fill(statefs)
            srv.delay = 0.0
            t.wait_for(lambda: "cannot be recorded" in broker.log_text(),
                       "the pause to be logged")
            time.sleep(4)  # an observation window: the storm took under a second to start
            per_event = collections.Counter(r.headers.get("webhook-id") for r in srv.requests())
            worst = max(per_event.values())
            t.log("disk full: %d POSTs for %d events (most for one event: %d)" % (
                sum(per_event.values()), len(per_event), worst))
            if worst > 1:
                t.fail("an event was POSTed %d times while its outcome could not be recorded" %
                       worst)
            text = broker.log_text()
            pauses = text.count("sink hook: paused")
            if pauses != 1:
                t.fail("the pause was logged %d times, want once:\n%s" % (pauses, text[-3000:]))
            if len(text) > 64 * 1024:
                t.fail("%d bytes of log in a few seconds of full disk" % len(text))
            os.unlink(filler)
            state = settings["state_dir"]
            t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE "
                                                "state = 1")[0][0] == EVENTS,
                       "every outcome recorded once the disk has room")
            if "sink hook: resumed" not in broker.log_text():
                t.fail("the resumption is not logged")
            per_event = collections.Counter(r.headers.get("webhook-id") for r in srv.requests())
            if sorted(per_event) != sorted(ids) or max(per_event.values()) != 1:
                t.fail("want each event POSTed exactly once, got %s" % dict(per_event))
            broker.stop_ok()
        finally:
            if broker is not None and broker.running():
                broker.kill9()
            srv.stop()
            umount(statefs)


if __name__ == "__main__":
    t.main(test)
