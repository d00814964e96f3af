"""Broker killed (kill -9) while webhook deliveries are in flight, several times: after the last
restart every acknowledged event has been delivered, and whenever the receiver saw an event more
than once (at-least-once delivery), every copy carried the same webhook-id, the event id, so the
receiver can deduplicate. The receiver answers slowly, so each kill lands mid-delivery.

Then a graceful stop (SIGTERM) while the receiver holds requests unanswered: the broker cancels
the transfers, closes every handle and exits 0; after a restart those events are delivered too."""

import json

import crstest as t
from http_server import RecordingServer

EVENTS = 300
KILLS = 3


def start_server(**kw):
    for _ in range(20):
        try:
            return RecordingServer(port=t.free_port(), **kw).start()
        except OSError:
            continue
    t.fail("no free port for a test server")


def test():
    opts = t.args("certrelayd", "certrelay")
    with t.TempDir("sinkcrash") as tmp:
        web = start_server(delay=0.02)
        config, settings = t.write_config(tmp, sinks={
            "hook": {"type": "webhook", "url": web.url("/hook"), "format": "json",
                     "concurrency": "8", "backoff_initial": "50ms", "backoff_max": "500ms"},
        })
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        p = t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--count",
                   str(EVENTS), "--concurrency", "8", "--events", "issued,revoked",
                   "--spool-dir", settings["spool_dir"]], tmp)
        counts = t.parse_counts(p.stdout + p.stderr)
        if counts.get("acked", 0) + counts.get("spooled", 0) != EVENTS:
            t.fail("simulator: %r" % counts)

        for k in range(KILLS):
            seen = len(web.requests())
            # Wait until deliveries are flowing, then kill the broker in the middle of them.
            t.wait_for(lambda: len(web.requests()) >= seen + 20 or
                       t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 0")[0][0]
                       == 0, "deliveries to progress")
            broker.kill9()
            t.log("kill %d after %d requests" % (k + 1, len(web.requests())))
            broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 1")[0][0]
                   == EVENTS, "every delivery to complete")

        # Graceful stop with transfers hanging on a receiver that does not answer for a while.
        web.delay = 5.0
        seen = len(web.requests())
        t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--count", "20",
               "--concurrency", "4", "--events", "issued", "--spool-dir", settings["spool_dir"]],
              tmp)
        t.wait_for(lambda: len(web.requests()) >= seen + 4, "requests to hang at the receiver")
        broker.stop_ok()
        t.log("stopped with %d requests unanswered" % (len(web.requests()) - seen))
        web.delay = 0.0
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state = 1")[0][0]
                   == EVENTS + 20, "every delivery to complete after the graceful stop")
        broker.stop_ok()
        web.stop()

        ids = {r[0] for r in t.db_rows(state, "SELECT event_id FROM events")}
        if len(ids) != EVENTS + 20:
            t.fail("want %d events in the queue, got %d" % (EVENTS + 20, len(ids)))
        seen = {}
        for r in web.requests("/hook"):
            doc = json.loads(r.body)
            wid = r.headers.get("webhook-id")
            if wid != doc["event_id"]:
                t.fail("webhook-id %r differs from the event id %r" % (wid, doc["event_id"]))
            seen.setdefault(doc["event_id"], set()).add(wid)
        missing = ids - set(seen)
        if missing:
            t.fail("%d acknowledged events never reached the receiver" % len(missing))
        if set(seen) - ids:
            t.fail("the receiver saw events the broker never acknowledged")
        dups = len(web.requests("/hook")) - len(seen)
        t.log("%d events delivered, %d redeliveries after kills (all with the same id)" % (
            len(seen), dups))


if __name__ == "__main__":
    t.main(test)
