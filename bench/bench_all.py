#!/usr/bin/python3
"""Runs every CertRelay benchmark in one go and prints one table of ratios (scripts/bench).

Nothing is asserted: the figures are printed, each beside the yardstick measured in the same run
on the same machine, with the machine's load average sampled every 5 s throughout.

usage: bench/bench_all.py BUILD_DIR [--ingest-events N] [--webhook-requests N]
           [--file-events N] [--crl-events N] [--crl-mb N] [--drain-events N]
           [--drain-file-events N] [--drain-file-yardstick-events N] [--startup-events N]
           [--new-events N] [--skip-ingest]

Defaults are the issue's sizes: 200,000 queued events for each drain and 1,000,000 pending
deliveries for the start-up figure (about 6 minutes on 2 cores). The sections' own output is
shown as they run; the table comes last.
"""
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def opt(name, default):
    if name in sys.argv:
        return int(sys.argv[sys.argv.index(name) + 1])
    return default


class LoadSampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.samples = []
        self.done = threading.Event()

    def run(self):
        while True:
            self.samples.append(os.getloadavg()[0])
            if self.done.wait(5):
                return

    def stop(self):
        self.done.set()
        self.join()


def run(cmd, **kw):
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, **kw).stdout
    sys.stdout.write(out)
    sys.stdout.flush()
    return out


def last_json(out):
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    return None


def ingest(build, n):
    """The ingest rows: run_bench.py --json when it has it, else its human table."""
    cmd = [sys.executable, os.path.join(HERE, "run_bench.py"), build, "--events", str(n)]
    with open(os.path.join(HERE, "run_bench.py")) as f:
        has_json = "--json" in f.read()
    out = run(cmd + (["--json"] if has_json else []))
    rows = []
    rep = last_json(out) if has_json else None
    if rep and isinstance(rep.get("ingest"), list):
        for r in rep["ingest"]:
            rows.append((r["concurrency"], r["rate"], r["raw_rate"],
                         r.get("latency_us", {}).get("p99")))
    else:
        for m in re.finditer(r"^(\d+)\s+(\d+)\s+(\d+)\s+\d+%", out, re.M):
            rows.append((int(m.group(1)), float(m.group(2)), float(m.group(3)), None))
    return rows


def webhook(build, n):
    out = run([os.path.join(build, "bench", "webhook_bench"), "--requests", str(n),
               "--concurrency", "16", "--rounds", "5"])
    base = float(re.search(r"plain libcurl multi loop:\s+(\d+)", out).group(1))
    drv = float(re.search(r"webhook driver\+curl_uv:\s+(\d+)", out).group(1))
    return drv, base


def file_drop(build, home, kind, events, threads, rounds, crl_bytes=None):
    """Alternates the sink and the yardstick; returns the medians (sink, raw) in events/s."""
    sink, raw = [], []
    for i in range(rounds):
        d = os.path.join(home, "%s-sink-%d" % (kind, i))
        cmd = [os.path.join(build, "bench", "file_drop_bench"), d, str(threads), str(events), kind]
        if crl_bytes:
            cmd.append(str(crl_bytes))
        out = run(cmd)
        sink.append(float(re.search(r"rate=([\d.]+)", out).group(1)))
        sizes = re.search(r"sizes=([\d,]+)", out).group(1)
        shutil.rmtree(d, ignore_errors=True)
        d = os.path.join(home, "%s-raw-%d" % (kind, i))
        out = run([os.path.join(build, "bench", "raw_file_drop"), d, str(threads), str(events),
                   sizes])
        raw.append(float(re.search(r"rate=([\d.]+)", out).group(1)))
        shutil.rmtree(d, ignore_errors=True)
    return statistics.median(sink), statistics.median(raw), sizes


def drain(build, what, extra):
    out = run([sys.executable, os.path.join(HERE, "drain_bench.py"), build] + what + extra)
    return last_json(out)


def pct(a, b):
    return "%.0f%%" % (100.0 * a / b) if b else "-"


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        raise SystemExit(__doc__)
    build = os.path.abspath(sys.argv[1])
    home = tempfile.mkdtemp(prefix="crs-bench-all-",
                            dir=os.environ.get("CRS_BENCH_DIR", "/var/tmp"))
    load = LoadSampler()
    load.start()
    t0 = time.monotonic()
    rows = []
    threads = 4  # the file sink's default concurrency, and so its threads in the broker's pool
    try:
        if "--skip-ingest" not in sys.argv:
            print("== durable ingest (run_bench.py)", flush=True)
            for conc, rate, raw, p99 in ingest(build, opt("--ingest-events", 20000)):
                rows.append(("ingest, concurrency %d (events/s)" % conc, rate,
                             "raw group commit", raw, pct(rate, raw), ">= 80%"))
                if conc == 64 and p99 is not None:
                    rows.append(("stub call p99 at concurrency 64 (ms)", p99 / 1000.0, "bound",
                                 5.0, pct(p99 / 1000.0, 5.0), "< 100%"))
        print("\n== webhook fan-out (webhook_bench)", flush=True)
        drv, base = webhook(build, opt("--webhook-requests", 20000))
        rows.append(("webhook fan-out, 16 in flight (req/s)", drv, "plain libcurl multi loop",
                     base, pct(drv, base), ">= 70%"))

        print("\n== file drop: certificates, then a %d MB CRL (sink vs raw_file_drop, %d threads)"
              % (opt("--crl-mb", 10), threads), flush=True)
        cert_sink, cert_raw, sizes = file_drop(build, home, "cert", opt("--file-events", 2000),
                                               threads, 3)
        rows.append(("file drop, certificate (events/s)", cert_sink,
                     "raw write+fsync+link+dir fsync", cert_raw, pct(cert_sink, cert_raw),
                     ">= 70%"))
        crl_sink, crl_raw, _ = file_drop(build, home, "crl", opt("--crl-events", 8), threads, 3,
                                         opt("--crl-mb", 10) * 1024 * 1024)
        rows.append(("file drop, %d MB CRL (events/s)" % opt("--crl-mb", 10), crl_sink,
                     "raw write+fsync+link+dir fsync", crl_raw, pct(crl_sink, crl_raw),
                     ">= 70%"))

        n = opt("--drain-events", 200000)
        print("\n== backlog drain: %d queued events to a local webhook" % n, flush=True)
        dw = drain(build, ["drain", "webhook"], ["--events", str(n)])
        rows.append(("drain %d to webhook (events/s)" % n, dw["rate"],
                     "plain libcurl multi loop", base, pct(dw["rate"], base), ">= 70%"))
        nf = opt("--drain-file-events", n)
        print("\n== backlog drain: %d queued events to the file drop" % nf, flush=True)
        df = drain(build, ["drain", "file"], ["--events", str(nf), "--concurrency", str(threads)])
        # The file system slows down as files come and go (ext4 searches for free inodes among
        # recently deleted ones), so the drain's yardstick runs right after it, not beforehand.
        ny = min(nf, opt("--drain-file-yardstick-events", 20000))
        d = os.path.join(home, "drain-raw")
        out = run([os.path.join(build, "bench", "raw_file_drop"), d, str(threads), str(ny),
                   sizes])
        drain_raw = float(re.search(r"rate=([\d.]+)", out).group(1))
        shutil.rmtree(d, ignore_errors=True)
        rows.append(("drain %d to file drop (events/s)" % nf, df["rate"],
                     "raw file drop right after", drain_raw, pct(df["rate"], drain_raw),
                     ">= 70%"))

        ns = opt("--startup-events", 1000000)
        print("\n== start-up with %d pending deliveries, new events while draining" % ns,
              flush=True)
        st = drain(build, ["startup"], ["--events", str(ns), "--new", str(opt("--new-events",
                                                                                 200))])
        hwm = max(dw["vmhwm_kb"], df["vmhwm_kb"], st["vmhwm_kb"]) / 1024.0
        rows.append(("broker VmHWM, drains and start-up (MB)", hwm, "bound", 32.0,
                     pct(hwm, 32.0), "< 100%"))
        rows.append(("first new event acked after exec, %d pending (s)" % ns, st["first_ack_s"],
                     "bound", 1.0, pct(st["first_ack_s"], 1.0), "< 100%"))
        rows.append(("new event delivered while draining, p50 (ms)", st["new_p50_ms"] or 0,
                     "p99 (ms)", st["new_p99_ms"] or 0, "-", "not starved"))
    finally:
        load.stop()
        shutil.rmtree(home, ignore_errors=True)
    secs = time.monotonic() - t0
    ls = load.samples or [0.0]
    print("\n== CertRelay benchmark table, %s, %d cores, %.0f s; load average (1 min) min %.2f "
          "mean %.2f max %.2f over %d samples" % (time.strftime("%Y-%m-%d %H:%M UTC",
                                                                time.gmtime()),
                                                  os.cpu_count(), secs, min(ls),
                                                  statistics.mean(ls), max(ls), len(ls)))
    print("| figure | CertRelay | yardstick | yardstick value | ratio | target |")
    print("|---|---|---|---|---|---|")
    for name, mine, yname, yval, ratio, target in rows:
        print("| %s | %s | %s | %s | %s | %s |" % (name, fmt(mine), yname, fmt(yval), ratio,
                                                   target))
    print(json.dumps({"rows": rows, "load": [min(ls), statistics.mean(ls), max(ls)],
                      "seconds": round(secs, 1)}))


def fmt(v):
    if isinstance(v, float) and v < 100:
        return "%.2f" % v
    return "{:,.0f}".format(v)


if __name__ == "__main__":
    main()
