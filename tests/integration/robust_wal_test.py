"""Issue 13, item 9: the queue database is checked at start.

1. 500 events acked, the broker killed with -9 (the write-ahead log holds them), then 32 bytes of
   the log overwritten early on. Before: the broker started, SQLite dropped every transaction
   after the damaged frame (16 of 500 acked events lost) and nobody said a word. Now the broker
   refuses to start and says why; with --salvage it keeps a copy of the damaged log, says what is
   lost and runs.
2. An undamaged log after kill -9 starts normally (the check says it is consistent).
3. Damaged pages in the database file: quick_check fails, the broker refuses to start."""

import glob
import os
import subprocess
import uuid

import crstest as t

EVENTS = 500


def start_fails(opts, config, tmp, what):
    p = subprocess.run([opts.certrelayd, "--config", config], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60, env=t.child_env(tmp))
    out = p.stdout.decode("utf-8", "replace")
    if p.returncode == 0:
        t.fail("the broker ran on %s:\n%s" % (what, out))
    return out


def fill(opts, tmp, config, settings):
    broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
    ids = [str(uuid.uuid4()) for _ in range(EVENTS)]
    # One at a time: one commit each, so the damaged frame has many commits after it.
    t.send_acked(settings["listen"], [(e, t.event_bytes(e, "issued", i + 1, der=os.urandom(600)))
                                      for i, e in enumerate(ids)])
    return broker, ids


def test():
    opts = t.args("certrelayd")
    with t.TempDir("robust_wal") as tmp:
        config, settings = t.write_config(tmp, sinks={})
        state = settings["state_dir"]
        db = os.path.join(state, "certrelay.db")
        wal = db + "-wal"

        # 2. kill -9 with a healthy log: starts and keeps everything.
        broker, ids = fill(opts, tmp, config, settings)
        broker.kill9()
        broker = t.Broker(opts.certrelayd, config, tmp, settings["listen"]).start()
        if "write-ahead log consistent, quick_check ok" not in broker.log_text():
            t.fail("the start-up check is not reported:\n%s" % broker.log_text())
        broker.stop_ok()
        if t.db_rows(state, "SELECT COUNT(*) FROM events")[0][0] != EVENTS:
            t.fail("events lost after kill -9 without damage")

        # 1. damage the log of a killed broker.
        with t.TempDir("robust_wal1") as tmp1:
            config1, settings1 = t.write_config(tmp1, sinks={})
            broker, ids = fill(opts, tmp1, config1, settings1)
            broker.kill9()
            wal1 = os.path.join(settings1["state_dir"], "certrelay.db-wal")
            size = os.path.getsize(wal1)
            t.log("write-ahead log of %d bytes after kill -9" % size)
            with open(wal1, "r+b") as f:
                f.seek(size // 4)
                f.write(os.urandom(32))
            out = start_fails(opts, config1, tmp1, "a damaged write-ahead log")
            if "write-ahead log is damaged" not in out or "--salvage" not in out:
                t.fail("the refusal does not say what is wrong and what to do:\n%s" % out)
            t.log("refused: %s" % [l for l in out.splitlines() if "damaged" in l][0][24:])
            broker = t.Broker(opts.certrelayd, config1, tmp1, settings1["listen"])
            broker.logf = open(broker.logpath, "wb")
            broker.proc = subprocess.Popen([opts.certrelayd, "--config", config1, "--salvage"],
                                           stdout=broker.logf, stderr=subprocess.STDOUT,
                                           env=t.child_env(tmp1))
            broker.wait_ready()
            text = broker.log_text()
            if "salvaging as asked" not in text:
                t.fail("salvage is not reported:\n%s" % text)
            if not glob.glob(wal1 + ".damaged-*"):
                t.fail("no copy of the damaged log was kept")
            broker.stop_ok()
            kept = t.db_rows(settings1["state_dir"], "SELECT COUNT(*) FROM events")[0][0]
            t.log("salvaged: %d of %d events kept" % (kept, EVENTS))

        # 3. damaged pages in the database file (checkpointed by the clean stop above).
        with open(db, "r+b") as f:
            f.seek(4096 * 2)
            f.write(b"\xff" * 64)
        out = start_fails(opts, config, tmp, "a database with damaged pages")
        if "quick_check" not in out:
            t.fail("the refusal does not report quick_check:\n%s" % out)


if __name__ == "__main__":
    t.main(test)
