"""The metrics endpoint, parsed by Debian's python3-prometheus-client text parser, against what
the run did: events received and acked (a raw client counts its Acks), events a stub spooled
while the broker was away and the broker drained, deliveries by sink and outcome (the webhook
receiver counts its requests: three answered 400 are dead letters), queue depth and the commit
latency histogram. Anything but GET /metrics is refused.
"""

import json
import socket
import urllib.error
import urllib.request
import uuid

from prometheus_client.parser import text_string_to_metric_families

import crstest as t
from http_server import start_recording_server

EVENTS = 25
REFUSED = 3
SPOOLED = 7


def scrape(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        ctype = r.headers.get("Content-Type")
        text = r.read().decode("utf-8")
    if not ctype.startswith("text/plain; version=0.0.4"):
        t.fail("content type %r" % ctype)
    samples = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def test():
    opts = t.args("certrelayd", "certrelay")
    srv = start_recording_server()
    with t.TempDir("metrics") as tmp:
        port = t.free_port()
        config, settings = t.write_config(tmp, metrics_listen="127.0.0.1:%d" % port, sinks={
            "hook": {"type": "webhook", "url": srv.url("/hook"), "format": "json"},
            "archive": {"type": "file", "directory": tmp.join("out"), "name": t.NAME_PER_EVENT},
        })
        url = "http://127.0.0.1:%d/metrics" % port

        # A stub with no broker spools; the broker drains the spool when it starts.
        p = t.run([opts.certrelay, "simulate", "--pipe", settings["listen"], "--count",
                   str(SPOOLED), "--spool-dir", settings["spool_dir"], "--timeout-ms", "200"], tmp)
        if t.parse_counts(p.stdout).get("spooled") != SPOOLED:
            t.fail("simulate did not spool: %s" % p.stdout)
        srv.script("/hook", [(400, {})] * REFUSED)
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        t.wait_for(lambda: not [f for f in t.drop_files(settings["spool_dir"])
                                if f.endswith(".crev")], "the spool to drain")

        c = t.Client(settings["listen"])
        c.hello()
        acked = 0
        for i in range(EVENTS):
            eid = str(uuid.uuid4())
            c.send_event(t.event_bytes(eid, "issued", 1000 + i))
            if c.answer() == ("ack", eid, None):
                acked += 1
        c.close()
        total = EVENTS + SPOOLED
        t.wait_for(lambda: len(srv.requests("/hook")) == total and
                   len(t.json_docs(tmp.join("out"))) == total, "every delivery")

        def settled():
            s = scrape(url)
            got = sum(value(s, "certrelay_deliveries_total", sink=k, outcome=o) or 0
                      for k in ("hook", "archive") for o in ("delivered", "dead"))
            return s if got == 2 * total else None
        s = t.wait_for(settled, "the delivery counters to settle")

        want = {
            ("certrelay_events_received_total", ()): EVENTS,
            ("certrelay_events_acked_total", ()): acked,
            ("certrelay_events_nacked_total", ()): 0,
            ("certrelay_spool_events_drained_total", ()): SPOOLED,
            ("certrelay_spool_files", ()): 0,
            ("certrelay_database_events", ()): total,
        }
        for (name, labels), v in want.items():
            if value(s, name, **dict(labels)) != v:
                t.fail("%s = %r, want %r" % (name, value(s, name, **dict(labels)), v))
        if acked != EVENTS:
            t.fail("only %d of %d events acked" % (acked, EVENTS))
        hook_ok = len(srv.requests("/hook")) - REFUSED
        checks = [("hook", "delivered", hook_ok), ("hook", "dead", REFUSED),
                  ("hook", "retry", 0), ("archive", "delivered", total),
                  ("archive", "dead", 0)]
        for sink, outcome, v in checks:
            got = value(s, "certrelay_deliveries_total", sink=sink, outcome=outcome)
            if got != v:
                t.fail("deliveries_total{%s,%s} = %r, want %d" % (sink, outcome, got, v))
        if value(s, "certrelay_queue_dead", sink="hook") != REFUSED or \
                value(s, "certrelay_queue_pending", sink="archive") != 0 or \
                value(s, "certrelay_queue_in_flight", sink="hook") != 0:
            t.fail("queue gauges wrong")
        commits = value(s, "certrelay_commit_latency_seconds_count")
        inf = value(s, "certrelay_commit_latency_seconds_bucket", le="+Inf")
        # Each acked event was committed by some commit; the raw client waits for each Ack, so
        # its events took one commit each, and the spool drain at least one more.
        if not commits or commits != inf or commits < EVENTS + 1:
            t.fail("commit histogram: count %r, +Inf %r" % (commits, inf))
        if value(s, "certrelay_database_bytes") <= 0:
            t.fail("database size missing")
        # status agrees with the gauges.
        st = json.loads(t.run([opts.certrelay, "status", "--config", config, "--json"],
                              tmp).stdout)
        hook = [x for x in st["sinks"] if x["name"] == "hook"][0]
        if hook["dead"] != REFUSED or hook["delivered_24h"] != hook_ok:
            t.fail("status disagrees with the metrics: %r" % hook)

        for path, code in (("/other", 404),):
            try:
                urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=30)
                t.fail("%s answered 200" % path)
            except urllib.error.HTTPError as e:
                if e.code != code:
                    t.fail("%s answered %d, want %d" % (path, e.code, code))
        s2 = socket.create_connection(("127.0.0.1", port), timeout=30)
        s2.sendall(b"POST /metrics HTTP/1.0\r\n\r\n")
        if not s2.recv(100).startswith(b"HTTP/1.0 405"):
            t.fail("POST was not refused")
        s2.close()
        broker.stop_ok()
    srv.stop()


if __name__ == "__main__":
    t.main(test)
