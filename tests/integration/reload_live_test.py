"""Live reconfiguration under load: 20,000 events from `certrelay simulate` at concurrency 16
while `certrelay reload` adds a sink, changes one, removes one, and a broken file is applied (by
`certrelay reload` and by SIGHUP) and then fixed.

Every event must reach every sink that was configured when it was received, none twice:
- keep (a webhook, before and after): the receiver gets every event exactly once;
- change (a file sink whose directory changes): every event once, in the old or the new
  directory, never both;
- drop (removed) and new (added): each event has a row for exactly one of them, drop's rows are
  the events before the switch and new's the events after it, each delivered once;
- every delivery row is delivered after exactly one attempt.
A broken file keeps the running configuration and is reported as FILE:LINE in the reply and log;
a changed listen address is reported as needing a restart.
"""

import json
import os
import signal
import subprocess
import time

import crstest as t
from http_server import start_recording_server

COUNT = int(os.environ.get("CRS_RELOAD_EVENTS", "20000"))
CONCURRENCY = 16


def write(tmp, settings, sinks, extra_broker=()):
    lines = ["[broker]"] + ["%s = %s" % kv for kv in settings.items()] + list(extra_broker) + [""]
    for name, keys in sinks:
        lines.append("[sink.%s]" % name)
        lines += ["%s = %s" % kv for kv in keys.items()]
        lines.append("")
    with open(tmp.join("certrelay.ini"), "w") as f:
        f.write("\n".join(lines))


def file_sink(tmp, d):
    return {"type": "file", "directory": tmp.join(d), "name": "{{event_id}}", "der": "false",
            "concurrency": "8"}


def events_count(state):
    try:
        return t.db_rows(state, "SELECT COUNT(*) FROM events")[0][0]
    except Exception:
        return 0


def ids_in(directory):
    """Event ids of the drop's files: names are "{{event_id}}.json", and the file sink appends
    "-<event_id>" for events without a request (crl_issued, startup, shutdown)."""
    return set(n[:36] for n in t.drop_files(directory) if n.endswith(".json"))


def test():
    opts = t.args("certrelayd", "certrelay")
    srv = start_recording_server()
    with t.TempDir("reload-live") as tmp:
        settings = {"listen": tmp.join("certrelay.sock"), "state_dir": tmp.join("state"),
                    "spool_dir": tmp.join("spool"), "log_level": "info"}
        keep = {"type": "webhook", "url": srv.url("/keep"), "format": "json",
                "concurrency": "16"}
        v1 = [("keep", keep), ("change", file_sink(tmp, "change1")),
              ("drop", file_sink(tmp, "drop"))]
        v2 = [("keep", keep), ("change", file_sink(tmp, "change2")),
              ("new", file_sink(tmp, "new"))]
        write(tmp, settings, v1)
        config = tmp.join("certrelay.ini")
        state = settings["state_dir"]
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()

        def cli(*argv):
            return subprocess.run([opts.certrelay] + list(argv) + ["--config", config],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  env=t.child_env(tmp), timeout=t.DEFAULT_TIMEOUT)

        # Four rounds of COUNT/4 events; each step below happens while a round is running
        # (the simulator is fast: a step may also land just after its round ended).
        total = {"acked": 0, "spooled": 0}
        rounds = []

        def round_start(n):
            log = open(tmp.join("simulate-%d.log" % (len(rounds) + 1)), "wb")
            p = subprocess.Popen([opts.certrelay, "simulate", "--pipe", settings["listen"],
                                  "--count", str(COUNT // 4), "--concurrency", str(CONCURRENCY),
                                  "--spool-dir", settings["spool_dir"]],
                                 stdout=log, stderr=subprocess.STDOUT, env=t.child_env(tmp))
            rounds.append((p, log))
            t.wait_for(lambda: events_count(state) >= n, "round %d to start" % len(rounds))

        def round_end():
            p, log = rounds[-1]
            rc = p.wait(t.DEFAULT_TIMEOUT * 10)
            log.close()
            with open(log.name) as f:
                counts = t.parse_counts(f.read())
            if rc != 0:
                t.fail("simulate exited %d: %r" % (rc, counts))
            for k in total:
                total[k] += counts.get(k, 0)

        # 1. Add "new", change "change", remove "drop" while events flow.
        round_start(COUNT // 16)
        write(tmp, settings, v2)
        p = cli("reload")
        if p.returncode != 0:
            t.fail("reload exited %d: %s" % (p.returncode, p.stderr.decode()))
        before = events_count(state)
        t.log("reloaded with %d events committed" % before)

        round_end()

        # 2. A broken file, by the CLI and by SIGHUP: both keep the running configuration.
        round_start(COUNT // 4 + 1)
        write(tmp, settings, v2, ["no_such_key = 1"])
        p = cli("reload")
        err = p.stderr.decode()
        if p.returncode != 1 or "certrelay.ini:" not in err or "no_such_key" not in err:
            t.fail("reload of a broken file: exit %d, stderr %r" % (p.returncode, err))
        broker.proc.send_signal(signal.SIGHUP)
        t.wait_for(lambda: broker.log_text().count("keeping the running configuration") >= 2,
                   "the SIGHUP reload to be refused")
        if not broker.running():
            t.fail("the broker exited on a broken file")

        round_end()

        # 3. Fixed again, with a changed listen address (reported as needing a restart).
        round_start(COUNT // 2 + 1)
        moved = dict(settings, listen=tmp.join("other.sock"))
        write(tmp, moved, v2)
        broker.proc.send_signal(signal.SIGHUP)
        t.wait_for(lambda: broker.log_text().count("configuration reloaded") >= 2,
                   "the fixed file to be applied")
        if "listen changed" not in broker.log_text():
            t.fail("a changed listen address was not reported")
        round_end()
        write(tmp, settings, v2)
        round_start(3 * COUNT // 4 + 1)
        round_end()
        if total["acked"] + total["spooled"] != COUNT:
            t.fail("simulate: %r" % total)
        t.log("simulate: %r" % total)

        t.wait_for(lambda: events_count(state) == COUNT, "every event to be committed")
        t.wait_for(lambda: t.db_rows(state, "SELECT COUNT(*) FROM deliveries WHERE state != 1")
                   [0][0] == 0, "every delivery to finish", timeout=t.DEFAULT_TIMEOUT * 5)
        broker.stop_ok()

        events = dict(t.db_rows(state, "SELECT event_id, rowid FROM events"))
        rows = {}
        for eid, sink, attempts in t.db_rows(
                state, "SELECT e.event_id, d.sink, d.attempts FROM deliveries d "
                       "JOIN events e ON e.rowid = d.event_rowid"):
            if attempts != 1:
                t.fail("%s to %s took %d attempts" % (eid, sink, attempts))
            rows.setdefault(sink, set()).add(eid)
        every = set(events)
        if rows.get("keep") != every or rows.get("change") != every:
            t.fail("keep/change rows do not cover every event")
        drop, new = rows.get("drop", set()), rows.get("new", set())
        if not drop or not new or drop & new or drop | new != every:
            t.fail("drop (%d) and new (%d) rows must split the %d events" % (
                len(drop), len(new), len(every)))
        if max(events[e] for e in drop) >= min(events[e] for e in new):
            t.fail("drop's events are not all before new's")
        t.log("switch after event row %d: drop %d, new %d" % (
            max(events[e] for e in drop), len(drop), len(new)))

        # Receivers: the webhook saw each event once; files exactly match the rows.
        got = [json.loads(r.body)["event_id"] for r in srv.requests("/keep")]
        if len(got) != COUNT or set(got) != every:
            t.fail("webhook received %d requests for %d distinct events, want %d once each" % (
                len(got), len(set(got)), COUNT))
        c1, c2 = ids_in(tmp.join("change1")), ids_in(tmp.join("change2"))
        if c1 & c2 or c1 | c2 != every or not c1 or not c2:
            t.fail("change: %d old, %d new, %d in both" % (len(c1), len(c2), len(c1 & c2)))
        if ids_in(tmp.join("drop")) != drop or ids_in(tmp.join("new")) != new:
            t.fail("drop/new files differ from their rows")
    srv.stop()


if __name__ == "__main__":
    t.main(test)
