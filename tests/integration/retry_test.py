"""Retry, backoff and dead-lettering with a real failure: the file sink's directory path runs
through a regular file (tests run as root, so permission bits would not stop the writes), so
every attempt fails. Deliveries are retried with backoff and dead-lettered after max_attempts,
with attempts and last_error recorded in the queue, while a healthy sink delivers everything."""

import re
import uuid

import crstest as t

EVENTS = 5
MAX_ATTEMPTS = 3


def test():
    opts = t.args("certrelayd")
    with t.TempDir("retry") as tmp:
        with open(tmp.join("blocker"), "w") as f:
            f.write("a regular file where the sink expects a directory\n")
        config, settings = t.write_config(tmp, sinks={
            "broken": {"type": "file", "directory": tmp.join("blocker", "out"),
                       "max_attempts": str(MAX_ATTEMPTS), "backoff_initial": "50ms",
                       "backoff_max": "200ms"},
            "archive": {"type": "file", "directory": tmp.join("out")},
        })
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        c = t.Client(settings["listen"])
        c.hello()
        ids = []
        for i in range(EVENTS):
            eid = str(uuid.uuid4())
            c.send_event(t.event_bytes(eid, "issued", i + 1))
            if c.answer() != ("ack", eid, None):
                t.fail("event %d not acked" % (i + 1))
            ids.append(eid)
        c.close()

        def dead():
            rows = t.db_rows(state, "SELECT state, attempts, last_error FROM deliveries "
                                    "WHERE sink = 'broken'")
            return rows if len(rows) == EVENTS and all(r[0] == 2 for r in rows) else None

        rows = t.wait_for(dead, "every 'broken' delivery to be dead-lettered")
        for st, attempts, err in rows:
            if attempts != MAX_ATTEMPTS:
                t.fail("dead-lettered after %d attempts, want %d" % (attempts, MAX_ATTEMPTS))
            if not err or "cannot" not in err:
                t.fail("last_error not recorded: %r" % err)
        t.log("dead-lettered with last_error %r" % rows[0][2])

        text = broker.log_text()
        if text.count("dead-lettered") != EVENTS:
            t.fail("want %d dead-letter warnings, log:\n%s" % (EVENTS, text[-3000:]))
        # The computed delays follow the curve: attempt 1 failed -> 25..50 ms (equal jitter of
        # 50 ms), attempt 2 -> 50..100 ms. These are the broker's decisions, not timings.
        delays = [(int(a), int(d)) for a, d in
                  re.findall(r"attempt (\d+) failed: .*; retrying in (\d+) ms", text)]
        if len(delays) != EVENTS * (MAX_ATTEMPTS - 1):
            t.fail("want %d retry lines, got %d" % (EVENTS * (MAX_ATTEMPTS - 1), len(delays)))
        for attempt, delay in delays:
            lo, hi = {1: (25, 50), 2: (50, 100)}[attempt]
            if not lo <= delay <= hi:
                t.fail("attempt %d retried after %d ms, outside %d..%d" % (attempt, delay, lo, hi))

        # The healthy sink was not held back by the broken one.
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE sink = "
                                            "'archive' AND state = 1")[0][0] == EVENTS,
                   "the healthy sink to deliver everything")
        docs = t.json_docs(tmp.join("out"))
        if sorted(d["event_id"] for d in docs.values()) != sorted(ids):
            t.fail("healthy sink's files do not match the events")
        broker.stop_ok()

        # Dead deliveries stay dead across a restart; nothing is attempted again.
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        broker.stop_ok()
        if "attempt" in broker.log_text():
            t.fail("a dead-lettered delivery was attempted again after restart")


if __name__ == "__main__":
    t.main(test)
