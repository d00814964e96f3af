"""Graceful stop and exclusive ownership of the socket.

1. SIGTERM while clients are sending: the broker exits with status 0 (within a guard timeout), and
   after a restart every event that had been acked is delivered (none lost).
2. A second broker on the same socket refuses to start (non-zero exit, a clear message) while the
   first runs; after kill -9 of the first, a new one starts over the stale socket."""

import os
import subprocess
import threading
import uuid

import crstest as t

CLIENTS = 8


def load(sock, worker, acked, stop):
    """Sends events one by one, recording (request id, event id) of each acked one, until the
    broker goes away or stop is set."""
    try:
        c = t.Client(sock, timeout=60)
        c.hello()
        i = 0
        while not stop.is_set():
            i += 1
            rid = worker * 100000 + i
            eid = str(uuid.uuid4())
            c.send_event(t.event_bytes(eid, "issued", rid))
            payload = c.read_frame()
            if payload is None:
                return
            kind, got, _ = t.decode_answer(payload)
            if kind == "ack" and got == eid:
                acked.append((rid, eid))
    except OSError:
        return


def test():
    opts = t.args("certrelayd")
    with t.TempDir("shutdown") as tmp:
        # The flooding client below sends "denied" events, which this sink ignores: they are
        # committed but not written out, which would only make the test slow.
        config, settings = t.write_config(tmp, sinks={"archive": {
            "type": "file", "directory": tmp.join("out"), "concurrency": "16",
            "events": "issued"}})
        sock, state, out = settings["listen"], settings["state_dir"], tmp.join("out")
        broker = t.Broker(opts.certrelayd, config, tmp, sock).start()

        acked, stop = [], threading.Event()
        threads = [threading.Thread(target=load, args=(sock, w, acked, stop))
                   for w in range(1, CLIENTS + 1)]
        for th in threads:
            th.start()
        # And one client that floods without ever reading its answers: stopping must not wait
        # for it for ever.
        flood = t.Client(sock, timeout=30)
        flood.hello()
        flood_data = b"".join(t.frame(t.event_payload(t.event_bytes(None, "denied", 900000 + i)))
                              for i in range(60000))

        def flood_send():
            try:
                flood.send(flood_data)
            except OSError:
                pass
        flooder = threading.Thread(target=flood_send)
        flooder.start()
        t.wait_for(lambda: len(acked) >= 500, "500 acks under load")
        broker.stop_ok()
        t.log("SIGTERM under load: exit 0 with %d events acked" % len(acked))
        stop.set()
        for th in threads + [flooder]:
            th.join(60)
        flood.close()
        if os.path.exists(sock):
            t.fail("the socket file outlived a clean stop")
        if "broker stopped" not in broker.log_text():
            t.fail("no 'broker stopped' line in the log")

        broker = t.Broker(opts.certrelayd, config, tmp, sock).start()
        want = {"%d-issued.json" % rid for rid, _ in acked}
        t.wait_for(lambda: want <= set(t.drop_files(out)),
                   "every acked event delivered after the restart", timeout=600, interval=0.2)
        docs = t.json_docs(out)
        for rid, eid in acked:
            if docs["%d-issued.json" % rid]["event_id"] != eid:
                t.fail("request %d holds another event id" % rid)
        t.log("all %d acked events delivered after the restart" % len(acked))

        # A second broker on the same socket must refuse, and leave the first alone.
        second = subprocess.run([opts.certrelayd, "--config", config], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, env=t.child_env(tmp), timeout=120)
        text = second.stdout.decode("utf-8", "replace")
        if second.returncode == 0 or "another broker is listening on %s" % sock not in text:
            t.fail("second broker: exit %d, output:\n%s" % (second.returncode, text))
        if not broker.running():
            t.fail("the first broker died when a second one tried to start")
        c = t.Client(sock)
        c.hello()
        eid = str(uuid.uuid4())
        c.send_event(t.event_bytes(eid, "issued", 999999))
        if c.answer() != ("ack", eid, None):
            t.fail("the first broker no longer answers after the refused start")
        c.close()

        # kill -9 leaves a stale socket file; a new broker replaces it.
        broker.kill9()
        if not os.path.exists(sock):
            t.fail("expected a stale socket file after kill -9")
        broker = t.Broker(opts.certrelayd, config, tmp, sock).start()
        if "removing stale socket" not in broker.log_text():
            t.fail("no log line about the stale socket")
        t.wait_for(lambda: "999999-issued.json" in t.drop_files(out), "the last event delivered")
        broker.stop_ok()


if __name__ == "__main__":
    t.main(test)
