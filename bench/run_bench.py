#!/usr/bin/python3
"""CertRelay benchmarks: prints figures, asserts nothing.

1. Stub-core call latency with the durable ack: `certrelay simulate` at concurrency 1 against a
   running broker (each call builds its event from a property table, as the exit module does,
   and waits until the event is committed to SQLite and acked).
2. Broker durable ingest in events/s at concurrency 1, 16 and 64 (no sinks configured, so the
   figure is receive + decode + group commit + ack). The load comes from `certrelay simulate
   --prebuilt` (one packed event per kind built up front, sent with fresh ids through the stub
   core's connection pool), so that the clients cost little CPU on the shared cores, as the
   yardstick's do; --full-stub builds every event instead.
3. The yardstick: bench/raw_group_commit with the same number of client threads, records of the
   size of the average framed event the broker stored, one write() + fdatasync() per group into a
   preallocated 64 MiB ring (the way SQLite reuses its write-ahead log after a checkpoint;
   --append-yardstick: a growing file, as the first version of this benchmark did).

Beside each row: the broker's CPU time per event (utime + stime of the broker process from
/proc, all threads, divided by the events of that run), the simulator's (getrusage of the
finished child), and the machine's load average when the row was taken.

usage: bench/run_bench.py BUILD_DIR [--events N] [--full-stub] [--append-yardstick] [--json]
--json adds one line at the end: a JSON object with every figure.
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


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


def cpu_seconds(pid):
    """utime + stime of a running process, every thread of it, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def simulate(build, sock, home, count, conc, prebuilt, broker_pid):
    args = [os.path.join(build, "tools", "certrelay"), "simulate", "--pipe", sock,
            "--spool-dir", os.path.join(home, "spool"), "--count", str(count),
            "--concurrency", str(conc), "--events", "issued", "--timeout-ms", "10000"]
    if prebuilt:
        args.append("--prebuilt")
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    b0 = cpu_seconds(broker_pid)
    t0 = time.monotonic()
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True).stdout
    secs = time.monotonic() - t0
    b1 = cpu_seconds(broker_pid)
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    fig = {k: int(v) for k, v in re.findall(r"^(sent|acked|spooled|failed) (\d+)$", out, re.M)}
    lat = dict(zip(("p50", "p90", "p99", "max"),
                   map(int, re.search(r"latency_us p50 (\d+) p90 (\d+) p99 (\d+) max (\d+)",
                                      out).groups())))
    sim_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    return {"count": count, "concurrency": conc, "seconds": secs, "rate": count / secs,
            "acked": fig.get("acked", 0), "latency_us": lat,
            "broker_us_per_event": 1e6 * (b1 - b0) / count,
            "sim_us_per_event": 1e6 * sim_cpu / count,
            "load": os.getloadavg()[0]}


def yardstick(build, home, record, count, conc, append):
    args = [os.path.join(build, "bench", "raw_group_commit"), home, str(record), str(count),
            str(conc)]
    if append:
        args.append("--append")
    out = subprocess.run(args, stdout=subprocess.PIPE, text=True, check=True).stdout
    return {"rate": float(re.search(r"rate=(\d+)", out).group(1)),
            "commits": int(re.search(r"commits=(\d+)", out).group(1)),
            "mode": "append" if append else "ring"}


def main():
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    n = int(sys.argv[sys.argv.index("--events") + 1]) if "--events" in sys.argv else 20000
    prebuilt = "--full-stub" not in sys.argv
    append = "--append-yardstick" in sys.argv
    home = tempfile.mkdtemp(prefix="crs-bench-", dir=os.environ.get("CRS_BENCH_DIR", "/var/tmp"))
    report = {"events": n, "load_start": os.getloadavg()[0],
              "client": "simulate --prebuilt" if prebuilt else "simulate (full stub path)",
              "yardstick": "append" if append else "ring", "ingest": []}
    results = []
    try:
        broker, sock = run_broker(build, home)
        try:
            # Warm-up, then latency at concurrency 1 through the whole stub path.
            simulate(build, sock, home, 200, 1, False, broker.pid)
            r = simulate(build, sock, home, min(n, 5000), 1, False, broker.pid)
            lat = r["latency_us"]
            report["stub_latency_c1_ms"] = {k: lat[k] / 1000 for k in lat}
            report["stub_full_path_sim_us_per_event"] = r["sim_us_per_event"]
            print("stub-core call latency (durable ack, concurrency 1): p50 %.3f ms, p90 %.3f ms, "
                  "p99 %.3f ms, max %.3f ms; simulator %.1f us CPU/event building events" %
                  (lat["p50"] / 1000, lat["p90"] / 1000, lat["p99"] / 1000, lat["max"] / 1000,
                   r["sim_us_per_event"]))
            # The record size for the yardstick: the average framed event stored so far (WAL
            # mode lets this reader in while the broker runs).
            db = sqlite3.connect("file:%s?mode=ro" % os.path.join(home, "state", "certrelay.db"),
                                 uri=True)
            avg = int(db.execute("SELECT avg(length(body)) FROM events").fetchone()[0])
            db.close()
            report["avg_event_bytes"] = avg
            # The disk under a virtual machine changes speed from one second to the next: each
            # broker run is taken between two yardstick runs and compared with their mean.
            for conc in (1, 16, 64):
                count = n if conc > 1 else min(n, 5000)
                y0 = yardstick(build, home, avg + 8, count, conc, append)
                r = simulate(build, sock, home, count, conc, prebuilt, broker.pid)
                y1 = yardstick(build, home, avg + 8, count, conc, append)
                if r["acked"] != count:
                    print("warning: %d of %d acked" % (r["acked"], count))
                r["raw_rate"] = (y0["rate"] + y1["rate"]) / 2
                r["raw_rates"] = [y0["rate"], y1["rate"]]
                r["raw_commits"] = y1["commits"]
                r["ratio"] = r["rate"] / r["raw_rate"]
                results.append(r)
        finally:
            broker.send_signal(signal.SIGTERM)
            broker.wait(timeout=60)
        print("average packed event: %d bytes; clients: %s; yardstick: %s" %
              (avg, report["client"], report["yardstick"]))
        print()
        print("%-6s %11s %11s %6s %15s %10s %10s %5s" %
              ("conc", "broker ev/s", "raw rec/s", "ratio", "call p50/p99", "broker", "simulator",
               "load"))
        for r in results:
            print("%-6d %11.0f %11.0f %5.0f%% %6.2f/%.2f ms %7.1f us %7.1f us %5.2f" %
                  (r["concurrency"], r["rate"], r["raw_rate"], 100 * r["ratio"],
                   r["latency_us"]["p50"] / 1000, r["latency_us"]["p99"] / 1000,
                   r["broker_us_per_event"], r["sim_us_per_event"], r["load"]))
            report["ingest"].append(r)
        print("(raw rec/s: the mean of the yardstick runs just before and after the broker's; "
              "broker, simulator: CPU time per event, user + system; load: 1-minute load average "
              "after the row's run)")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    report["load_end"] = os.getloadavg()[0]
    if "--json" in sys.argv:
        print(json.dumps(report, sort_keys=True))


if __name__ == "__main__":
    main()
