"""Issue 13, item 2: SIGTERM while webhook connections are failing.

Twelve runs, each a broker with webhook sinks whose receivers fail in every way a connection can:
refused (nothing listens), reset after accept, a server that accepts and never answers, and a
host name that has to be resolved first. Each run is stopped with SIGTERM while those attempts are
in flight; the broker must exit 0 every time (no abort from a socket closed under its poller), and
every acked event must still be pending in the queue afterwards (nothing lost)."""

import socket
import threading
import time
import uuid

import crstest as t

RUNS = 12
EVENTS = 40


class Sink:
    """A TCP listener that resets or ignores every connection it accepts."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(256)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.stop = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        import struct
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            if self.mode == "reset":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.close()
            else:
                self.held.append(c)

    def close(self):
        self.stop = True
        self.sock.close()
        for c in self.held:
            c.close()


def one_run(opts, tmp, n):
    reset, silent = Sink("reset"), Sink("silent")
    refused = t.free_port()
    common = {"type": "webhook", "concurrency": "8", "timeout": "20s", "max_attempts": "1000",
              "backoff_initial": "10ms", "backoff_max": "50ms"}
    sinks = {
        "refused": dict(common, url="http://127.0.0.1:%d/x" % refused),
        "reset": dict(common, url="http://127.0.0.1:%d/x" % reset.port),
        "silent": dict(common, url="http://127.0.0.1:%d/x" % silent.port),
        "resolved": dict(common, url="http://localhost:%d/x" % refused),
    }
    config, settings = t.write_config(tmp, sinks=sinks, state_dir=tmp.join("state%d" % n),
                                      listen=tmp.join("s%d.sock" % n))
    broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
    acked = [str(uuid.uuid4()) for _ in range(EVENTS)]
    t.send_acked(settings["listen"], [(e, t.event_bytes(e, "issued", i + 1))
                                      for i, e in enumerate(acked)])
    # Let attempts fail and be retried for a moment (a different moment each run).
    t.wait_for(lambda: "attempt" in broker.log_text(), "failing attempts")
    time.sleep(0.05 * (n % 5))
    rc = broker.stop()
    reset.close()
    silent.close()
    if rc != 0:
        t.fail("run %d: broker exited with %d after SIGTERM:\n%s" % (n, rc,
                                                                     broker.log_text()[-3000:]))
    ids = set(r[0] for r in t.db_rows(settings["state_dir"], "SELECT event_id FROM events"))
    if set(acked) - ids:
        t.fail("run %d: %d acked events lost" % (n, len(set(acked) - ids)))
    pending = t.db_rows(settings["state_dir"],
                        "SELECT COUNT(*) FROM deliveries WHERE state = 0")[0][0]
    if pending != 4 * len(acked):
        t.fail("run %d: %d pending deliveries, want %d" % (n, pending, 4 * len(acked)))


def test():
    opts = t.args("certrelayd")
    with t.TempDir("robust_shutdown") as tmp:
        for n in range(RUNS):
            one_run(opts, tmp, n)
        t.log("%d runs: SIGTERM with failing webhook connections exits 0" % RUNS)


if __name__ == "__main__":
    t.main(test)
