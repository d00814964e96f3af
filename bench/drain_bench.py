#!/usr/bin/python3
"""CertRelay backlog benchmarks: prints figures, asserts nothing.

drain:   fills the queue with EVENTS certificate events for one sink (bench/drain_fill, the
         broker's own commit code), starts the broker and times the delivery of all of them to a
         local webhook (bench/webhook_bench --serve, a libuv 204 responder) or to the file drop.
         The broker's VmHWM (/proc/PID/status) is sampled throughout.
startup: fills the queue with EVENTS pending deliveries, starts the broker and prints the time
         from exec to the first new event acknowledged (certrelay simulate), then sends new events
         one at a time while the backlog drains and prints how long they took to be delivered
         (deliveries.updated_ms - events.received_ms, from the queue database).

usage: bench/drain_bench.py BUILD_DIR drain webhook|file [--events N] [--concurrency C]
       bench/drain_bench.py BUILD_DIR startup [--events N] [--new N] [--concurrency C]

The last line printed is one JSON object with the figures (for scripts/bench).
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time


def opt(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


class HwmSampler(threading.Thread):
    """Reads VmHWM and VmRSS of a process every 50 ms until it exits or stop() is called."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.hwm_kb, self.rss_max_kb, self.samples = pid, 0, 0, 0
        self.cpu_s = 0.0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            try:
                with open("/proc/%d/status" % self.pid) as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            self.hwm_kb = max(self.hwm_kb, int(line.split()[1]))
                        elif line.startswith("VmRSS:"):
                            self.rss_max_kb = max(self.rss_max_kb, int(line.split()[1]))
                with open("/proc/%d/stat" % self.pid) as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                self.cpu_s = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
                self.samples += 1
            except (OSError, ValueError):
                return
            time.sleep(0.05)

    def stop(self):
        self.done.set()
        self.join()


def write_config(home, sink, conc, port):
    cfg = os.path.join(home, "bench.ini")
    with open(cfg, "w") as f:
        f.write("[broker]\nlisten = %s/b.sock\nstate_dir = %s/state\nspool_dir = %s/spool\n"
                "log_level = warn\n" % (home, home, home))
        if sink == "webhook":
            f.write("[sink.hook]\ntype = webhook\nurl = http://127.0.0.1:%d/hook\nformat = json\n"
                    "concurrency = %d\n" % (port, conc))
        else:
            f.write("[sink.drop]\ntype = file\ndirectory = %s/drop\nconcurrency = %d\n"
                    % (home, conc))
    return cfg


def start_responder(build):
    p = subprocess.Popen([os.path.join(build, "bench", "webhook_bench"), "--serve", "1"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = p.stdout.readline().split()
    if len(line) != 2 or line[0] != "port":
        raise SystemExit("responder did not start")
    return p, int(line[1])


def stop_responder(p):
    p.stdin.close()
    out = p.stdout.read()
    p.wait()
    return out.strip()


def fill(build, cfg, n):
    out = subprocess.run([os.path.join(build, "bench", "drain_fill"), cfg, str(n)],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    return out.strip()


def pending(db, where=""):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    try:
        return con.execute("SELECT COUNT(*) FROM deliveries WHERE state = 0" + where).fetchone()[0]
    finally:
        con.close()


def start_broker(build, home, cfg):
    log = open(os.path.join(home, "broker.log"), "w")
    t0 = time.monotonic()
    p = subprocess.Popen([os.path.join(build, "broker", "certrelayd"), "--config", cfg],
                         stdout=subprocess.DEVNULL, stderr=log)
    return p, t0


def wait_socket(sock, proc, limit=60):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit("broker exited with %d" % proc.returncode)
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.close()
            return
        except OSError:
            time.sleep(0.002)
    raise SystemExit("broker did not listen within %d s" % limit)


def simulate(build, sock, home, count, first_id, timeout_ms=5000):
    out = subprocess.run([os.path.join(build, "tools", "certrelay"), "simulate", "--pipe", sock,
                          "--spool-dir", os.path.join(home, "simspool"), "--count", str(count),
                          "--concurrency", "1", "--events", "issued", "--timeout-ms",
                          str(timeout_ms), "--first-request-id", str(first_id)],
                         stdout=subprocess.PIPE, text=True).stdout
    acked = 0
    for line in out.splitlines():
        if line.startswith("acked "):
            acked = int(line.split()[1])
    return acked


def stop_broker(p):
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def pct(values, p):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def run_drain(build, home, sink, n, conc):
    resp, port = start_responder(build) if sink == "webhook" else (None, 0)
    try:
        cfg = write_config(home, sink, conc, port)
        filled = fill(build, cfg, n)
        db = os.path.join(home, "state", "certrelay.db")
        broker, t0 = start_broker(build, home, cfg)
        hwm = HwmSampler(broker.pid)
        hwm.start()
        try:
            left = n
            while left > 0:
                time.sleep(0.1)
                if broker.poll() is not None:
                    raise SystemExit("broker exited with %d" % broker.returncode)
                left = pending(db)
            secs = time.monotonic() - t0
        finally:
            hwm.stop()
            stop_broker(broker)
    finally:
        served = stop_responder(resp) if resp else ""
    res = {"sink": sink, "events": n, "concurrency": conc, "seconds": round(secs, 3),
           "rate": round(n / secs, 1), "vmhwm_kb": hwm.hwm_kb, "cpu_s": hwm.cpu_s,
           "fill": filled, "responder": served}
    print("drain to %s: %d queued events delivered in %.2f s = %.0f/s (concurrency %d); broker "
          "VmHWM %.1f MB (%d samples), CPU %.2f s (%.0f us per delivery)%s"
          % (sink, n, secs, n / secs, conc, hwm.hwm_kb / 1024, hwm.samples, hwm.cpu_s,
             hwm.cpu_s * 1e6 / n, "; " + served if served else ""))
    return res


def run_startup(build, home, n, new, conc):
    resp, port = start_responder(build)
    try:
        cfg = write_config(home, "webhook", conc, port)
        filled = fill(build, cfg, n)
        print("filled: %s" % filled)
        db = os.path.join(home, "state", "certrelay.db")
        sock = os.path.join(home, "b.sock")
        broker, t0 = start_broker(build, home, cfg)
        hwm = HwmSampler(broker.pid)
        hwm.start()
        try:
            wait_socket(sock, broker)
            t_listen = time.monotonic() - t0
            while simulate(build, sock, home, 1, 10_000_000, timeout_ms=1000) != 1:
                if time.monotonic() - t0 > 120:
                    raise SystemExit("no event acknowledged within 120 s")
            t_ack = time.monotonic() - t0
            # New events, one at a time, while the backlog drains.
            acked = simulate(build, sock, home, new, 20_000_000)
            left_backlog = pending(db, " AND event_rowid <= %d" % n)
            end = time.monotonic() + 120
            while pending(db, " AND event_rowid > %d" % n) > 0 and time.monotonic() < end:
                time.sleep(0.1)
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
            lat = [r[0] for r in con.execute(
                "SELECT d.updated_ms - e.received_ms FROM deliveries d JOIN events e "
                "ON e.rowid = d.event_rowid WHERE d.event_rowid > ? AND d.state = 1", (n + 1,))]
            con.close()
        finally:
            hwm.stop()
            stop_broker(broker)
    finally:
        stop_responder(resp)
    res = {"pending": n, "listen_s": round(t_listen, 3), "first_ack_s": round(t_ack, 3),
           "new_sent": new, "new_acked": acked, "new_delivered": len(lat),
           "new_p50_ms": pct(lat, 50), "new_p99_ms": pct(lat, 99),
           "backlog_left": left_backlog, "vmhwm_kb": hwm.hwm_kb}
    print("startup with %d pending deliveries: listening after %.3f s, first new event acked "
          "after %.3f s" % (n, t_listen, t_ack))
    print("new events while draining: %d sent, %d acked, %d delivered; delivery latency p50 %s "
          "ms, p99 %s ms (backlog still pending when they were sent: %d); broker VmHWM %.1f MB"
          % (new, acked, len(lat), res["new_p50_ms"], res["new_p99_ms"], left_backlog,
             hwm.hwm_kb / 1024))
    return res


def main():
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    mode = sys.argv[2]
    home = tempfile.mkdtemp(prefix="crs-drain-", dir=os.environ.get("CRS_BENCH_DIR", "/var/tmp"))
    try:
        if mode == "drain" and len(sys.argv) > 3 and sys.argv[3] in ("webhook", "file"):
            sink = sys.argv[3]
            res = run_drain(build, home, sink, opt("--events", 200000),
                            opt("--concurrency", 16 if sink == "webhook" else 4))
        elif mode == "startup":
            res = run_startup(build, home, opt("--events", 1000000), opt("--new", 200),
                              opt("--concurrency", 16))
        else:
            raise SystemExit(__doc__)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
