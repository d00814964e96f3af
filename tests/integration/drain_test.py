"""Backlog drain: a broker started on a queue full of pending deliveries (bench/drain_fill commits
them with the broker's own queue code, as if they had arrived while the sinks were away).

1. Restart with pending rows, read-ahead bounded by the configuration: every row of a backlog many
   times larger than the read-ahead is delivered exactly once (one attempt each, one file set
   each), nothing is left pending and no temporary file is left behind.
3. A queue database too large to check before accepting (over 64 MB) is checked in the
   background: the broker listens at once, and when the check finds damaged pages it stops with
   a failure status and says why, as the start-up check does for a small database.
2. New events are not starved behind the backlog: with a slow receiver and a backlog that takes
   seconds to drain, events sent after the drain began are delivered while most of the backlog is
   still pending (oldest-first claiming alone would deliver them last).
"""

import argparse
import os
import subprocess
import uuid

import crstest as t

BACKLOG_FILES = 3000
BACKLOG_HOOK = 2000
NEW_EVENTS = 3


def fill(drain_fill, config, n):
    out = subprocess.run([drain_fill, config, str(n)], stdout=subprocess.PIPE, text=True,
                         timeout=300)
    if out.returncode != 0 or ("events=%d" % n) not in out.stdout:
        t.fail("drain_fill failed: %r" % out.stdout)
    t.log(out.stdout.strip())


def restart_with_pending_rows(opts):
    with t.TempDir("drain-files") as tmp:
        config, settings = t.write_config(tmp, sinks={
            "drop": {"type": "file", "directory": tmp.join("out"), "concurrency": "2"}})
        fill(opts.drain_fill, config, BACKLOG_FILES)
        state = settings["state_dir"]
        pending = t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 0")[0][0]
        if pending != BACKLOG_FILES:
            t.fail("filled %d pending deliveries, want %d" % (pending, BACKLOG_FILES))
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        def drained():
            return t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 0")[0][0] == 0

        t.wait_for(drained, "the backlog to be delivered", timeout=600)
        broker.stop_ok()
        rows = t.db_rows(state, "SELECT state, attempts, COUNT(*) FROM deliveries "
                                "GROUP BY state, attempts")
        if rows != [(1, 1, BACKLOG_FILES)]:
            t.fail("want every delivery delivered at its first attempt, have %r" % rows)
        names = os.listdir(tmp.join("out"))
        jsons = [n for n in names if n.endswith(".json")]
        cers = [n for n in names if n.endswith(".cer")]
        temps = [n for n in names if n.startswith(".")]
        if len(jsons) != BACKLOG_FILES or len(cers) != BACKLOG_FILES or temps:
            t.fail("want %d .json and .cer files and no temporary file, have %d, %d, %r"
                   % (BACKLOG_FILES, len(jsons), len(cers), temps[:5]))
        t.log("backlog of %d delivered once each after a restart" % BACKLOG_FILES)


def new_events_not_starved(opts):
    from http_server import start_recording_server

    # About 10 ms per request on 4 connections: the backlog takes several seconds.
    srv = start_recording_server(delay=0.01)
    try:
        with t.TempDir("drain-hook") as tmp:
            config, settings = t.write_config(tmp, sinks={
                "hook": {"type": "webhook", "url": srv.url("/hook"), "concurrency": "4"}})
            fill(opts.drain_fill, config, BACKLOG_HOOK)
            state = settings["state_dir"]
            broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
            t.wait_for(lambda: len(srv.requests("/hook")) >= 20, "the drain to begin")

            c = t.Client(settings["listen"])
            c.hello()
            ids = []
            for i in range(NEW_EVENTS):
                eid = str(uuid.uuid4())
                c.send_event(t.event_bytes(eid, "issued", 900000 + i))
                if c.answer() != ("ack", eid, None):
                    t.fail("new event %d not acked" % i)
                ids.append(eid)
            c.close()

            def new_delivered():
                rows = t.db_rows(state, "SELECT COUNT(*) FROM deliveries d JOIN events e ON "
                                        "e.rowid = d.event_rowid WHERE d.state = 1 AND "
                                        "e.event_id IN (%s)" % ",".join("?" * len(ids)), ids)
                return rows[0][0] == len(ids)

            t.wait_for(new_delivered, "the new events to be delivered", timeout=120)
            left = t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 0 AND "
                                    "event_rowid <= ?", (BACKLOG_HOOK,))[0][0]
            t.log("new events delivered with %d of %d backlog rows still pending"
                  % (left, BACKLOG_HOOK))
            if left < BACKLOG_HOOK // 2:
                t.fail("new events waited behind the backlog: only %d of %d backlog rows were "
                       "still pending when they were delivered" % (left, BACKLOG_HOOK))
            broker.stop_ok()
    finally:
        srv.stop()


BACKLOG_LARGE = 60000


def large_database_checked_in_background(opts):
    with t.TempDir("drain-check") as tmp:
        config, settings = t.write_config(tmp, sinks={
            "drop": {"type": "file", "directory": tmp.join("out")}})
        fill(opts.drain_fill, config, BACKLOG_LARGE)
        db = os.path.join(settings["state_dir"], "certrelay.db")
        size = os.path.getsize(db)
        if size <= 64 * 1024 * 1024:
            t.fail("the database is only %d bytes: too small for the background check" % size)
        # Damage a page in the middle of the file (event bodies), far from the schema.
        with open(db, "r+b") as f:
            f.seek((size // 2) // 4096 * 4096)
            f.write(b"\xff" * 256)
        p = subprocess.run([opts.certrelayd, "--config", config], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=300, env=t.child_env(tmp))
        out = p.stdout.decode("utf-8", "replace")
        if p.returncode == 0:
            t.fail("the broker kept running on a damaged database:\n%s" % out[-3000:])
        for want in ("runs in the background", "listening on", "quick_check", "--salvage",
                     "stopping: the queue database is damaged"):
            if want not in out:
                t.fail("%r missing from the broker's output:\n%s" % (want, out[-3000:]))
        t.log("damage found in the background; the broker stopped with status %d" % p.returncode)


def test():
    p = argparse.ArgumentParser(allow_abbrev=False)
    p.add_argument("--certrelayd", required=True)
    p.add_argument("--drain-fill", required=True)
    opts = p.parse_args()
    restart_with_pending_rows(opts)
    new_events_not_starved(opts)
    large_database_checked_in_background(opts)


if __name__ == "__main__":
    t.main(test)
