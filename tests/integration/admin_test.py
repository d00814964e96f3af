"""The admin channel with a real broker, the real CLI and a real webhook receiver.

- status / events / show agree with what the run did (the receiver's requests, the drop files).
- A receiver answering 400 dead-letters every event; after it is fixed, `retry --sink --dead`
  delivers each one exactly once.
- `replay --since T` re-delivers the events received since T, and nothing else.
- Exit codes: 1 for an unknown event, 3 with the broker stopped (status still counts the spool),
  4 for a client running as another user (refused by the broker itself, and by the socket's
  permissions).
"""

import json
import os
import time
import uuid

import crstest as t
from http_server import start_recording_server

BATCH = 12


class Cli:
    def __init__(self, exe, config, tmp, sock):
        self.exe, self.config, self.tmp, self.sock = exe, config, tmp, sock

    def run(self, *argv, code=0, user=None):
        # Another user cannot read the test's private directory: it finds the broker by --pipe.
        where = ["--config", self.config] if user is None else ["--pipe", self.sock]
        cmd = [self.exe] + list(argv) + where
        kw = {}
        if user is not None:
            def drop():
                os.setgid(user)
                os.setuid(user)
            kw["preexec_fn"] = drop
        import subprocess
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=t.child_env(self.tmp), timeout=t.DEFAULT_TIMEOUT, **kw)
        out, err = p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        if code is not None and p.returncode != code:
            t.fail("%s exited with %d, want %d\nstdout:\n%s\nstderr:\n%s" % (
                " ".join(cmd), p.returncode, code, out[-3000:], err[-3000:]))
        return out, err

    def json(self, *argv, code=0):
        out, _ = self.run(*(list(argv) + ["--json"]), code=code)
        return json.loads(out)


def accepted(srv, n_refused):
    """Event ids of the requests the receiver accepted (every request after the scripted 400s)."""
    reqs = srv.requests("/hook")[n_refused:]
    return [json.loads(r.body)["event_id"] for r in reqs]


def sink_row(status, name):
    for s in status["sinks"]:
        if s["name"] == name:
            return s
    t.fail("no sink %s in status" % name)


def send_batch(sock, first_request):
    c = t.Client(sock)
    c.hello()
    ids = []
    for i in range(BATCH):
        eid = str(uuid.uuid4())
        der = b"\x30\x03\x02\x01\x01" if i == 0 else None
        c.send_event(t.event_bytes(eid, "issued", first_request + i, der=der))
        if c.answer() != ("ack", eid, None):
            t.fail("event %d not acked" % (first_request + i))
        ids.append(eid)
    c.close()
    return ids


def test():
    opts = t.args("certrelayd", "certrelay")
    srv = start_recording_server()
    with t.TempDir("admin") as tmp:
        config, settings = t.write_config(tmp, sinks={
            "hook": {"type": "webhook", "url": srv.url("/hook"), "format": "json",
                     "backoff_initial": "50ms", "backoff_max": "200ms"},
            "archive": {"type": "file", "directory": tmp.join("out"),
                        "name": t.NAME_PER_EVENT},
        })
        sock = settings["listen"]
        cli = Cli(opts.certrelay, config, tmp, sock)
        broker = t.Broker(opts.certrelayd, config, tmp, sock).start()

        # ---- A receiver answering 400: every event is dead-lettered at once. ----
        srv.script("/hook", [(400, {})] * BATCH)
        ids_a = send_batch(sock, 1)

        def settled():
            st = cli.json("status")
            hook, arch = sink_row(st, "hook"), sink_row(st, "archive")
            if hook["dead"] == BATCH and arch["delivered_24h"] == BATCH:
                return st
            return None
        st = t.wait_for(settled, "the first batch to settle")
        hook = sink_row(st, "hook")
        if hook["pending"] != 0 or hook["in_flight"] != 0 or "400" not in (hook["last_error"] or ""):
            t.fail("hook status after the 400s: %r" % hook)
        if len(srv.requests("/hook")) != BATCH:
            t.fail("receiver saw %d requests, want %d" % (len(srv.requests("/hook")), BATCH))
        if len(t.json_docs(tmp.join("out"))) != BATCH:
            t.fail("archive holds %d files, want %d" % (len(t.json_docs(tmp.join("out"))), BATCH))
        if st["database"]["events"] != BATCH or st["spool_files"] != 0 or not st["running"]:
            t.fail("status database/spool wrong: %r" % st)
        out, _ = cli.run("status")
        if "hook" not in out or "HTTP 400" not in out:
            t.fail("status table lacks the hook's error:\n%s" % out)

        # events: filters agree with the run.
        dead = cli.json("events", "--sink", "hook", "--state", "dead")["events"]
        if sorted(e["event_id"] for e in dead) != sorted(ids_a):
            t.fail("events --state dead lists %d events, want the %d refused" % (len(dead), BATCH))
        if cli.json("events", "--state", "pending")["events"]:
            t.fail("events --state pending is not empty")
        one = cli.json("events", "--request-id", "5")["events"]
        if len(one) != 1 or one[0]["event_id"] != ids_a[4] or one[0]["request_id"] != 5:
            t.fail("events --request-id 5: %r" % one)
        ser = cli.json("events", "--serial", "1A2B3C")["events"]
        if [e["event_id"] for e in ser] != [ids_a[0]]:
            t.fail("events --serial: %r" % ser)
        if len(cli.json("events", "--limit", "3")["events"]) != 3:
            t.fail("events --limit 3 did not return 3 events")
        if cli.json("events", "--kind", "revoked")["events"]:
            t.fail("events --kind revoked is not empty")
        cli.run("events", "--state", "bogus", code=1)

        # show: the document and the delivery rows with status and error.
        shown = cli.json("show", ids_a[2])
        if shown["event"]["event_id"] != ids_a[2] or shown["event"]["request"]["id"] != 3:
            t.fail("show returned the wrong document: %r" % shown["event"])
        dels = {d["sink"]: d for d in shown["deliveries"]}
        if dels["hook"]["state"] != "dead" or dels["hook"]["last_status"] != 400 or \
                dels["hook"]["attempts"] != 1 or dels["archive"]["state"] != "delivered":
            t.fail("show deliveries: %r" % dels)
        cli.run("show", str(uuid.uuid4()), code=1)

        # ---- The receiver is fixed (its script is used up): retry the dead letters. ----
        out, _ = cli.run("retry", "--sink", "hook", "--dead")
        if "%d deliveries" % BATCH not in out:
            t.fail("retry reported: %s" % out)
        t.wait_for(lambda: sink_row(cli.json("status"), "hook")["delivered_24h"] == BATCH,
                   "the retried deliveries")
        got = accepted(srv, BATCH)
        if sorted(got) != sorted(ids_a):
            t.fail("after retry the receiver accepted %d events (%d distinct), want each of %d "
                   "once" % (len(got), len(set(got)), BATCH))
        # Nothing is left to retry: a second retry changes nothing and sends nothing.
        out, _ = cli.run("retry", "--sink", "hook", "--dead")
        if not out.startswith("0 deliveries"):
            t.fail("second retry: %s" % out)
        cli.run("retry", str(uuid.uuid4()), code=1)
        cli.run("retry", "--dead", code=2)

        # ---- replay --since T: only the events received since T go out again. ----
        time.sleep(0.05)
        since_ms = int(time.time() * 1000)
        time.sleep(0.05)
        ids_b = send_batch(sock, 100)
        t.wait_for(lambda: sink_row(cli.json("status"), "hook")["delivered_24h"] == 2 * BATCH,
                   "the second batch")
        since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since_ms // 1000)) + \
            ".%03dZ" % (since_ms % 1000)
        res = cli.json("replay", "--sink", "hook", "--since", since)
        if res["rows"] != BATCH:
            t.fail("replay made %d rows due, want %d" % (res["rows"], BATCH))
        want = sorted(ids_a + ids_b + ids_b)
        t.wait_for(lambda: len(accepted(srv, BATCH)) >= len(want), "the replayed deliveries")
        time.sleep(0.3)
        got = sorted(accepted(srv, BATCH))
        if got != want:
            t.fail("after replay: %d accepted, want %d (batch A once, batch B twice)" % (
                len(got), len(want)))
        # The archive was not part of the replay.
        if len(t.json_docs(tmp.join("out"))) != 2 * BATCH:
            t.fail("replay to hook touched the archive")
        cli.run("replay", "--sink", "nosuch", "--since", "1h", code=1)

        # ---- send-test: a marked event through the real path, outcome reported. ----
        before = len(srv.requests("/hook"))
        res = cli.json("send-test", "--sink", "hook")
        if not res["ok"] or res["outcome"] != "delivered" or res["status"] != 204:
            t.fail("send-test: %r" % res)
        reqs = srv.requests("/hook")[before:]
        if len(reqs) != 1:
            t.fail("send-test made %d requests" % len(reqs))
        doc = json.loads(reqs[0].body)
        if doc["event_id"] != res["event_id"] or "certrelay_test" not in json.dumps(doc) or \
                "test event" not in doc["ca"]["config"]:
            t.fail("the test event is not marked as one: %r" % doc)
        srv.script("/hook", [(400, {})])
        out, _ = cli.run("send-test", "--sink", "hook", code=1)
        if "failed (permanent)" not in out or "status 400" not in out:
            t.fail("failed send-test reported as: %s" % out)
        cli.run("send-test", "--sink", "nosuch", code=1)
        if cli.json("events", "--kind", "startup")["events"]:
            t.fail("a test event was queued")

        # ---- Another user: refused by the broker, and by the socket's own permissions. ----
        nobody = 65534
        _, err = cli.run("status", code=4, user=nobody)
        if "not authorized" not in err:
            t.fail("refusal by socket permissions not explained: %s" % err)
        os.chmod(tmp.path, 0o755)
        os.chmod(sock, 0o666)
        _, err = cli.run("status", code=4, user=nobody)
        if "not authorized" not in err:
            t.fail("refusal by the broker not explained: %s" % err)
        if "client not authorized" not in broker.log_text():
            t.fail("the broker did not log the refusal")

        # ---- reload and check-config ----
        cli.run("reload")
        broker.stop_ok()

        # ---- Broker stopped: status says so and still counts the spool. ----
        os.makedirs(settings["spool_dir"], exist_ok=True)
        with open(os.path.join(settings["spool_dir"], "%s.crev" % uuid.uuid4()), "wb") as f:
            f.write(b"x")
        st = cli.json("status", code=3)
        if st["running"] or st["spool_files"] != 1:
            t.fail("status with the broker stopped: %r" % st)
        out, err = cli.run("events", code=3)
        if "not running" not in err:
            t.fail("events with the broker stopped: %s" % err)
    srv.stop()


if __name__ == "__main__":
    t.main(test)
