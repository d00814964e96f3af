#!/usr/bin/python3
"""CertRelay benchmarks: prints figures, asserts nothing.

1. Stub-core call latency with the durable ack: `certrelay simulate` at concurrency 1 against a
   running broker (each call waits until its event is committed to SQLite and acked).
2. Broker durable ingest in events/s at concurrency 1, 16 and 64 (no sinks configured, so the
   figure is receive + decode + group commit + ack).
3. The yardstick: bench/raw_group_commit appending records of the same size (the average packed
   event the broker stored) with one write()+fdatasync() per group, same concurrencies.

usage: bench/run_bench.py BUILD_DIR [--events N]
"""
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time


def run_broker(build, home):
    cfg = os.path.join(home, "bench.ini")
    with open(cfg, "w") as f:
        f.write("[broker]\nlisten = %s/b.sock\nstate_dir = %s/state\nspool_dir = %s/spool\n"
                "log_level = warn\n" % (home, home, home))
    p = subprocess.Popen([os.path.join(build, "broker", "certrelayd"), "--config", cfg],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(home, "log"), "w"))
    sock = os.path.join(home, "b.sock")
    for _ in range(200):
        try:
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.close()
            return p, sock
        except OSError:
            time.sleep(0.05)
    raise SystemExit("broker did not start")


def simulate(build, sock, home, count, conc):
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(build, "tools", "certrelay"), "simulate", "--pipe", sock,
                          "--spool-dir", os.path.join(home, "spool"), "--count", str(count),
                          "--concurrency", str(conc), "--events", "issued",
                          "--timeout-ms", "10000"],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    secs = time.monotonic() - t0
    fig = {k: int(v) for k, v in re.findall(r"^(sent|acked|spooled|failed) (\d+)$", out, re.M)}
    lat = dict(zip(("p50", "p90", "p99", "max"),
                   map(int, re.search(r"latency_us p50 (\d+) p90 (\d+) p99 (\d+) max (\d+)",
                                      out).groups())))
    return fig, lat, secs


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    n = int(sys.argv[sys.argv.index("--events") + 1]) if "--events" in sys.argv else 20000
    home = tempfile.mkdtemp(prefix="crs-bench-", dir=os.environ.get("CRS_BENCH_DIR", "/var/tmp"))
    results = []
    try:
        broker, sock = run_broker(build, home)
        try:
            # Warm-up, then latency at concurrency 1.
            simulate(build, sock, home, 200, 1)
            fig, lat, _ = simulate(build, sock, home, min(n, 5000), 1)
            print("stub-core call latency (durable ack, concurrency 1): p50 %.3f ms, p90 %.3f ms, "
                  "p99 %.3f ms, max %.3f ms" % tuple(lat[k] / 1000 for k in ("p50", "p90", "p99",
                                                                              "max")))
            for conc in (1, 16, 64):
                count = n if conc > 1 else min(n, 5000)
                fig, lat, secs = simulate(build, sock, home, count, conc)
                if fig.get("acked") != count:
                    print("warning: %s" % fig)
                results.append((conc, count / secs, lat))
        finally:
            broker.send_signal(signal.SIGTERM)
            broker.wait(timeout=60)
        db = sqlite3.connect(os.path.join(home, "state", "certrelay.db"))
        avg = int(db.execute("SELECT avg(length(body)) FROM events").fetchone()[0])
        db.close()
        print("average packed event: %d bytes" % avg)
        print()
        print("%-12s %16s %16s %8s %14s" % ("concurrency", "broker ev/s", "raw gc rec/s",
                                            "ratio", "call p50/p99"))
        for conc, rate, lat in results:
            raw = subprocess.run([os.path.join(build, "bench", "raw_group_commit"), home,
                                  str(avg + 8), str(n if conc > 1 else min(n, 5000)), str(conc)],
                                 stdout=subprocess.PIPE, text=True, check=True).stdout
            rawrate = float(re.search(r"rate=(\d+)", raw).group(1))
            print("%-12d %16.0f %16.0f %7.0f%% %6.2f/%.2f ms" % (conc, rate, rawrate,
                                                              100 * rate / rawrate,
                                                              lat["p50"] / 1000,
                                                              lat["p99"] / 1000))
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
